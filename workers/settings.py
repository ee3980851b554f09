"""lobbybot's settings: one validated object, read once from the environment (and `.env`).

The project's own variables carry the `LOBBYBOT_` prefix; the ecosystem's own names (`REDIS_URL`, `PORT`,
`SLACK_*`, `DISCORD_TOKEN`) are read verbatim. Tokens are `SecretStr`, so they print as `**********`.

A missing or bad value raises `SettingsError` whose message is one line naming the environment variable,
never a pydantic traceback; the CLI prints it and exits non-zero.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError as PydanticSettingsError

ENV_PREFIX = "LOBBYBOT_"


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the environment variable."""


class FeedConfig(BaseModel):
    """One RSS/Atom feed to poll. `LOBBYBOT_FEEDS` accepts a bare URL string for each entry too."""

    url: str
    name: str = ""
    language: str | None = None


def _unprefixed(name: str) -> Any:
    """Read an ecosystem variable (`PORT`, `REDIS_URL`, …) verbatim, ignoring `env_prefix`."""
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,  # `SLACK_BOT_TOKEN=` in .env means "not set", not an empty token
        case_sensitive=False,
        populate_by_name=True,
    )

    # Ecosystem names (no prefix).
    redis_url: str | None = Field(None, validation_alias=_unprefixed("REDIS_URL"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=_unprefixed("PORT"))
    web_concurrency: int = Field(1, ge=1, validation_alias=_unprefixed("WEB_CONCURRENCY"))
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_unprefixed("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(None, validation_alias=_unprefixed("SLACK_SIGNING_SECRET"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_unprefixed("SLACK_APP_TOKEN"))
    slack_client_id: str | None = Field(None, validation_alias=_unprefixed("SLACK_CLIENT_ID"))
    slack_client_secret: SecretStr | None = Field(None, validation_alias=_unprefixed("SLACK_CLIENT_SECRET"))
    discord_token: SecretStr | None = Field(None, validation_alias=_unprefixed("DISCORD_TOKEN"))

    # lobbybot's own (LOBBYBOT_ prefix).
    redis_prefix: str = "lobbybot:"
    retention_days: int = Field(730, ge=1)
    news_ttl_days: int = Field(30, ge=1)
    batch_threshold: int = Field(5, ge=1)
    console_interval: float = Field(0.0, ge=0)  # seconds between two console posts (pacing, crash tests)
    poll_minutes: int = Field(15, ge=1)
    max_failures: int = Field(10, ge=1)
    http_timeout: float = Field(20.0, gt=0)
    contact: str = ""
    alert_channel: str | None = None
    sources: list[str] = Field(default_factory=lambda: ["feeds", "ocl", "lda", "clq"])
    feeds: list[FeedConfig] = Field(default_factory=list)
    news_terms: list[str] = Field(default_factory=list)
    news_locales: list[str] = Field(default_factory=lambda: ["fr-CA", "en-CA"])
    google_news_url: str = "https://news.google.com/rss/search"
    ckan_url: str = "https://open.canada.ca/data/en/api/3/action/package_show"
    ocl_communications_url: str = "https://lobbycanada.gc.ca/media/mqbbmaqk/communications_ocl_cal.zip"
    ocl_registrations_url: str = "https://lobbycanada.gc.ca/media/zwcjycef/registrations_enregistrements_ocl_cal.zip"
    ocl_recent_url: str = "https://lobbycanada.gc.ca/app/secure/ocl/lrs/do/rcntCmLgs"
    ocl_drop_dir: Path | None = None
    ocl_impersonate: bool = False
    lda_url: str = "https://lda.gov/api/v1/"
    lda_api_key: SecretStr | None = None
    lda_requests_per_minute: int | None = Field(None, ge=1)
    lda_clients: list[str] = Field(default_factory=list)
    lda_registrants: list[str] = Field(default_factory=list)
    lda_overlap_days: int = Field(7, ge=0)
    clq_url: str = "https://be-prod-api.azure-api.net/api/clq/public-api/search"
    clq_api_key: SecretStr | None = None
    clq_signing_secret: SecretStr | None = None
    clq_origin: str = "https://www.carrefourlobby.quebec"
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    slack_admins: list[str] = Field(default_factory=list)  # Slack user ids; empty = everyone may change
    slack_api_url: str = "https://slack.com/api/"
    discord_api_url: str = "https://discord.com/api/v10"

    @field_validator("feeds", mode="before")
    @classmethod
    def _bare_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, list):
            return [{"url": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("news_locales")
    @classmethod
    def _locale_shape(cls, value: list[str]) -> list[str]:
        for locale in value:
            language, _, country = locale.partition("-")
            if not (len(language) == 2 and len(country) == 2):
                raise ValueError(f"{locale!r} is not a locale like fr-CA")
        return value

    @field_validator("alert_channel")
    @classmethod
    def _channel_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        platform, _, rest = value.partition(":")
        if platform not in {"console", "slack", "discord"} or not rest:
            raise ValueError("expected console:<name>, slack:<team>/<channel> or discord:<guild>/<channel>")
        return value

    @property
    def user_agent(self) -> str:
        contact = f"; {self.contact}" if self.contact else ""
        return f"lobbybot/0.1 (lobbying-registry alert bot{contact})"


def env_name(field: str) -> str:
    """The environment variable that feeds `field` (`redis_url` → `REDIS_URL`, `feeds` → `LOBBYBOT_FEEDS`)."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"{ENV_PREFIX}{field}".upper()


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings; raise `SettingsError` naming the first bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        name = env_name(field) if field in Settings.model_fields else field.upper()
        raise SettingsError(f"{name}: {error['msg']}") from None
    except PydanticSettingsError as exc:  # a list/dict variable that is not JSON
        match = re.search(r'field "(\w+)"', str(exc))
        name = env_name(match.group(1)) if match else "a JSON setting"
        raise SettingsError(f"{name}: expected JSON, e.g. [\"https://example.org/feed.xml\"]") from None


_current: Settings | None = None


def current() -> Settings:
    """The process-wide settings, read from the environment on first use (never at import time)."""
    global _current
    if _current is None:
        _current = load_settings()
    return _current


def configure(settings: Settings | None) -> None:
    """Use `settings` for the rest of this process (`None` re-reads the environment on next use)."""
    global _current
    _current = settings

"""Where Slack installs and OAuth states live: Redis-backed stores for slack_sdk / slack-bolt (none ships with
the SDK), and `bot_token`, the token a poster uses for a workspace.

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`; `-` stands for a missing enterprise or team id):

    {prefix}slack:installation:{enterprise}:{team}:bot             JSON of the latest `Bot` (token, scopes,
                                                                   refresh token and expiry when rotation is on)
    {prefix}slack:installation:{enterprise}:{team}:installer       JSON of the latest `Installation`
    {prefix}slack:installation:{enterprise}:{team}:installer:{user}   the latest `Installation` by that user
    {prefix}slack:installation:{enterprise}:{team}:users          set of the user ids above (for deletes)
    {prefix}slack:installation_team:{team}                         the enterprise id of a workspace's install
                                                                   (`-` for none), so `bot_token` needs the
                                                                   team id alone
    {prefix}slack:rotating:{team}                                  "1" for 30 s while one process refreshes
                                                                   the team's rotating bot token
    {prefix}slack:oauth_state:{state}                              "1", expires after `expiration_seconds`
                                                                   (default 600); deleted when consumed

An org-wide (Enterprise Grid) install is stored with team `-`, as slack-bolt looks it up
(`is_enterprise_install=True`). Both stores also offer the `async_…` methods of `AsyncInstallationStore` /
`AsyncOAuthStateStore`, so an `AsyncApp` can use them; they call Redis synchronously (one round trip or two).

How it fails: a Redis error propagates (slack-bolt turns it into an install error page); a missing install is
`None`; an unknown, reused or expired OAuth state is refused (`consume` returns False). Tokens are never logged.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from logging import Logger
from typing import Any

from redis import Redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store import OAuthStateStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.token_rotation import TokenRotator

from bot.slack import web_api_url
from workers.settings import Settings

log = logging.getLogger("lobbybot.slack.installations")
STATE_SECONDS = 600
ROTATE_MINUTES = 120  # slack-bolt's default: refresh a rotating token when it has less than this left
_NONE = "-"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisInstallationStore(InstallationStore, AsyncInstallationStore):
    """Installs per (enterprise, team): the latest bot, the latest installer, and the latest per user."""

    def __init__(self, redis: Redis, prefix: str = "lobbybot:", *, logger: Logger | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self._logger = logger or logging.getLogger("lobbybot.slack.installations")

    @property
    def logger(self) -> Logger:
        return self._logger

    def _base(self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False,
              ) -> str:
        team = _NONE if is_enterprise_install else (team_id or _NONE)
        return f"{self.prefix}slack:installation:{enterprise_id or _NONE}:{team}"

    # -- writes ---------------------------------------------------------------------------------------------
    def save(self, installation: Installation) -> None:
        base = self._base(installation.enterprise_id, installation.team_id, installation.is_enterprise_install)
        entity = json.dumps(installation.__dict__)
        with self.redis.pipeline() as pipe:
            pipe.set(f"{base}:installer", entity)
            if installation.user_id:
                pipe.set(f"{base}:installer:{installation.user_id}", entity)
                pipe.sadd(f"{base}:users", installation.user_id)
            pipe.execute()
        self.save_bot(installation.to_bot())

    def save_bot(self, bot: Bot) -> None:
        if bot.bot_token is None:  # a user-only install: nothing to post with
            return
        base = self._base(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        with self.redis.pipeline() as pipe:
            pipe.set(f"{base}:bot", json.dumps(bot.__dict__))
            if bot.team_id and not bot.is_enterprise_install:
                pipe.set(f"{self.prefix}slack:installation_team:{bot.team_id}", bot.enterprise_id or _NONE)
            pipe.execute()

    def delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        keys = [f"{self._base(enterprise_id, team_id)}:bot"]
        if team_id:
            keys.append(f"{self.prefix}slack:installation_team:{team_id}")
        self.redis.delete(*keys)

    def delete_installation(self, *, enterprise_id: str | None, team_id: str | None,
                            user_id: str | None = None) -> None:
        base = self._base(enterprise_id, team_id)
        if user_id is not None:
            with self.redis.pipeline() as pipe:
                pipe.delete(f"{base}:installer:{user_id}")
                pipe.srem(f"{base}:users", user_id)
                pipe.execute()
            return
        users = [_text(member) for member in self.redis.smembers(f"{base}:users")]
        self.redis.delete(f"{base}:installer", f"{base}:users", *(f"{base}:installer:{user}" for user in users))

    # -- reads ----------------------------------------------------------------------------------------------
    def find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                 is_enterprise_install: bool | None = False) -> Bot | None:
        raw = self.redis.get(f"{self._base(enterprise_id, team_id, is_enterprise_install)}:bot")
        return Bot(**json.loads(raw)) if raw else None

    def find_installation(self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None,
                          is_enterprise_install: bool | None = False) -> Installation | None:
        base = self._base(enterprise_id, team_id, is_enterprise_install)
        raw = self.redis.get(f"{base}:installer:{user_id}" if user_id else f"{base}:installer")
        if not raw:
            return None
        installation = Installation(**json.loads(raw))
        # A user's install may be older than the workspace's latest bot token (rotation, reinstall): use the newest.
        bot = self.find_bot(enterprise_id=enterprise_id, team_id=team_id,
                            is_enterprise_install=is_enterprise_install)
        if bot is not None and installation.bot_token != bot.bot_token:
            installation.bot_id = bot.bot_id
            installation.bot_user_id = bot.bot_user_id
            installation.bot_token = bot.bot_token
            installation.bot_scopes = bot.bot_scopes
            installation.bot_refresh_token = bot.bot_refresh_token
            installation.bot_token_expires_at = bot.bot_token_expires_at
        return installation

    # -- async twins (AsyncApp) -----------------------------------------------------------------------------
    async def async_save(self, installation: Installation) -> None:
        self.save(installation)

    async def async_save_bot(self, bot: Bot) -> None:
        self.save_bot(bot)

    async def async_find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                             is_enterprise_install: bool | None = False) -> Bot | None:
        return self.find_bot(enterprise_id=enterprise_id, team_id=team_id,
                             is_enterprise_install=is_enterprise_install)

    async def async_find_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                      user_id: str | None = None, is_enterprise_install: bool | None = False,
                                      ) -> Installation | None:
        return self.find_installation(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id,
                                      is_enterprise_install=is_enterprise_install)

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        self.delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                        user_id: str | None = None) -> None:
        self.delete_installation(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        self.delete_all(enterprise_id=enterprise_id, team_id=team_id)


class RedisOAuthStateStore(OAuthStateStore, AsyncOAuthStateStore):
    """One-time OAuth `state` values that expire: `consume` is true once, within `expiration_seconds`."""

    def __init__(self, redis: Redis, prefix: str = "lobbybot:", *, expiration_seconds: int = STATE_SECONDS,
                 logger: Logger | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.expiration_seconds = expiration_seconds
        self._logger = logger or logging.getLogger("lobbybot.slack.installations")

    @property
    def logger(self) -> Logger:
        return self._logger

    def issue(self, *args: Any, **kwargs: Any) -> str:
        state = uuid.uuid4().hex
        self.redis.set(f"{self.prefix}slack:oauth_state:{state}", "1", ex=self.expiration_seconds)
        return state

    def consume(self, state: str) -> bool:
        # GETDEL: two callbacks racing with the same state cannot both succeed; Redis expiry refuses old ones.
        found = self.redis.getdel(f"{self.prefix}slack:oauth_state:{state}") is not None
        if not found:
            self.logger.warning("OAuth state refused: unknown, already used or expired")
        return found

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return self.issue(*args, **kwargs)

    async def async_consume(self, state: str) -> bool:
        return self.consume(state)


def bot_token(redis: Redis, settings: Settings, team_id: str) -> str | None:
    """The bot token to post in workspace `team_id`: `SLACK_BOT_TOKEN` in single-workspace mode, else the
    installed bot's token for that team (or for the org-wide install whose enterprise id is `team_id`, the
    address an org-wide install uses), falling back to `SLACK_BOT_TOKEN` when that is set too. `None` when the
    app is not installed there.

    With token rotation on (the install has a refresh token and an expiry), a token expiring within
    `ROTATE_MINUTES` is refreshed first through `oauth.v2.access` (`LOBBYBOT_SLACK_API_URL`) and saved, as
    slack-bolt does on its side; one process refreshes at a time (`{prefix}slack:rotating:{team}`, 30 s), the
    others keep the current token, still valid. A failed refresh keeps the current token: if it has expired,
    the post fails and the delivery core pauses the channel with what to do."""
    single = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token is not None else None
    if single is not None and not settings.slack_client_id:
        return single
    store = RedisInstallationStore(redis, settings.redis_prefix)
    enterprise = redis.get(f"{settings.redis_prefix}slack:installation_team:{team_id}")
    enterprise_id = _text(enterprise) if enterprise is not None else None
    bot = (store.find_bot(enterprise_id=None if enterprise_id in (None, _NONE) else enterprise_id, team_id=team_id)
           or store.find_bot(enterprise_id=team_id, team_id=None, is_enterprise_install=True))
    if bot is None:
        return single  # multi-workspace with SLACK_BOT_TOKEN too: that token is the fallback, not the rule
    if bot.bot_refresh_token and bot.bot_token_expires_at is not None and settings.slack_client_id \
            and settings.slack_client_secret is not None \
            and bot.bot_token_expires_at <= time.time() + ROTATE_MINUTES * 60 \
            and redis.set(f"{settings.redis_prefix}slack:rotating:{team_id}", "1", nx=True, ex=30):
        rotator = TokenRotator(client_id=settings.slack_client_id,
                               client_secret=settings.slack_client_secret.get_secret_value(),
                               client=WebClient(base_url=web_api_url(settings.slack_api_url),
                                                timeout=int(settings.http_timeout)))
        try:
            rotated = rotator.perform_bot_token_rotation(bot=bot, minutes_before_expiration=ROTATE_MINUTES)
        except SlackTokenRotationError as exc:
            log.warning("Slack token refresh for team %s failed: %s", team_id, exc.api_error.response.get("error"))
            rotated = None
        if rotated is not None:
            store.save_bot(rotated)
            bot = rotated
    return bot.bot_token

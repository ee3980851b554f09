"""Logging for every lobbybot process: one line per event, as text or JSON lines, with secrets redacted.

`configure(settings)` is called by each entry point of `bot/cli.py` before anything logs. It installs one
handler on the root logger (stderr; RQ's loggers propagate to it, so RQ does not add its own), at
`LOBBYBOT_LOG_LEVEL`, formatted by `LOBBYBOT_LOG_FORMAT`:

    text   2026-11-24 10:15:00,123 INFO lobbybot.jobs: poll feeds: 3 fetched …
    json   {"time": "2026-11-24T10:15:00.123Z", "level": "INFO", "logger": "lobbybot.jobs", "message": "…",
            …extras passed with `extra=`, "exc": "Traceback …" when there is one}

Secrets: a `RedactFilter` on that handler replaces every secret of the settings — each `SecretStr` field (Slack
and Discord tokens, client and signing secrets, API keys) and the password of `REDIS_URL` — with `***` in the
message, its arguments, extras, the exception text and the stack, before any formatter sees the record. Values
shorter than 4 characters are not redacted (they would mangle ordinary words); a secret that short is a
configuration mistake anyway. The filter never raises: a record it cannot redact is dropped to a fixed line.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from workers.settings import Settings

MASK = "***"
MIN_SECRET = 4
# Attributes every LogRecord has; anything else on a record came from `extra=` and is shown by the JSON format.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value `settings` holds: its `SecretStr` fields and the password of REDIS_URL."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
    if settings.redis_url:
        password = urlsplit(settings.redis_url).password
        if password:
            found.append(password)
    return sorted({secret for secret in found if len(secret) >= MIN_SECRET}, key=len, reverse=True)


def display_url(url: str) -> str:
    """`url` without its password (`redis://:***@host:6379/0`), for logs and one-line errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:{MASK}@{host}{port}", parts.path, parts.query, ""))


class Redactor:
    """Replaces each of `secrets` with `***` in a string (longest first, so a secret inside another goes too)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class RedactFilter(logging.Filter):
    """Redacts a record in place: message and arguments (merged), extras, exception text and stack."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redact.secrets:
            return True
        try:
            record.msg, record.args = self.redact(record.getMessage()), None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.redact(record.exc_text)
            if record.stack_info:
                record.stack_info = self.redact(record.stack_info)
            for key, value in list(vars(record).items()):
                if key not in _STANDARD and isinstance(value, str):
                    setattr(record, key, self.redact(value))
        except Exception:  # a bad format string must not leak its raw arguments either
            record.msg, record.args, record.exc_info, record.exc_text = "(unloggable record)", None, None, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                body[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            body["exc"] = record.exc_text
        if record.stack_info:
            body["stack"] = record.stack_info
        return json.dumps(body, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of the record (a test's capture, a redirected stream)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def make_handler(settings: Settings, stream: Any = None) -> logging.Handler:
    """A stream handler (stderr by default) with the settings' format and their secrets redacted."""
    handler = logging.StreamHandler(stream) if stream is not None else StderrHandler()
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactFilter(Redactor(secrets_of(settings))))
    return handler


def configure(settings: Settings) -> None:
    """Make the root logger write one redacted line per record to stderr, replacing earlier handlers."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_lobbybot", False):
            root.removeHandler(old)
    handler = make_handler(settings)
    handler._lobbybot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the poll summary
    logging.getLogger("httpcore").setLevel(logging.WARNING)

"""The secret scan of the whole test run: no token or secret may appear in any log or process output.

What is scanned: every log record of the test process (a root handler installed by `tests/conftest.py`, at
INFO and above), and the stdout/stderr of every lobbybot process started through `tests/processes.py` (or
registered with `remember_output` / `remember_file`). What is looked for: every secret value the tests
configured — the `SecretStr` fields of settings built by `make_settings`, the secret environment variables
passed to processes through `clean_env` (the REDIS_URL password included) — and anything shaped like the
suite's distinctive fakes (`…SECRET…` inside a token-looking word). At the end of the session `tests/conftest.py`
fails the run listing each offending line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

SECRET_ENV = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_CLIENT_SECRET", "DISCORD_TOKEN",
              "LOBBYBOT_LDA_API_KEY", "LOBBYBOT_CLQ_API_KEY", "LOBBYBOT_CLQ_SIGNING_SECRET")
MIN_LENGTH = 8  # shorter test values ("secret", "xoxb-1") are ordinary words and would flag innocent lines
DISTINCTIVE = re.compile(r"[\w.-]*-test-SECRET[\w.-]*|TESTSECRET[\w-]*")

secrets: set[str] = set()
outputs: list[str] = []
files: list[Path] = []


def remember_secret(value: str | None) -> None:
    if value and len(value) >= MIN_LENGTH:
        secrets.add(value)


def remember_env(env: dict[str, str]) -> None:
    """Note the secret values of an environment passed to a lobbybot process."""
    for name in SECRET_ENV:
        remember_secret(env.get(name))
    if env.get("REDIS_URL"):
        remember_secret(urlsplit(env["REDIS_URL"]).password)


def remember_output(*texts: str | bytes | None) -> None:
    for text in texts:
        if text:
            outputs.append(text.decode("utf-8", "replace") if isinstance(text, bytes) else text)


def remember_file(path: Path) -> None:
    files.append(path)


def find_leaks(texts: Iterable[str], known: Iterable[str]) -> list[str]:
    """Each line of `texts` holding one of `known` or a distinctive fake secret, with what it holds."""
    values = sorted(set(known), key=len, reverse=True)
    found = []
    for text in texts:
        for line in text.splitlines():
            hits = [value for value in values if value in line] + DISTINCTIVE.findall(line)
            if hits:
                found.append(f"{hits[0]!r} in: {line[:300]}")
    return found


def all_texts(collected: Iterable[str]) -> list[str]:
    texts = [*collected, *outputs]
    for path in files:
        if path.exists():
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return texts


class Collector(logging.Handler):
    """Keeps the formatted text of every record (message, exception and stack)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.texts.append(self.format(record))
        except Exception:  # a record that cannot be formatted is the test's problem, not the scan's
            self.texts.append(str(record.msg))

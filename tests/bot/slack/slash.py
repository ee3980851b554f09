"""Helpers for Slack web tests: a real `lobbybot web` process on a free port, slash commands in Slack's wire
shape (form-encoded, signed with the v0 HMAC scheme that `slack_sdk.signature.SignatureVerifier` checks); the
records to search are `tests.records.sample_records`."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from pathlib import Path
from subprocess import Popen
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.processes import clean_env, free_port, start

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
_triggers = itertools.count(1)


def slash_body(text: str, *, team: str = "T1", channel: str = "C1", user: str = "UADMIN",
               response_url: str = "http://127.0.0.1:9/commands/T1/1/x", trigger_id: str | None = None) -> str:
    """A `/lobby` payload as Slack sends it (application/x-www-form-urlencoded)."""
    return urlencode({
        "token": "deprecated-verification-token", "team_id": team, "team_domain": "lobbybot-test",
        "channel_id": channel, "channel_name": "public-affairs", "user_id": user, "user_name": "alex",
        "command": "/lobby", "text": text, "api_app_id": "A1", "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": trigger_id or f"{next(_triggers)}.1.{time.time_ns()}",
    })


def signed(body: str, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack adds: `v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": f"v0={digest}"}


class Web:
    """`lobbybot web` as a process: `post_command(text)` sends a signed /lobby and returns the HTTP response."""

    def __init__(self, redis_url: str, cwd: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Popen[str] = start("web", *args, env=clean_env(REDIS_URL=redis_url, PORT=str(self.port),
                                                                    **env), cwd=cwd)
        self.http = httpx.Client(base_url=self.url, timeout=10)
        self.wait_healthy()

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"lobbybot web did not start: {self.stop()}")
            time.sleep(0.1)

    def post_command(self, text: str, *, headers: dict[str, str] | None = None, **fields: Any) -> httpx.Response:
        body = slash_body(text, **fields)
        return self.http.post("/slack/events", content=body, headers={**signed(body), **(headers or {})})

    def stop(self) -> str:
        """Stop with SIGTERM (as a host does) and return what the process wrote on stderr."""
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
        _, err = self.process.communicate(timeout=30)
        return err

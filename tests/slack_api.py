"""A mock Slack Web API on 127.0.0.1 (the pattern of bolt-python's `tests/mock_web_api_server`), for tests that
point `WebClient(base_url=…)`, `LOBBYBOT_SLACK_API_URL` or a `response_url` at it.

    api = SlackAPI()                      # a real threaded HTTP server on a free port
    api.base_url                          # "http://127.0.0.1:<port>/" — WebClient base_url (trailing slash)
    api.url("/response/T1/abc")           # an address for a response_url
    api.rate_limit("chat.postMessage", times=2, retry_after=1)   # the next 2 calls get HTTP 429 + Retry-After
    api.fail("chat.postMessage", "channel_not_found")            # every next call: {"ok": false, "error": …}
    api.script("chat.postMessage", Reply(503, {"ok": False, "error": "fatal_error"}))  # queue any replies
    api.calls("chat.postMessage")         # the recorded requests (`Call`: method, path, body, authorization, …)
    api.wait("/response/T1/abc")          # wait until that many requests arrived (for async senders)

Methods are matched by name whether the client posts to `/chat.postMessage` or `/api/chat.postMessage`.
Scripted replies are used first, in order; then a `fail` error if set; then the default `ok` reply in Slack's
real shape: `chat.postMessage` (channel, increasing `ts`, the `message` echoed, `thread_ts` kept),
`chat.postEphemeral`, `chat.update`, `auth.test`, `oauth.v2.access` (the v2 shape: `access_token`, `scope`,
`bot_user_id`, `app_id`, `team`, `enterprise`, `authed_user`, `is_enterprise_install`; with
`grant_type=refresh_token`, the rotated `access_token` + `refresh_token` + `expires_in`); any other method
answers `{"ok": true}`, and any other path (a `response_url`) answers `ok` as text, as Slack's webhooks do.
Every request is recorded, including rate-limited and failed ones (`Call.status`, `Call.ok` say what was
answered). Tokens arrive in the `Authorization` header (`Bearer xoxb-…`; Basic for `oauth.v2.access`).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.wire import LocalServer, QuietHandler

_METHOD = re.compile(r"^/(?:api/)?([a-z]+(?:\.[a-zA-Z0-9]+)+)$")


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | str = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    method: str  # the Web API method ("chat.postMessage"), or "" for another path
    path: str
    body: dict[str, Any]  # the JSON body, or the form / query fields (one value each)
    headers: dict[str, str]  # lower-case names
    status: int = 0  # the HTTP status answered
    ok: bool = False  # answered 200 with "ok": true (or a webhook's "ok")

    @property
    def authorization(self) -> str:
        return self.headers.get("authorization", "")


class SlackAPI(LocalServer[Call]):
    def __init__(self, *, team_id: str = "T1", bot_token: str = "xoxb-installed-token",
                 enterprise_id: str | None = None) -> None:
        self.team_id, self.bot_token, self.enterprise_id = team_id, bot_token, enterprise_id
        self._scripts: dict[str, deque[Reply]] = {}
        self._errors: dict[str, str] = {}
        self._ts = itertools.count(100)
        super().__init__("/")

    def handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                url = urlsplit(self.path)
                body: dict[str, Any] = dict(parse_qsl(url.query))
                if "json" in (self.headers.get("Content-Type") or "") and raw:
                    body.update(json.loads(raw))
                elif raw:
                    body.update(parse_qsl(raw, keep_blank_values=True))
                match = _METHOD.match(url.path)
                call = Call(match.group(1) if match else "", url.path, body,
                            {k.lower(): v for k, v in self.headers.items()})
                reply = api._reply(call)
                call.status = reply.status
                call.ok = reply.status == 200 and (not isinstance(reply.body, dict) or bool(reply.body.get("ok")))
                api.record(call)
                data = (json.dumps(reply.body) if isinstance(reply.body, dict) else reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=utf-8" if isinstance(reply.body, dict)
                                 else "text/plain; charset=utf-8")
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self.do_POST()

        return Handler

    # -- scripting -------------------------------------------------------------------------------------------
    def script(self, method: str, *replies: Reply) -> None:
        """Answer the next calls of `method` (or of a path) with `replies`, in order."""
        with self._lock:
            self._scripts.setdefault(method, deque()).extend(replies)

    def rate_limit(self, method: str, times: int, retry_after: int = 1) -> None:
        """The next `times` calls get HTTP 429 with `Retry-After`, the body Slack sends with it."""
        self.script(method, *[Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
                              for _ in range(times)])

    def fail(self, method: str, error: str | None) -> None:
        """From now on `method` answers `{"ok": false, "error": error}` (HTTP 200, as Slack does); None stops."""
        with self._lock:
            if error is None:
                self._errors.pop(method, None)
            else:
                self._errors[method] = error

    # -- reading what arrived --------------------------------------------------------------------------------
    def calls(self, method_or_path: str) -> list[Call]:
        with self._lock:
            return [c for c in self.requests if method_or_path in (c.method, c.path)]

    def posted(self) -> list[Call]:
        """The `chat.postMessage` calls that were answered ok (what a channel shows)."""
        return [c for c in self.calls("chat.postMessage") if c.ok]

    def wait(self, method_or_path: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """The calls of `method_or_path` once at least `count` arrived (or what arrived by `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(found := self.calls(method_or_path)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return found

    # -- answers ---------------------------------------------------------------------------------------------
    def _reply(self, call: Call) -> Reply:
        key = call.method or call.path
        with self._lock:
            queued = self._scripts.get(key)
            if queued:
                return queued.popleft()
            error = self._errors.get(key)
        if error:
            return Reply(200, {"ok": False, "error": error})
        if not call.method:
            return Reply(200, "ok")
        return Reply(200, self._ok(call))

    def _ok(self, call: Call) -> dict[str, Any]:
        body = call.body
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            ts = f"1700000000.{next(self._ts):06d}"
            if call.method == "chat.postEphemeral":
                return {"ok": True, "message_ts": ts}
            message: dict[str, Any] = {"type": "message", "subtype": "bot_message", "text": body.get("text", ""),
                                       "user": "UBOT", "bot_id": "B1", "app_id": "A1", "ts": ts,
                                       "team": self.team_id}
            if body.get("blocks"):
                message["blocks"] = body["blocks"]
            if body.get("thread_ts"):
                message["thread_ts"] = body["thread_ts"]
            return {"ok": True, "channel": body.get("channel", ""), "ts": body.get("ts", ts) if
                    call.method == "chat.update" else ts, "message": message}
        if call.method == "auth.test":
            return {"ok": True, "url": "https://lobbybot-test.slack.com/", "team": "Lobbybot Test",
                    "user": "lobbybot", "team_id": self.team_id, "user_id": "UBOT", "bot_id": "B1",
                    "enterprise_id": self.enterprise_id, "is_enterprise_install": False}
        if call.method == "oauth.v2.access":
            enterprise = {"id": self.enterprise_id, "name": "Lobbybot Grid"} if self.enterprise_id else None
            reply = {"ok": True, "access_token": self.bot_token, "token_type": "bot",
                     "scope": "commands,chat:write,chat:write.public", "bot_user_id": "UBOT", "app_id": "A1",
                     "team": {"id": self.team_id, "name": "Lobbybot Test"}, "enterprise": enterprise,
                     "authed_user": {"id": "U1"}, "is_enterprise_install": False}
            if body.get("grant_type") == "refresh_token":  # token rotation: a new token and refresh token
                reply.update(access_token=f"{self.bot_token}-refreshed", refresh_token="xoxe-1-refreshed",
                             expires_in=43200)
            return reply
        return {"ok": True}

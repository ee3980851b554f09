"""A mock Discord REST API on 127.0.0.1 (real HTTP, a threaded `http.server`), in Discord's public shapes.

    POST /channels/{id}/messages          creates a message; answers {"id", "channel_id", "embeds", "nonce", …}
    PUT  /applications/{id}/commands      bulk overwrite of global commands; answers them with ids

It behaves like Discord where lobbybot depends on it:
- `Authorization: Bot <token>` must carry the expected token, else 401 `{"message": "401: Unauthorized", "code": 0}`.
- `nonce` + `enforce_nonce: true`: a second message with a nonce already used by this bot is not created; the
  first message is returned (Discord keeps nonces a few minutes; this mock keeps them for the test).
- `channels[id] = (status, code, message)` makes a channel answer an error, e.g. (404, 10003, "Unknown Channel").
- `plan` is a list of actions applied to the next requests, one per request, in order:
  `Limit(retry_after, global_=False)` answers 429 with Discord's body and headers; `Status(502)` answers that
  status; `Drop()` creates the message, then closes the connection without answering (a lost response).
Every request is recorded (`requests`: method, path, headers, JSON body).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.wire import LocalServer, QuietHandler


@dataclass
class Limit:
    retry_after: float
    global_: bool = False


@dataclass
class Status:
    status: int
    body: dict[str, Any] = field(default_factory=lambda: {"message": "502: Bad Gateway", "code": 0})


@dataclass
class Drop:
    pass


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class DiscordAPI(LocalServer[Request]):
    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.messages: list[dict[str, Any]] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.channels: dict[str, tuple[int, int, str]] = {}
        self.plan: list[Limit | Status | Drop] = []
        self._nonces: dict[str, dict[str, Any]] = {}
        self._next_id = 1_300_000_000_000_000_001
        super().__init__("/api/v10")

    def handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                with api._lock:
                    api.requests.append(Request(self.command, self.path, headers, body))
                    action = api.plan.pop(0) if api.plan else None
                if headers.get("authorization") != f"Bot {api.token}":
                    self._reply(401, {"message": "401: Unauthorized", "code": 0})
                    return
                if isinstance(action, Limit):
                    scope = "global" if action.global_ else "user"
                    extra = {"X-RateLimit-Global": "true"} if action.global_ else {}
                    self._reply(429, {"message": "You are being rate limited.", "retry_after": action.retry_after,
                                      "global": action.global_},
                                {"Retry-After": str(max(1, round(action.retry_after))), "X-RateLimit-Scope": scope,
                                 **extra})
                    return
                if isinstance(action, Status):
                    self._reply(action.status, action.body)
                    return
                parts = self.path.removeprefix("/api/v10").strip("/").split("/")
                if self.command == "POST" and len(parts) == 3 and parts[0] == "channels" and parts[2] == "messages":
                    status, result = api._create(parts[1], body)
                    if isinstance(action, Drop):
                        self.close_connection = True  # the message exists, but its response is lost
                        return
                    self._reply(status, result, {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4",
                                                 "X-RateLimit-Reset-After": "1.0", "X-RateLimit-Bucket": "abcd"})
                    return
                if self.command == "PUT" and len(parts) == 3 and parts[0] == "applications" and parts[2] == "commands":
                    api.commands[parts[1]] = [{**command, "id": str(1000 + n), "application_id": parts[1],
                                               "version": "1"} for n, command in enumerate(body)]
                    self._reply(200, api.commands[parts[1]])
                    return
                self._reply(404, {"message": "404: Not Found", "code": 0})

            do_POST = do_PUT = _handle

        return Handler

    def _create(self, channel: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if channel in self.channels:
            status, code, message = self.channels[channel]
            return status, {"message": message, "code": code}
        with self._lock:
            nonce = body.get("nonce")
            if nonce is not None and body.get("enforce_nonce") and nonce in self._nonces:
                return 200, self._nonces[nonce]
            message = {"id": str(self._next_id), "channel_id": channel, "type": 19 if "message_reference" in body
                       else 0, "content": body.get("content", ""), "embeds": body.get("embeds", []), "nonce": nonce,
                       "message_reference": body.get("message_reference"),
                       "author": {"id": "1234", "username": "lobbybot", "bot": True}}
            self._next_id += 1
            self.messages.append(message)
            if nonce is not None:
                self._nonces[nonce] = message
        return 200, message

    def posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST"]

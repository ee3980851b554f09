"""Fakes at the wire: a real HTTP server on 127.0.0.1 that serves recorded payloads.

`LocalServer` is the skeleton the fakes share (`FeedServer` here, `tests.slack_api.SlackAPI`,
`tests.discord_api.DiscordAPI`): a threaded HTTP server on a free port of 127.0.0.1 serving from a daemon thread,
the requests it recorded (`requests`, appended under a lock by `record`), `url(path)` and `close()`.

`FeedServer` answers each path (with its query string, or else without) from a `Route` (status, body,
headers, delay) and honours `If-None-Match`
against the route's ETag exactly as a feed host does; it records every request so tests can assert on what
lobbybot sent (conditional headers, User-Agent).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

R = TypeVar("R")

# Every external base URL of the settings, pointed at a closed port unless a test names its local fake, so a
# test or process that forgets to is refused instead of reaching the internet.
NOWHERE = "http://127.0.0.1:9/"
OFFLINE = ("slack_api_url", "discord_api_url", "google_news_url", "ckan_url", "ocl_communications_url",
           "ocl_registrations_url", "ocl_recent_url", "lda_url", "clq_url")

PAYLOADS = Path(__file__).parent / "payloads"
DEMO_FEEDS = Path(__file__).parent.parent / "bot" / "demo" / "feeds"


ITEM = """<item><title>{title}</title><link>https://news.example/{slug}</link><guid>https://news.example/{slug}</guid>
<pubDate>Tue, 24 Nov 2026 10:15:00 GMT</pubDate><description>{title}.</description></item>"""


def rss(*titles: str) -> str:
    """A small RSS 2.0 feed with one item per title (link and guid made from the title)."""
    items = "".join(ITEM.format(title=t, slug=re.sub(r"\W+", "-", t.lower())) for t in titles)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Lobby News</title>'
            f"<link>https://news.example/</link><language>en-ca</language>{items}</channel></rss>")


def payload(name: str) -> bytes:
    for folder in (PAYLOADS, DEMO_FEEDS):
        if (folder / name).exists():
            return (folder / name).read_bytes()
    raise FileNotFoundError(name)


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/rss+xml; charset=utf-8"
    delay: float = 0.0
    etag: bool = True


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    method: str = "GET"
    at: float = field(default_factory=time.monotonic)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not print each request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LocalServer(Generic[R]):
    """A real HTTP server on 127.0.0.1 (free port), serving `handler()` from a daemon thread until `close()`.
    A subclass sets its own state, then calls `super().__init__(path)`; `base_url` is the origin plus `path`."""

    def __init__(self, path: str = "") -> None:
        self.requests: list[R] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.base_url = self.origin + path
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The handler class, bound to this server (a class defined in the method, closing over `self`)."""
        raise NotImplementedError

    def record(self, request: R) -> None:
        with self._lock:
            self.requests.append(request)

    def url(self, path: str) -> str:
        return self.origin + path

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class FeedServer(LocalServer[Seen]):
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        super().__init__()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.record(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, self.command))
                route = server.routes.get(self.path) or server.routes.get(urlsplit(self.path).path)
                if route is None:
                    self.send_error(404)
                    return
                if route.delay:
                    time.sleep(route.delay)
                etag = '"' + hashlib.sha1(route.body).hexdigest()[:12] + '"'
                if route.etag and route.status == 200 and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                if route.etag and route.status == 200:
                    self.send_header("ETag", etag)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(route.body)

            def do_HEAD(self) -> None:
                self.do_GET()

        return Handler

    def serve(self, path: str, body: bytes | str = b"", **options: Any) -> str:
        self.routes[path] = Route(body.encode() if isinstance(body, str) else body, **options)
        return self.url(path)

    def hits(self, path: str) -> list[Seen]:
        return [seen for seen in self.requests if seen.path == path]

"""Fakes at the wire: a real HTTP server on 127.0.0.1 that serves recorded payloads.

`FeedServer` answers each path (with its query string, or else without) from a `Route` (status, body,
headers, delay) and honours `If-None-Match`
against the route's ETag exactly as a feed host does; it records every request so tests can assert on what
lobbybot sent (conditional headers, User-Agent).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Every external base URL of the settings, pointed at a closed port unless a test names its local fake, so a
# test or process that forgets to is refused instead of reaching the internet.
NOWHERE = "http://127.0.0.1:9/"
OFFLINE = ("slack_api_url", "discord_api_url", "google_news_url", "ckan_url", "ocl_communications_url",
           "ocl_registrations_url", "ocl_recent_url", "lda_url", "clq_url")

PAYLOADS = Path(__file__).parent / "payloads"
DEMO_FEEDS = Path(__file__).parent.parent / "bot" / "demo" / "feeds"


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


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, self.command))
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

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def serve(self, path: str, body: bytes | str = b"", **options: Any) -> str:
        self.routes[path] = Route(body.encode() if isinstance(body, str) else body, **options)
        return self.url(path)

    def hits(self, path: str) -> list[Seen]:
        return [seen for seen in self.requests if seen.path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

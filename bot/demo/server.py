"""A tiny feed server on 127.0.0.1 for the demo: serves the bundled sample feeds with ETags, so the demo's
second poll is answered with 304s exactly as a real feed host would. Google News searches
(`/rss/search?...&hl=fr-CA`) are answered from the sample for that locale."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit


def _feeds() -> dict[str, bytes]:
    folder = resources.files("bot.demo") / "feeds"
    return {item.name: item.read_bytes() for item in folder.iterdir() if item.name.endswith((".xml", ".atom"))}


class _Handler(BaseHTTPRequestHandler):
    feeds: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        name = parts.path.lstrip("/")
        if parts.path == "/rss/search":
            locale = parse_qs(parts.query).get("hl", ["en-CA"])[0]
            name = "google-news-fr.xml" if locale.startswith("fr") else "google-news-en.xml"
        body = self.feeds.get(name)
        if body is None:
            self.send_error(404)
            return
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        content_type = "application/atom+xml" if name.endswith(".atom") else "application/rss+xml"
        self.send_response(200)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SampleFeedServer:
    """Serve the bundled feeds on a free port of 127.0.0.1 until `close()`."""

    def __init__(self) -> None:
        feeds = _feeds()

        class Handler(_Handler):
            pass

        Handler.feeds = feeds
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.names = sorted(n for n in feeds if not n.startswith("google-news"))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

"""The `web` process: `/healthz` on `$PORT` (the Slack request URL joins it in issue #7).

A small WSGI app under the standard library's threaded server; liveness answers 200 while Redis answers PING,
503 with the reason otherwise. SIGTERM stops it at once (it holds no work).
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from redis import Redis
from redis.exceptions import RedisError

from workers.connection import connect
from workers.settings import Settings

log = logging.getLogger("lobbybot.web")
StartResponse = Callable[..., Any]


def make_app(redis: Redis) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path != "/healthz":
            return _json(start_response, "404 Not Found", {"error": f"no route {path}"})
        try:
            redis.ping()
        except RedisError as exc:
            return _json(start_response, "503 Service Unavailable", {"status": "unhealthy",
                                                                     "redis": type(exc).__name__})
        return _json(start_response, "200 OK", {"status": "ok", "redis": "ok"})

    return app


def _json(start_response: StartResponse, status: str, body: dict[str, str]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


def serve(settings: Settings, port: int) -> None:
    server = make_server("0.0.0.0", port, make_app(connect(settings)), server_class=_ThreadingServer,
                         handler_class=_QuietHandler)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    log.info("web: serving /healthz on port %s", port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("web: stopping")
    finally:
        server.server_close()

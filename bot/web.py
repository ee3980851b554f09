"""The `web` process: Slack's request URL and `/healthz` on `$PORT`, served by gunicorn.

    /healthz                 200 {"status": "ok"} while Redis answers PING, 503 with the reason otherwise
    /readyz                  200 {"status": "ready", "queues": {…}} when Redis answers and every queue can be read
                             (`workers.status.readiness`), 503 {"status": "unready", "redis": "<error>"} otherwise
    /slack/events            slash commands (`/lobby`), signed by Slack; 401 when the signature or timestamp is bad
    /slack/install           multi-workspace only: redirects to Slack's authorize page with a one-time state
    /slack/oauth_redirect    multi-workspace only: exchanges the code and stores the install in Redis

Why gunicorn and the sync bolt `App`: gunicorn is what Heroku-style hosts expect for Python, it stops
gracefully on SIGTERM (in-flight requests finish within `GRACEFUL_SECONDS`, inside Heroku's 30 s), and
slack-bolt's sync App needs no second event loop beside Redis' and RQ's blocking clients. Gunicorn runs from
here (a `BaseApplication`), so `lobbybot web` stays the one entry point: bound to 0.0.0.0:$PORT, `gthread`
workers (`WEB_CONCURRENCY` processes, default 1, each with `threads` threads, default 4). Every worker builds its
own Redis client and bolt App after the fork.

Slack settings are checked before gunicorn starts (`bot.slack.app.mode`): with none, only `/healthz` is served
and the start-up line says Slack is off; a token without `SLACK_SIGNING_SECRET` stops with one line naming it.
Only `bot/slack/` imports Slack's SDKs, so the Slack part is imported lazily.

How it fails: a bad setting raises `SettingsError` before anything listens (exit 2); a port in use makes
gunicorn give up after its retries (exit 1); Redis down answers 503 on `/healthz` and bolt's error on commands.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from workers.connection import connect
from workers.settings import Settings

log = logging.getLogger("lobbybot.web")
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
GRACEFUL_SECONDS = 25
DEFAULT_THREADS = 4


def make_app(redis: Redis, slack: WSGIApp | None = None) -> WSGIApp:
    """`/healthz` here; `/slack/…` to `slack` (bolt's WSGI adapter) when Slack is on; 404 otherwise."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            try:
                redis.ping()
            except RedisError as exc:
                return _json(start_response, "503 Service Unavailable", {"status": "unhealthy",
                                                                         "redis": type(exc).__name__})
            return _json(start_response, "200 OK", {"status": "ok", "redis": "ok"})
        if path == "/readyz":
            from workers.status import readiness

            ready, body = readiness(redis)
            return _json(start_response, "200 OK" if ready else "503 Service Unavailable", body)
        if slack is not None and path.startswith("/slack/"):
            return slack(environ, start_response)
        return _json(start_response, "404 Not Found", {"error": f"no route {path}"})

    return app


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def build(settings: Settings, *, answer_within: float = 2.0) -> WSGIApp:
    """The whole WSGI app for these settings (called in each gunicorn worker)."""
    from bot.slack.app import mode

    redis = connect(settings)
    if mode(settings) == "off":
        return make_app(redis)
    from bot.slack.app import build_app, wsgi_app

    return make_app(redis, wsgi_app(build_app(settings, redis, answer_within=answer_within)))


def serve(settings: Settings, port: int, *, threads: int = DEFAULT_THREADS, answer_within: float = 2.0) -> None:
    """Check the settings, then run gunicorn until SIGTERM/SIGINT (gunicorn exits the process itself)."""
    from gunicorn.app.base import BaseApplication

    from bot.slack.app import mode

    chosen = mode(settings)  # fail before listening
    connect(settings)
    workers = settings.web_concurrency
    routes = {"off": "/healthz (Slack is off: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to turn it on)",
              "single": "/healthz and /slack/events (Slack: one workspace, SLACK_BOT_TOKEN)",
              "multi": "/healthz, /slack/events, /slack/install and /slack/oauth_redirect (Slack: multi-workspace)"}
    log.info("web: serving %s on 0.0.0.0:%s (%s worker(s) × %s threads)", routes[chosen], port, workers, threads)

    options = {"bind": f"0.0.0.0:{port}", "workers": workers, "worker_class": "gthread", "threads": threads,
               "graceful_timeout": GRACEFUL_SECONDS, "timeout": 30, "keepalive": 5, "accesslog": None,
               "loglevel": "warning", "proc_name": "lobbybot-web"}

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> WSGIApp:
            return build(settings, answer_within=answer_within)

    Server().run()

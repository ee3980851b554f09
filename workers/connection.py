"""The Redis connection: the server named by `REDIS_URL`, or the demo's embedded in-memory store.

`rediss://` URLs work; for Heroku-style self-signed chains add `?ssl_cert_reqs=none` to the URL. Redis must be
a single primary (RQ does not support Redis Cluster). Responses are bytes, as RQ requires.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from redis import Redis

from workers.settings import Settings, SettingsError


def connect(settings: Settings) -> Redis:
    """A client for `REDIS_URL`; raise `SettingsError` when it is not set (only the demo runs without it)."""
    if not settings.redis_url:
        raise SettingsError("REDIS_URL: not set (e.g. redis://localhost:6379/0); only `lobbybot demo` runs without it")
    try:
        return Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5,
                              health_check_interval=30)
    except ValueError as exc:
        raise SettingsError(f"REDIS_URL: {exc}") from None


def embedded() -> Redis:
    """An in-memory Redis living in this process (fakeredis with Lua), for `lobbybot demo` only."""
    import fakeredis

    return fakeredis.FakeRedis()


def with_database(url: str, db: int) -> str:
    """`url` pointing at database `db` of the same server (benchmarks and tests keep to their own database)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))

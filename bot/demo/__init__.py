"""`lobbybot demo`: watch news alerts flow from feeds through dedupe to the console — once, not twice.

With no `REDIS_URL` it announces and uses an embedded in-memory Redis (fakeredis); with `REDIS_URL` set it uses
that server under its own key prefix (`lobbybot-demo:`, cleared first). It serves the bundled sample feeds
from 127.0.0.1, polls them with the real feeds source and inline RQ jobs, prints the alerts through the console
poster, polls again (every feed answers 304), and ends with `demo: N alerts on first poll, M on second poll`.

A real source's first poll is a silent baseline; the demo alerts on its first poll so there is something to
see (as `lobbybot import --alert` does).
"""

from __future__ import annotations

from redis import Redis

from bot.demo.server import SampleFeedServer
from workers.connection import connect, embedded
from workers.health import StateStore
from workers.jobs import enqueue_poll
from workers.settings import FeedConfig, Settings, configure

DEMO_PREFIX = "lobbybot-demo:"
DEMO_TERMS = ['"Amazon" lobbying']


def _redis(settings: Settings) -> Redis:
    if settings.redis_url:
        print(f"demo: using the Redis at REDIS_URL, keys under {DEMO_PREFIX!r}")
        conn = connect(settings)
        keys = list(conn.scan_iter(f"{DEMO_PREFIX}*"))
        if keys:
            conn.delete(*keys)
        return conn
    print("demo: REDIS_URL is not set, so the demo uses an embedded in-memory Redis (fakeredis); "
          "nothing is kept after it exits")
    return embedded()


def _poll(conn: Redis, settings: Settings, label: str) -> int:
    from bot.cli import run_inline

    enqueue_poll(conn, "feeds", alert_baseline=True)
    run_inline(conn)
    state = StateStore(conn, settings.redis_prefix).load("feeds")
    counts = state.last_counts
    print(f"demo: {label}: {counts['fetched']} feeds fetched ({counts['not_modified']} unchanged), "
          f"{counts['new']} new, {counts['duplicate']} duplicates, {counts['skipped']} unusable entries skipped, "
          f"{counts['alerted']} alerts")
    if state.reason:
        print(f"demo:   feeds health {state.status}: {state.reason}")
    return counts["alerted"]


def run_demo(settings: Settings) -> int:
    conn = _redis(settings)
    server = SampleFeedServer()
    try:
        print(f"demo: serving {len(server.names)} sample feeds and Google News searches for "
              f"{', '.join(DEMO_TERMS)} (fr-CA, en-CA) from {server.base_url}")
        demo_settings = settings.model_copy(update={
            "redis_prefix": DEMO_PREFIX,
            "feeds": [FeedConfig(url=f"{server.base_url}/{name}", name=name) for name in server.names],
            "news_terms": DEMO_TERMS,
            "google_news_url": f"{server.base_url}/rss/search",
            "alert_channel": "console:demo",
            "batch_threshold": 1000,  # show every alert (a real burst becomes one summary message)
        })
        configure(demo_settings)
        first = _poll(conn, demo_settings, "first poll")
        second = _poll(conn, demo_settings, "second poll")
    finally:
        configure(None)
        server.close()
    print(f"demo: {first} alerts on first poll, {second} on second poll")
    return 0

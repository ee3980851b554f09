"""SIGTERM, as Heroku sends it to every process of a dyno: each lobbybot process exits 0 within 25 s (the promise
in docs/operations.md), and a job cut off by the shutdown is retried and stays exactly-once."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.worker import Worker

from tests.processes import Daemon, clean_env, free_port, get, wait_until
from tests.wire import FeedServer, rss
from workers.events import Event
from workers.ingest import ingest
from workers.jobs import POLL_RETRY, poll_source
from workers.lifecycle import heartbeat_key

pytestmark = pytest.mark.processes
STOP_SECONDS = 25
ALERTS = 30
INTERVAL = 0.4  # seconds between two console posts: the delivery takes 12 s
HEADLINE = re.compile(r"^\[console:(\w+)\] (?:Communication report|News): (.+)$", re.M)
BASELINE = ["Amazon registers twenty lobbyists in Quebec", "Bell meets Treasury Board officials again"]
FRESH = ["AWS Canada logged 150 communications in a year", "Shopify lobbies Finance on digital tax"]


def reports() -> list[Event]:
    published = datetime.now(UTC) - timedelta(days=1)
    return [Event(id=f"ocl:communication:sig{n}", version="1", source="ocl", kind="communication",
                  title=f"Hydro-Québec met officials about exports (report {n})", organization="Hydro-Québec",
                  institutions=("Natural Resources Canada",), published_at=published,
                  url=f"https://lobbycanada.gc.ca/comm/sig{n}") for n in range(ALERTS)]


def test_sigterm_mid_delivery_and_mid_poll_cuts_jobs_that_are_retried_exactly_once(
        redis: Redis, redis_url: str, make_settings, feed_server: FeedServer, tmp_path: Path) -> None:
    """Two workers, one posting 30 alerts and one polling a slow feed, get SIGTERM: both exit 0 within 25 s,
    the cut jobs are retried, and every alert and article is posted exactly once."""
    url = feed_server.serve("/feed.xml", rss(*BASELINE))
    settings = make_settings(feeds=[url], alert_channel="console:signals", batch_threshold=ALERTS + 10)
    assert poll_source("feeds")["baseline"] == 2
    feed_server.serve("/feed.xml", rss(*BASELINE, *FRESH), delay=30)  # the poll is cut while it fetches
    env = clean_env(REDIS_URL=redis_url, LOBBYBOT_FEEDS=json.dumps([url]), LOBBYBOT_SOURCES='["feeds"]',
                    LOBBYBOT_ALERT_CHANNEL="console:signals", LOBBYBOT_BATCH_THRESHOLD=str(ALERTS + 10),
                    LOBBYBOT_CONSOLE_INTERVAL=str(INTERVAL), LOBBYBOT_LOG_LEVEL="INFO")
    ingest(redis, settings, reports(), alert=True)
    Queue("poll", connection=redis).enqueue("workers.jobs.poll_source", "feeds", job_id="poll-feeds",
                                            retry=POLL_RETRY, result_ttl=0)
    poster = Daemon("poster", ["worker", "deliver"], env, tmp_path)
    poller = Daemon("poller", ["worker", "poll"], env, tmp_path)
    fresh: list[Daemon] = []
    try:
        poster.wait_for("(report 5)", stream="out")
        wait_until(lambda: feed_server.hits("/feed.xml")[1:], 30, "the second poll starts fetching")
        before = len(HEADLINE.findall(poster.out()))
        codes = {daemon.name: daemon.terminate(STOP_SECONDS) for daemon in (poster, poller)}
        assert codes == {"poster": 0, "poller": 0}, poster.err()[-2000:] + poller.err()[-2000:]
        assert not poster.leftovers and not poller.leftovers
        assert len(HEADLINE.findall(poster.out())) < ALERTS, "the delivery was not cut"
        # Both cut jobs wait for their retry; neither failed for good nor is left "started".
        assert ScheduledJobRegistry("deliver", connection=redis).count == 1
        assert ScheduledJobRegistry("poll", connection=redis).get_job_ids() == ["poll-feeds"]
        assert StartedJobRegistry("deliver", connection=redis).count == 0
        feed_server.serve("/feed.xml", rss(*BASELINE, *FRESH))  # the retry (in 30 s) fetches at once

        fresh = [Daemon("fresh", ["worker"], env, tmp_path)]
        fresh[0].wait_for(f"(report {ALERTS - 1})", timeout=90, stream="out")
        fresh[0].wait_for(FRESH[-1], timeout=90, stream="out")
        time.sleep(2 * INTERVAL)  # anything posted twice would show now
    finally:
        for daemon in (poster, poller, *fresh):
            if daemon.alive():
                daemon.terminate(STOP_SECONDS)

    posted = Counter(HEADLINE.findall(poster.out() + poller.out() + fresh[0].out()))
    expected = {("signals", event.title) for event in reports()} | {("signals", title) for title in FRESH}
    assert set(posted) == expected, sorted(expected - set(posted))[:3]
    assert all(n == 1 for n in posted.values()), [pair for pair, n in posted.items() if n > 1]
    assert before > 0
    assert FailedJobRegistry("deliver", connection=redis).count == 0
    assert FailedJobRegistry("poll", connection=redis).count == 0


def test_idle_worker_and_scheduler_exit_cleanly_on_sigterm(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    """An idle worker and the scheduler exit 0 within 25 s of SIGTERM and unregister themselves."""
    env = clean_env(REDIS_URL=redis_url, LOBBYBOT_SOURCES="[]")
    worker = Daemon("worker", ["worker"], env, tmp_path)
    scheduler = Daemon("scheduler", ["scheduler"], env, tmp_path)
    try:
        wait_until(lambda: len(Worker.all(connection=redis)) == 1, 30, "the worker registers")
        wait_until(lambda: redis.exists(heartbeat_key("lobbybot:")), 30, "the scheduler's heartbeat")
        codes = [worker.terminate(STOP_SECONDS), scheduler.terminate(STOP_SECONDS)]
    finally:
        for daemon in (worker, scheduler):
            if daemon.alive():
                daemon.crash()

    assert codes == [0, 0], worker.err()[-2000:] + scheduler.err()[-2000:]
    assert not worker.leftovers and not scheduler.leftovers
    assert Worker.all(connection=redis) == []
    assert not redis.exists(heartbeat_key("lobbybot:")), "a stopped scheduler leaves no heartbeat behind"


def test_web_answers_readyz_and_stops_on_sigterm(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    """`lobbybot web` (gunicorn) answers /readyz with the queue depths, then exits 0 within 25 s of SIGTERM;
    with Redis unreachable /readyz says 503 and names the error, while /healthz keeps answering."""
    Queue("deliver", connection=redis).enqueue("bot.delivery.deliver", "console:x", [])
    port, dead_port = free_port(), free_port()
    web = Daemon("web", ["web"], clean_env(REDIS_URL=redis_url, PORT=str(port)), tmp_path)
    broken = Daemon("web-dead-redis", ["web"], clean_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
                                                         PORT=str(dead_port)), tmp_path)
    try:
        ready = get(port, "/readyz")
        unready = get(dead_port, "/readyz")
        codes = [web.terminate(STOP_SECONDS), broken.terminate(STOP_SECONDS)]
    finally:
        for daemon in (web, broken):
            if daemon.alive():
                daemon.crash()

    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "redis": "ok", "queues": {"poll": 0, "deliver": 1, "default": 0}}
    assert unready.status_code == 503 and unready.json() == {"status": "unready", "redis": "ConnectionError"}
    assert codes == [0, 0], web.err()[-2000:]
    assert not web.leftovers, "a gunicorn worker outlived the arbiter"

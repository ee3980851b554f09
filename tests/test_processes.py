"""lobbybot as processes: real `rq` workers, the demo, the web process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from tests.processes import clean_env, free_port, get, run, start
from tests.wire import FeedServer, rss
from workers.jobs import poll_source

pytestmark = pytest.mark.processes

BASELINE = ["Amazon registers twenty lobbyists in Quebec", "Bell meets Treasury Board officials again",
            "Hydro-Quebec export deal draws lobbyists"]
FRESH = ["AWS Canada logged 150 communications in a year", "Shopify lobbies Finance on digital tax"]


def test_two_workers_polling_one_feed_at_once_alert_once(redis: Redis, redis_url: str, make_settings,
                                                         feed_server: FeedServer, tmp_path: Path) -> None:
    """Two worker processes polling the same feed at the same moment post each new article once."""
    url = feed_server.serve("/feed.xml", rss(*BASELINE))
    make_settings(feeds=[url], alert_channel="console:newsroom")
    assert poll_source("feeds")["baseline"] == 3

    feed_server.serve("/feed.xml", rss(*BASELINE, *FRESH), delay=1.5)
    queue = Queue("poll", connection=redis)
    queue.enqueue("workers.jobs.poll_source", "feeds")
    queue.enqueue("workers.jobs.poll_source", "feeds")
    env = clean_env(REDIS_URL=redis_url, LOBBYBOT_FEEDS=json.dumps([url]),
                    LOBBYBOT_ALERT_CHANNEL="console:newsroom")
    workers = [start("worker", "--burst", env=env, cwd=tmp_path) for _ in range(2)]
    outputs = [worker.communicate(timeout=90)[0] for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0]
    second_poll = feed_server.hits("/feed.xml")[1:]
    assert len(second_poll) == 2 and abs(second_poll[0].at - second_poll[1].at) < 1.5, "polls did not overlap"
    posted = [line for out in outputs for line in out.splitlines() if line.startswith("[console:newsroom] News:")]
    assert sorted(posted) == sorted(f"[console:newsroom] News: {title}" for title in FRESH)


def test_demo_runs_with_no_configuration(tmp_path: Path) -> None:
    """`lobbybot demo` with no REDIS_URL says it is embedded, prints alerts once, and ends with the counts."""
    result = run("demo", env=clean_env(), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("embedded in-memory Redis" in line for line in lines)
    match = re.fullmatch(r"demo: (\d+) alerts on first poll, (\d+) on second poll", lines[-1])
    assert match, lines[-1]
    first, second = int(match[1]), int(match[2])
    headlines = [line for line in lines if re.match(r"\[console:demo\] News: ", line)]
    assert first > 0 and second == 0
    assert len(headlines) == first == len(set(headlines)), "an article was posted twice"


def test_demo_uses_redis_url_when_set(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    """With REDIS_URL set the demo runs against that server, under its own key prefix, twice in a row."""
    env = clean_env(REDIS_URL=redis_url)
    outputs = [run("demo", env=env, cwd=tmp_path) for _ in range(2)]

    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert "using the Redis at REDIS_URL" in result.stdout
        assert re.search(r"demo: [1-9]\d* alerts on first poll, 0 on second poll$", result.stdout.strip())
    assert redis.keys("lobbybot-demo:*") and not redis.keys("lobbybot:*")


def test_web_serves_healthz(redis_url: str, tmp_path: Path) -> None:
    """`lobbybot web` answers /healthz with 200 while Redis answers, 503 when it does not."""
    healthy_port, dead_port = free_port(), free_port()
    healthy = start("web", env=clean_env(REDIS_URL=redis_url, PORT=str(healthy_port)), cwd=tmp_path)
    broken = start("web", env=clean_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", PORT=str(dead_port)),
                   cwd=tmp_path)
    try:
        assert get(healthy_port, "/healthz").status_code == 200
        response = get(dead_port, "/healthz")
        assert response.status_code == 503 and response.json()["status"] == "unhealthy"
    finally:
        for process in (healthy, broken):
            process.terminate()
            process.communicate(timeout=10)
    assert healthy.returncode is not None

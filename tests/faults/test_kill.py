"""Exactly-once across crashes: real `lobbybot worker` processes are SIGKILLed at randomised points while they
post batches of alerts and while they poll a feed — 20 trials, seeded (the seed is in every failure message;
`LOBBYBOT_FAULT_SEED=N` replays a run) — and fresh workers finish the work: every alert appears exactly once.

How the crash is made: the whole process tree (worker, its RQ scheduler, the work horse that runs the job —
which puts itself in a process group of its own) is frozen with SIGSTOP, then SIGKILLed, as if the machine had
died (`tests.processes.Daemon.crash`).

Where the kills land. Delivery: in the pause between two posts (`LOBBYBOT_CONSOLE_INTERVAL`), where a paced
delivery spends its time; a kill in the single Redis round trip between a post and its record is the window
`bot.delivery` documents (the console poster cannot tell whether a post landed). Poll: while the feed is being
fetched (the feed server answers slowly), at a random moment of the fetch. The short stretch between dedupe
marking records as seen and fan-out queueing their alerts is not targeted here: the fan-out journal covers it
(tests/workers/test_journal.py; docs/operations.md, "What SIGKILL does").

Recovery is the product's: a killed job is retried by another worker once its heartbeat lapses (about 70 s) and
that worker's maintenance notices (at most every 30 s); a poll's retry waits 30 s more (`POLL_RETRY`). An idle
rq worker runs maintenance only when it wakes, so the test plays `lobbybot scheduler`, whose dispatchers wake
the workers in production (every 60 s there, every 5 s here). The 20 trials share one recovery window: 14
delivery channels in the test database, 6 polls in 6 databases of a `redis-server` of the test's own (one
`poll-feeds` job exists per database at a time).
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry

from tests.processes import Daemon, RedisServer, clean_env
from tests.wire import FeedServer, rss
from workers.connection import with_database
from workers.events import Event
from workers.ingest import ingest
from workers.jobs import enqueue_poll, poll_source
from workers.settings import configure, load_settings
from workers.subscriptions import Subscription, SubscriptionStore

pytestmark = [pytest.mark.faults, pytest.mark.processes]

SEED = int(os.environ.get("LOBBYBOT_FAULT_SEED") or random.randrange(2**32))
ALERTS = 20
CHANNELS = tuple(f"console:kill{n}" for n in range(14))
POLLS = 6
WORKERS = 3
INTERVAL = 0.2  # seconds between two console posts
RECOVERY_SECONDS = 240
CRON_SECONDS = 5
HEADLINE = re.compile(r"^\[(console:\w+)\] (?:Communication report|News): (.+)$", re.M)
BASELINE = ["Amazon registers twenty lobbyists in Quebec", "Bell meets Treasury Board officials again"]


def fresh_titles(db: int) -> list[str]:
    return [f"Hydro-Quebec export deal {db} draws lobbyists", f"Shopify lobbies Finance on digital tax {db}"]


def reports() -> list[Event]:
    published = datetime.now(UTC) - timedelta(days=1)
    return [Event(id=f"ocl:communication:{n}", version="1", source="ocl", kind="communication",
                  title=f"Hydro-Québec met officials about export contracts (report {n})",
                  organization="Hydro-Québec", institutions=("Natural Resources Canada",), published_at=published,
                  url=f"https://lobbycanada.gc.ca/comm/{n}") for n in range(ALERTS)]


def headlines(daemons: list[Daemon]) -> list[tuple[str, str]]:
    return [pair for daemon in daemons for pair in HEADLINE.findall(daemon.out())]


def test_workers_killed_mid_delivery_and_mid_poll_post_every_alert_exactly_once(
        redis: Redis, redis_url: str, make_settings, feed_server: FeedServer, tmp_path: Path) -> None:
    """20 SIGKILLs at random points of deliveries and polls, then fresh workers: every alert of every channel
    is posted exactly once and no job ends failed."""
    rng = random.Random(SEED)
    seed = f"(LOBBYBOT_FAULT_SEED={SEED})"
    settings = make_settings(alert_channel=None, batch_threshold=ALERTS + 10)
    store = SubscriptionStore(redis, settings.redis_prefix)
    for channel in CHANNELS:
        store.add(Subscription(channel=channel, terms=["hydro-quebec"]), actor="test")
    ingest(redis, settings, reports(), alert=True)
    assert sorted(job.args[0] for job in Queue("deliver", connection=redis).jobs) == sorted(CHANNELS)

    # The polls: one tenant per database of a server of our own, each with a baseline already taken.
    server = RedisServer(tmp_path)
    poll_urls = {}
    for db in range(1, POLLS + 1):
        url = feed_server.serve(f"/feed{db}.xml", rss(*BASELINE))
        tenant = load_settings(redis_url=with_database(server.url, db), feeds=[url], sources=["feeds"],
                               alert_channel=f"console:poll{db}")
        configure(tenant)
        assert poll_source("feeds")["baseline"] == 2, seed
        feed_server.serve(f"/feed{db}.xml", rss(*BASELINE, *fresh_titles(db)), delay=rng.uniform(2, 4))
        assert enqueue_poll(Redis.from_url(tenant.redis_url or ""), "feeds") is not None
        poll_urls[db] = url
    configure(settings)

    base = dict(LOBBYBOT_CONSOLE_INTERVAL=str(INTERVAL), LOBBYBOT_BATCH_THRESHOLD=str(ALERTS + 10),
                LOBBYBOT_LOG_LEVEL="INFO", LOBBYBOT_SOURCES='["feeds"]')
    env = clean_env(REDIS_URL=redis_url, **base)
    tenant_env = {db: clean_env(REDIS_URL=with_database(server.url, db), LOBBYBOT_FEEDS=json.dumps([url]),
                                LOBBYBOT_ALERT_CHANNEL=f"console:poll{db}", **base)
                  for db, url in poll_urls.items()}
    kill_at = {channel: rng.randint(2, ALERTS - 3) for channel in CHANNELS}
    started = 0

    def spawn(name: str, environment: dict[str, str]) -> Daemon:
        nonlocal started
        started += 1
        return Daemon(f"{name}{started}", ["worker"], environment, tmp_path)

    everyone: list[Daemon] = []
    killed: dict[str, int] = {}
    try:
        running = [spawn("deliver", env) for _ in range(WORKERS)]
        pollers = {db: spawn(f"poll{db}-", tenant_env[db]) for db in poll_urls}
        everyone += running + list(pollers.values())
        poll_kill: dict[int, float | None] = {db: None for db in poll_urls}
        deadline = time.monotonic() + 90
        while len(killed) < len(CHANNELS) + POLLS and time.monotonic() < deadline:
            done = Counter(channel for channel, _ in headlines(everyone))
            for channel in CHANNELS:
                if channel in killed or done[channel] < kill_at[channel]:
                    continue
                carrier = next((w for w in running if w.alive() and channel in {c for c, _ in headlines([w])}),
                               None)
                time.sleep(rng.uniform(0.2, 0.6) * INTERVAL)  # into the pause between two posts
                if carrier is not None:
                    carrier.crash()
                    running.remove(carrier)
                    replacement = spawn("deliver", env)
                    running.append(replacement)
                    everyone.append(replacement)
                killed[channel] = Counter(c for c, _ in headlines(everyone))[channel]
            for db in poll_urls:
                if f"poll{db}" in killed:
                    continue
                if poll_kill[db] is None and len(feed_server.hits(f"/feed{db}.xml")) >= 2:  # the fetch began
                    poll_kill[db] = time.monotonic() + rng.uniform(0.1, 1.8)
                kill_time = poll_kill[db]
                if kill_time is not None and time.monotonic() >= kill_time:
                    pollers[db].crash()
                    feed_server.serve(f"/feed{db}.xml", rss(*BASELINE, *fresh_titles(db)))  # the retry is quick
                    pollers[db] = spawn(f"poll{db}-", tenant_env[db])
                    everyone.append(pollers[db])
                    killed[f"poll{db}"] = 0
            time.sleep(0.01)
        assert len(killed) == len(CHANNELS) + POLLS, f"only {len(killed)} kills happened {seed}"
        before = Counter(channel for channel, _ in headlines(everyone))
        assert all(0 < before[channel] < ALERTS for channel in CHANNELS), f"{before} {seed}"
        assert not any(before[f"console:poll{db}"] for db in poll_urls), f"a poll was not cut {seed}"

        # Recovery: the product's own retries, with the scheduler's wake-ups played by the test.
        deadline = time.monotonic() + RECOVERY_SECONDS
        ticks = [Queue("default", connection=redis)] + [
            Queue("default", connection=Redis.from_url(with_database(server.url, db))) for db in poll_urls]
        next_tick = 0.0
        while time.monotonic() < deadline:
            done = Counter(channel for channel, _ in headlines(everyone))
            if all(done[c] >= ALERTS for c in CHANNELS) and all(done[f"console:poll{db}"] >= 2 for db in poll_urls):
                break
            if time.monotonic() >= next_tick:
                for queue in ticks:
                    queue.enqueue("workers.jobs.dispatch_digests", result_ttl=0)
                next_tick = time.monotonic() + CRON_SECONDS
            time.sleep(0.5)
        time.sleep(2 * INTERVAL)  # anything posted twice would show up now
    finally:
        configure(None)
        for daemon in everyone:
            if daemon.alive():
                daemon.terminate(25)
        server.kill()

    posted = Counter(headlines(everyone))
    expected = {(channel, event.title) for channel in CHANNELS for event in reports()}
    expected |= {(f"console:poll{db}", title) for db in poll_urls for title in fresh_titles(db)}
    missing = sorted(expected - set(posted))
    twice = sorted(pair for pair, n in posted.items() if n > 1)
    logs = "\n".join(daemon.err()[-1500:] for daemon in everyone[-3:])
    assert not missing, f"lost {len(missing)} alerts after kills at {killed} {seed}: {missing[:3]}\n{logs}"
    assert not twice, f"posted twice after kills at {killed} {seed}: {twice}"
    assert set(posted) == expected, seed
    assert FailedJobRegistry("deliver", connection=redis).count == 0, seed

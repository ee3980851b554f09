"""The poll job and the cron dispatcher: deterministic, unique poll jobs; due-ness from saved state."""

from __future__ import annotations

import threading
from datetime import timedelta

from redis import Redis
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler

from tests.wire import FeedServer, payload
from workers.health import StateStore, utcnow
from workers.jobs import QUEUES, dispatch_polls, enqueue_poll


def run_queued(redis: Redis) -> None:
    SimpleWorker([Queue(name, connection=redis) for name in QUEUES], connection=redis).work(burst=True)


def poll_jobs(redis: Redis) -> list[str]:
    return Queue("poll", connection=redis).job_ids


def test_dispatching_twice_enqueues_one_poll(redis: Redis, make_settings, feed_server: FeedServer) -> None:
    """Two dispatcher runs before the worker gets to the poll leave one poll job, with a deterministic id."""
    make_settings(feeds=[feed_server.serve("/f.xml", payload("ledevoir.xml"))])

    assert dispatch_polls() == ["feeds"]
    assert dispatch_polls() == []
    assert poll_jobs(redis) == ["poll-feeds"]


def test_concurrent_schedulers_enqueue_one_poll(redis: Redis, make_settings, feed_server: FeedServer) -> None:
    """Two schedulers firing the dispatcher at the same moment (or a restart re-firing it) poll once."""
    make_settings(feeds=[feed_server.serve("/f.xml", payload("ledevoir.xml"))])
    results: list[list[str]] = []

    def fire() -> None:
        results.append(dispatch_polls())

    threads = [threading.Thread(target=fire) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(len(result) for result in results) == [0, 0, 0, 0, 0, 1]
    assert poll_jobs(redis) == ["poll-feeds"]


def test_rq_cron_config_registers_the_dispatcher(redis: Redis, make_settings, feed_server: FeedServer) -> None:
    """`rq cron` loads workers/schedule.py; two schedulers both firing it still yield a single poll."""
    make_settings(feeds=[feed_server.serve("/f.xml", payload("ledevoir.xml"))])
    schedulers = [CronScheduler(connection=redis) for _ in range(2)]
    for scheduler in schedulers:
        scheduler.load_config_from_file("workers.schedule")
        assert [job.func_name for job in scheduler.get_jobs()] == ["workers.jobs.dispatch_polls",
                                                                   "workers.jobs.dispatch_digests"]
        scheduler.enqueue_jobs()
    SimpleWorker([Queue("default", connection=redis)], connection=redis).work(burst=True)

    assert poll_jobs(redis) == ["poll-feeds"]


def test_a_polled_source_is_not_due_until_its_interval_passes(redis: Redis, make_settings,
                                                              feed_server: FeedServer) -> None:
    """After a poll the dispatcher waits LOBBYBOT_POLL_MINUTES; then it polls again (and the 304 is cheap)."""
    settings = make_settings(feeds=[feed_server.serve("/f.xml", payload("ledevoir.xml"))], poll_minutes=15)
    dispatch_polls()
    run_queued(redis)
    assert dispatch_polls() == []

    states = StateStore(redis, settings.redis_prefix)
    state = states.load("feeds")
    state.last_poll = utcnow() - timedelta(minutes=16)
    states.save(state)
    assert dispatch_polls() == ["feeds"]
    run_queued(redis)
    assert feed_server.hits("/f.xml")[-1].headers.get("if-none-match")
    assert states.load("feeds").last_counts["not_modified"] == 1


def test_a_failing_endpoint_is_retried_at_its_backoff_time(redis: Redis, make_settings,
                                                           feed_server: FeedServer) -> None:
    """A feed that failed is polled again when its backoff ends, before the normal interval."""
    settings = make_settings(feeds=[feed_server.serve("/f.xml", "", status=503)], poll_minutes=60)
    dispatch_polls()
    run_queued(redis)
    states = StateStore(redis, settings.redis_prefix)
    state = states.load("feeds")
    assert state.status == "failing" and "503" in state.reason
    assert dispatch_polls() == []

    state.endpoints[feed_server.url("/f.xml")].retry_at = utcnow() - timedelta(seconds=1)
    states.save(state)
    assert dispatch_polls() == ["feeds"]


def test_a_disabled_source_is_not_dispatched(redis: Redis, make_settings, feed_server: FeedServer) -> None:
    """After LOBBYBOT_MAX_FAILURES failures the source stays off until a person resets it."""
    settings = make_settings(feeds=[feed_server.serve("/f.xml", "", status=500)], max_failures=1)
    dispatch_polls()
    run_queued(redis)
    states = StateStore(redis, settings.redis_prefix)
    state = states.load("feeds")
    assert state.status == "disabled" and "--reset" in state.action
    state.last_poll = utcnow() - timedelta(days=1)
    states.save(state)
    assert dispatch_polls() == []

    state.reset()
    states.save(state)
    assert dispatch_polls() == ["feeds"]


def test_a_manual_poll_while_one_is_queued_is_refused(redis: Redis, make_settings,
                                                      feed_server: FeedServer) -> None:
    """`lobbybot poll` does not queue a second poll of a source whose poll is still pending."""
    make_settings(feeds=[feed_server.serve("/f.xml", payload("ledevoir.xml"))])
    assert enqueue_poll(redis, "feeds") is not None
    assert enqueue_poll(redis, "feeds") is None
    run_queued(redis)
    assert enqueue_poll(redis, "feeds") is not None, "a finished poll must free its job id"

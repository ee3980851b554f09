"""RQ job functions: module-level, primitive arguments, idempotent, safe to run twice or be killed.

    poll_source(name)       fetch → dedupe → store/index → fan-out, then save the source's state
    dispatch_polls()        the cron job: enqueue one poll per due source, deterministic job id, unique=True

Queues: `poll` (polls), `deliver` (posting), `default` (everything else). A source's fetch failures do not
fail the job: they are recorded in its health, and the dispatcher retries the source at its `retry_at`
(5 min × 2ⁿ backoff), so a manual poll and the schedule never retry twice. Jobs are enqueued with an RQ
`Retry` so one killed with its worker (SIGKILL, Heroku's shutdown) runs again; unexpected errors are recorded
in the source's health before they propagate.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from redis import Redis
from rq import Queue, Retry, get_current_job
from rq.exceptions import DuplicateJobError
from rq.job import Job

from workers import digests, fanout, notices
from workers.connection import connect
from workers.health import SourceState, StateStore, utcnow
from workers.ingest import IngestReport, ingest_all
from workers.settings import Settings, SettingsError, current
from workers.sources import SOURCES, build_source

log = logging.getLogger("lobbybot.jobs")

POLL_QUEUE = "poll"
QUEUES = ("poll", "deliver", "default")
POLL_TIMEOUT = 25  # seconds; inside Heroku's 30 s SIGTERM window
# A weekly registry ZIP takes minutes to ingest. A poll cut off by a restart is retried, and dedupe turns the
# records it had already ingested into cheap duplicates: that is its checkpoint.
LONG_POLL_TIMEOUTS = {"ocl": 30 * 60}
POLL_RETRY = Retry(max=2, interval=[30, 120])


def job_redis(settings: Settings) -> Redis:
    """The Redis of the running job (so the demo's embedded store works), else `REDIS_URL`."""
    job = get_current_job()
    return job.connection if job is not None else connect(settings)


def http_client(settings: Settings) -> httpx.Client:
    return httpx.Client(timeout=settings.http_timeout, headers={"User-Agent": settings.user_agent})


def poll_source(name: str, alert_baseline: bool = False) -> dict[str, Any]:
    """Poll source `name` once. The first successful poll of an endpoint is a silent baseline unless
    `alert_baseline` (the demo) says otherwise. Returns the counts, also kept in the source's state."""
    settings = current()
    redis = job_redis(settings)
    states = StateStore(redis, settings.redis_prefix)
    state = states.load(name)
    baselined = {key for key, endpoint in state.endpoints.items() if endpoint.baseline_done}
    source = build_source(name, settings)
    try:
        with http_client(settings) as http:
            result = source.poll(state, http)
    except Exception as exc:
        state.status, state.reason = "failing", f"internal error while polling ({type(exc).__name__}: {exc})"
        state.action = "Report this with the worker's log; the poll is retried."
        states.save(state)
        raise
    report = IngestReport()
    for key, events in result.batches.items():
        report.add(ingest_all(redis, settings, events, alert=alert_baseline or key in baselined))
    state = result.state
    state.roll_up()
    state.last_poll = utcnow()
    state.events_total += report.total
    summary = {
        "source": name, "status": state.status, "fetched": result.fetched,
        "not_modified": result.not_modified, "skipped": result.skipped,
        **{verdict: report.counts[verdict] for verdict in ("new", "updated", "duplicate", "expired")},
        "alerted": report.alerted, "baseline": report.baseline,
    }
    state.last_counts = {key: value for key, value in summary.items() if isinstance(value, int)}
    states.save(state)
    notices.announce(redis, settings, state)
    log.info("poll %s: %s fetched (%s unchanged), %s skipped; %s; health %s", name, result.fetched,
             result.not_modified, result.skipped, report.line(), state.status)
    if result.more:
        enqueue_poll(redis, name, follow_up=True)
    return summary


def enqueue_poll(redis: Redis, name: str, *, follow_up: bool = False, alert_baseline: bool = False) -> Job | None:
    """Enqueue a poll of `name` unless one is already queued or running (returns None then).

    The job id is deterministic (`poll-<name>`) and `unique=True`, and a finished job is deleted at once
    (`result_ttl=0`), so the id is taken exactly while a poll is pending: two schedulers, a restart or a
    manual poll never double-poll. A follow-up of a poll that ran out of time gets its own id (two alternate,
    so a long backlog is read by a chain of follow-ups)."""
    job_id = f"poll-{name}"
    if follow_up:  # the running job still holds its own id: a follow-up of a follow-up takes the other one
        running = get_current_job()
        job_id = f"poll-{name}-more2" if running is not None and running.id == f"poll-{name}-more" else (
            f"poll-{name}-more")
    try:
        return Queue(POLL_QUEUE, connection=redis).enqueue(
            poll_source, name, alert_baseline=alert_baseline, job_id=job_id, unique=True, result_ttl=0,
            failure_ttl=300, job_timeout=LONG_POLL_TIMEOUTS.get(name, POLL_TIMEOUT + 5), retry=POLL_RETRY,
            description=f"poll {name}",
        )
    except DuplicateJobError:
        return None


def enabled_sources(settings: Settings) -> list[str]:
    """The sources of LOBBYBOT_SOURCES; an unknown name stops the process naming the variable."""
    unknown = [name for name in settings.sources if name not in SOURCES]
    if unknown:
        raise SettingsError(f"LOBBYBOT_SOURCES: unknown source {unknown[0]!r}; known: {', '.join(SOURCES)}")
    return list(settings.sources)


def next_due(state: SourceState, settings: Settings) -> datetime | None:
    """When `state`'s source should be polled next (None: not until a person acts)."""
    if state.endpoints and all(e.status == "disabled" for e in state.endpoints.values()):
        return None
    if state.last_poll is None:
        return utcnow() - timedelta(seconds=1)
    due = state.last_poll + timedelta(minutes=settings.poll_minutes)
    retries = [e.retry_at for e in state.endpoints.values() if e.retry_at and e.status in ("failing", "blocked")]
    return min([due, *retries])


def dispatch_digests() -> list[int]:
    """Cron job: release the digests and quiet-hour holds that are due; return the subscriptions released."""
    settings = current()
    return digests.dispatch_digests(job_redis(settings), settings)


def dispatch_polls() -> list[str]:
    """Cron job: enqueue a poll of every due source; return the names enqueued."""
    settings = current()
    redis = job_redis(settings)
    states = StateStore(redis, settings.redis_prefix)
    now = utcnow()
    enqueued = []
    for name in enabled_sources(settings):
        due = next_due(states.load(name), settings)
        if due is not None and due <= now and enqueue_poll(redis, name) is not None:
            enqueued.append(name)
    if enqueued:
        log.info("dispatch: enqueued polls of %s", ", ".join(enqueued))
    fanout.recover(redis, settings, now)
    return enqueued

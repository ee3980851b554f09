"""What `lobbybot status` and `/readyz` report: queues, workers, scheduler, sources, delivery, paused channels.

`gather(redis, settings)` reads everything in a few round trips and returns a `Status` whose `problems` make it
unhealthy (the CLI exits 1) and whose `warnings` do not:

    problem   Redis unreachable · no worker alive · no scheduler heartbeat (`{prefix}scheduler:heartbeat`, see
              `workers.lifecycle`) · failed delivery jobs (alerts not posted) · an enabled source `disabled`,
              `blocked` or `not_configured` (a person must act)
    warning   failed poll/default jobs · a source `failing` (retried by itself) · paused subscriptions

`readiness(redis, settings)` is the cheap check behind `/readyz`: Redis answers PING and every queue can be read.
Nothing here writes to Redis (registries are counted without RQ's cleanup). A Redis error propagates from
`gather`; `unreachable(settings, error)` turns it into the one line the CLI prints, without the URL's password.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.worker import Worker

from workers.connection import connect
from workers.health import StateStore, utcnow
from workers.jobs import QUEUES, enabled_sources
from workers.lifecycle import heartbeat_key
from workers.logs import display_url
from workers.settings import Settings
from workers.sources import SOURCES
from workers.subscriptions import SubscriptionStore

NEEDS_A_PERSON = ("disabled", "blocked", "not_configured")


@dataclass
class QueueStatus:
    name: str
    queued: int
    started: int
    scheduled: int
    failed: int


@dataclass
class WorkerStatus:
    name: str
    state: str
    queues: list[str]
    last_heartbeat: str | None
    current_job: str | None


@dataclass
class SourceStatus:
    name: str
    enabled: bool
    status: str
    last_success: str | None
    reason: str
    action: str
    skipped_total: int


@dataclass
class Status:
    redis: str
    queues: list[QueueStatus]
    workers: list[WorkerStatus]
    scheduler: dict[str, Any] | None
    sources: list[SourceStatus]
    paused: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def backlog(self) -> dict[str, int]:
        deliver = next(q for q in self.queues if q.name == "deliver")
        return {"queued": deliver.queued, "scheduled": deliver.scheduled, "started": deliver.started}

    def to_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "problems": self.problems, "warnings": self.warnings,
                "redis": self.redis, "queues": {q.name: {k: v for k, v in asdict(q).items() if k != "name"}
                                                for q in self.queues},
                "workers": [asdict(w) for w in self.workers], "scheduler": self.scheduler,
                "sources": [asdict(s) for s in self.sources], "delivery_backlog": self.backlog,
                "paused": self.paused}

    def json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def lines(self) -> list[str]:
        """The text report: a verdict line, one line per part, then the problems and warnings."""
        verdict = "healthy" if self.healthy else f"UNHEALTHY ({len(self.problems)} problem" + (
            "s)" if len(self.problems) > 1 else ")")
        out = [f"lobbybot: {verdict}", f"redis      {self.redis}"]
        out.append("queues     " + " · ".join(f"{q.name} {q.queued} queued, {q.started} running, {q.failed} failed"
                                              for q in self.queues))
        backlog = self.backlog
        out.append(f"delivery   backlog {backlog['queued']} queued, {backlog['scheduled']} scheduled (retries, "
                   f"busy channels), {backlog['started']} posting")
        names = ", ".join(f"{w.name} ({w.state}{': ' + w.current_job if w.current_job else ''})"
                          for w in self.workers)
        out.append(f"workers    {len(self.workers)} alive" + (f": {names}" if names else ""))
        if self.scheduler:
            out.append(f"scheduler  alive, heartbeat {self.scheduler['age_seconds']} s ago "
                       f"({self.scheduler.get('host')} pid {self.scheduler.get('pid')})")
        else:
            out.append("scheduler  no heartbeat")
        for source in self.sources:
            last = source.last_success or "never"
            state = source.status if source.enabled else "off (not in LOBBYBOT_SOURCES)"
            out.append(f"source     {source.name:<6} {state:<15} last success {last}"
                       + (f", {source.skipped_total} malformed skipped" if source.skipped_total else ""))
        out.append(f"paused     {len(self.paused)} subscription" + ("" if len(self.paused) == 1 else "s")
                   + "".join(f"\n           #{p['id']} {p['channel']}: {p['reason']}" for p in self.paused))
        out += [f"problem    {text}" for text in self.problems]
        out += [f"warning    {text}" for text in self.warnings]
        return out


def client(settings: Settings) -> Redis:
    """A client that fails at once instead of retrying: a status check must answer quickly."""
    redis = connect(settings)
    redis.set_retry(Retry(NoBackoff(), 0))
    return redis


def unreachable(settings: Settings, error: RedisError) -> str:
    """One line naming Redis and why it cannot be reached, never the URL's password."""
    reason = re.sub(r"^Error -?\d+ (while )?connecting to \S+:\d+\.\s*", "", str(error)).strip().rstrip(".")
    return f"redis unreachable at {display_url(settings.redis_url or '')}: {reason or type(error).__name__}"


def _when(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else None


def gather(redis: Redis, settings: Settings) -> Status:
    """Read the whole status; raises `RedisError` when Redis cannot be reached."""
    started = time.perf_counter()
    redis.ping()
    ping_ms = (time.perf_counter() - started) * 1000
    queues = []
    for name in QUEUES:
        queue = Queue(name, connection=redis)
        queues.append(QueueStatus(
            name, queued=queue.count,
            started=StartedJobRegistry(queue=queue).get_job_count(cleanup=False),
            scheduled=ScheduledJobRegistry(queue=queue).get_job_count(cleanup=False),
            failed=FailedJobRegistry(queue=queue).get_job_count(cleanup=False)))
    workers = [WorkerStatus(w.name, str(w.get_state()), w.queue_names(), _when(w.last_heartbeat),
                            w.get_current_job_id()) for w in Worker.all(connection=redis)]
    raw = redis.get(heartbeat_key(settings.redis_prefix))
    scheduler = json.loads(raw) if raw else None
    if scheduler:
        beat = datetime.fromisoformat(scheduler["at"])
        scheduler["age_seconds"] = max(0, round((utcnow() - beat).total_seconds()))
    enabled = enabled_sources(settings)
    states = StateStore(redis, settings.redis_prefix)
    sources = []
    for name in SOURCES:
        state = states.load(name)
        sources.append(SourceStatus(name, name in enabled, state.status, _when(state.last_success), state.reason,
                                    state.action, state.skipped_total))
    paused = [{"id": sub.id, "channel": sub.channel, "reason": sub.paused}
              for sub in SubscriptionStore(redis, settings.redis_prefix).all() if sub.paused]
    status = Status(f"ok {display_url(settings.redis_url or '')} (PING {ping_ms:.1f} ms)", queues, workers,
                    scheduler, sources, paused)
    _judge(status)
    return status


def _judge(status: Status) -> None:
    if not status.workers:
        status.problems.append("no worker is running: start `lobbybot worker` (scale workers ≥ 1)")
    if status.scheduler is None:
        status.problems.append("no scheduler heartbeat: start exactly one `lobbybot scheduler`, or nothing is "
                               "polled")
    for queue in status.queues:
        if queue.failed and queue.name == "deliver":
            status.problems.append(f"{queue.failed} delivery jobs failed after their retries: those alerts were "
                                   "not posted (see `rq info` and the worker log)")
        elif queue.failed:
            status.warnings.append(f"{queue.failed} {queue.name} jobs failed (see the worker log)")
    for source in status.sources:
        if not source.enabled:
            continue
        if source.status in NEEDS_A_PERSON:
            status.problems.append(f"source {source.name} is {source.status}: {source.reason}"
                                   + (f" — {source.action}" if source.action else ""))
        elif source.status == "failing":
            status.warnings.append(f"source {source.name} is failing and retried: {source.reason}")
    if status.paused:
        status.warnings.append(f"{len(status.paused)} subscriptions are paused: `lobbybot resume CHANNEL` once "
                               "the cause is fixed")


def readiness(redis: Redis, settings: Settings | None = None) -> tuple[bool, dict[str, Any]]:
    """`/readyz`: (ready, body). Ready when Redis answers PING and every queue's depth can be read; the body
    names the failing check (never the URL)."""
    try:
        redis.ping()
        depths = {name: Queue(name, connection=redis).count for name in QUEUES}
    except RedisError as exc:
        return False, {"status": "unready", "redis": type(exc).__name__}
    return True, {"status": "ready", "redis": "ok", "queues": depths}

"""The long-running processes, `lobbybot worker` and `lobbybot scheduler`: they ride out Redis outages and stop
cleanly on SIGTERM.

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}scheduler:heartbeat   JSON {name, host, pid, at} of the running scheduler, rewritten on every loop of
                                  `lobbybot scheduler` (at most 60 s apart); expires after 180 s, so a missing
                                  key means no scheduler is running (`lobbybot status` says so)

Redis outages. What RQ 3.0 does by itself: `Worker.work()` retries a ConnectionError only around its blocking
dequeue (1 s doubling to 60 s, an error line each time); a ConnectionError anywhere else (heartbeat, maintenance,
a job's bookkeeping) and any TimeoutError end `work()` ("quitting"), and `CronScheduler.start()` has no handling
at all. So these processes talk to Redis through a client carrying an `OutageRetry`: a command that fails with a
connection error or a timeout is tried again after 0.5 s × 2ⁿ (at most every 15 s), for as long as Redis is
down, and RQ never sees the outage. The process logs one line when Redis becomes unreachable (at the second
failure in a row: a dropped idle connection is reopened silently) and one when it answers again:

    redis unreachable at redis://host:6379/0: Error 111 connecting to host:6379. Connection refused.; retrying
    redis back after 42 s

Forked children (RQ's work horse and scheduler) retry too, for at most 20 s, silently: the parent already said it,
and a horse whose job cannot reach Redis fails, so RQ's `Retry` runs the job again (jobs are idempotent).
A job enqueued before the outage stays in Redis (RDB/AOF persistence permitting) and runs after it.

SIGTERM or SIGINT during an outage ends the retrying at once (the wait wraps the process's own handler), so the
25 s shutdown promise holds with Redis down too; the process exits 0 and logs that it stopped while Redis was
unreachable.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, TypeVar

from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

from workers.connection import connect
from workers.health import utcnow
from workers.logs import display_url
from workers.settings import Settings

log = logging.getLogger("lobbybot.redis")
T = TypeVar("T")

BACKOFF_BASE = 0.5
BACKOFF_CAP = 15.0
CHILD_PATIENCE = 20.0
HEARTBEAT_TTL = 180
WORKER_MONITORING_SECONDS = 10
WORKER_MAINTENANCE_SECONDS = 30


def heartbeat_key(prefix: str) -> str:
    return f"{prefix}scheduler:heartbeat"


class RedisWatch:
    """Redis's reachability as this process sees it: logs each change once, and knows when to stop waiting."""

    def __init__(self, url: str) -> None:
        self.url = display_url(url)
        self.owner = os.getpid()
        self.stopping = False
        self.failures = 0
        self.down_since: float | None = None
        self.logged = False
        self._lock = threading.Lock()

    @property
    def patience(self) -> float | None:
        """How long a command may wait for Redis: forever in the process that built the client, 20 s in forks."""
        return None if os.getpid() == self.owner else CHILD_PATIENCE

    def _say(self, level: int, message: str, *args: object) -> None:
        log.log(level if os.getpid() == self.owner else logging.DEBUG, message, *args)

    def failed(self, error: Exception) -> None:
        with self._lock:
            self.failures += 1
            if self.down_since is None:
                self.down_since = time.monotonic()
            if self.failures >= 2 and not self.logged:
                self.logged = True
                self._say(logging.WARNING, "redis unreachable at %s: %s; retrying with backoff (at most every "
                          "%d s)", self.url, error, BACKOFF_CAP)

    def succeeded(self) -> None:
        if self.down_since is None:
            return
        with self._lock:
            if self.logged and self.down_since is not None:
                self._say(logging.INFO, "redis back after %d s", round(time.monotonic() - self.down_since))
            self.failures, self.down_since, self.logged = 0, None, False

    def pause(self, seconds: float, error: Exception) -> None:
        """Sleep `seconds` in short slices; raise `error` as soon as a stop signal arrives."""
        self._guard_signals()
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            time.sleep(min(0.25, max(0.0, end - time.monotonic())))
        if self.stopping:
            raise error

    def _guard_signals(self) -> None:
        """Wrap the SIGTERM/SIGINT handlers so a stop request also ends the waiting (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            inner = signal.getsignal(signum)
            if inner in (signal.SIG_IGN, None) or getattr(inner, "_lobbybot_stop", False):
                continue  # an ignored signal stays ignored (RQ's work horse ignores SIGTERM on purpose)
            signal.signal(signum, self._wrap(inner))

    def _wrap(self, inner: Any) -> Callable[[int, FrameType | None], None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.stopping = True
            if callable(inner):
                inner(signum, frame)
            else:  # SIG_DFL: the process would end; end it cleanly instead
                raise SystemExit(0)

        handler._lobbybot_stop = True  # type: ignore[attr-defined]
        return handler


class OutageRetry(Retry):
    """A redis-py `Retry` that waits out an outage (see the module docstring). One per process: copies of the
    client's connections share it, so the process logs each change of Redis's state once."""

    def __init__(self, watch: RedisWatch) -> None:
        super().__init__(ExponentialBackoff(cap=BACKOFF_CAP, base=BACKOFF_BASE), retries=-1)
        self.watch = watch

    def __deepcopy__(self, memo: dict[int, Any]) -> OutageRetry:
        return self

    def call_with_retry(self, do: Callable[[], T], fail: Callable[..., Any],
                        is_retryable: Callable[[Exception], bool] | None = None,
                        with_failure_count: bool = False) -> T:
        failures, started = 0, time.monotonic()
        while True:
            try:
                result = do()
            except self._supported_errors as error:
                if is_retryable is not None and not is_retryable(error):
                    raise
                failures += 1
                if with_failure_count:
                    fail(error, failures)
                else:
                    fail(error)
                patience = self.watch.patience
                if self.watch.stopping or (patience is not None and time.monotonic() - started > patience):
                    raise
                self.watch.failed(error)
                # The first retry is immediate: most single failures are a connection the server closed.
                self.watch.pause(0.0 if failures == 1 else self._backoff.compute(failures - 2), error)
                continue
            self.watch.succeeded()
            return result


def patient_redis(settings: Settings) -> tuple[Redis, RedisWatch]:
    """A client for REDIS_URL that waits out outages (`OutageRetry`), and its watch."""
    redis = connect(settings)
    watch = RedisWatch(settings.redis_url or "")
    redis.set_retry(OutageRetry(watch))
    return redis, watch


def run_worker(settings: Settings, queue_names: Sequence[str], *, burst: bool = False) -> int:
    """`lobbybot worker`: an RQ HerokuWorker with the RQ scheduler. Returns the exit code (0)."""
    from rq import Queue
    from rq.worker import HerokuWorker

    redis, watch = patient_redis(settings) if not burst else (connect(settings), None)
    queues = [Queue(name, connection=redis) for name in queue_names]
    # A worker killed mid-job (SIGKILL, OOM) leaves its job "started" until the job's heartbeat lapses
    # (monitoring interval + 60 s); another worker's maintenance then retries it. Short intervals bound that
    # delay at about two minutes instead of RQ's default ten.
    # An idle worker blocks on its queues for worker_ttl - 15 s and runs maintenance only when it wakes.
    worker = HerokuWorker(queues, connection=redis, job_monitoring_interval=WORKER_MONITORING_SECONDS,
                          maintenance_interval=WORKER_MAINTENANCE_SECONDS, worker_ttl=WORKER_MAINTENANCE_SECONDS + 15)
    try:
        worker.work(with_scheduler=True, logging_level=settings.log_level, burst=burst)
    except (ConnectionError, TimeoutError) as exc:
        if watch is None or not watch.stopping:
            raise
        log.warning("worker: stopped while redis was unreachable (%s); a job it held is retried once Redis is "
                    "back", exc)
    return 0


def run_scheduler(settings: Settings) -> int:
    """`lobbybot scheduler`: rq cron with `workers.schedule`, writing its heartbeat. Returns the exit code (0)."""
    from rq.cron import CronScheduler
    from rq.exceptions import StopRequested

    redis, watch = patient_redis(settings)
    key = heartbeat_key(settings.redis_prefix)

    class Scheduler(CronScheduler):
        def heartbeat(self) -> None:
            super().heartbeat()
            beat = {"name": self.name, "host": socket.gethostname(), "pid": os.getpid(),
                    "at": utcnow().isoformat(timespec="seconds")}
            self.connection.set(key, json.dumps(beat), ex=HEARTBEAT_TTL)

    scheduler = Scheduler(connection=redis, logging_level=settings.log_level)
    scheduler.load_config_from_file("workers.schedule")
    try:
        scheduler.start()
    except StopRequested:  # SIGTERM before rq's loop began (while waiting for Redis at start)
        log.info("scheduler: stopped before it started")
        return 0
    except (ConnectionError, TimeoutError) as exc:
        if not watch.stopping:
            raise
        log.warning("scheduler: stopped while redis was unreachable (%s)", exc)
        return 0
    with contextlib.suppress(ConnectionError, TimeoutError):  # else the key expires by itself
        redis.delete(key)  # a clean stop: status shows "no scheduler" at once instead of 180 s later
    return 0

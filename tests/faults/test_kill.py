"""Exactly-once delivery across a crash: real `lobbybot worker` processes are SIGKILLed in the middle of
posting a batch of alerts; fresh workers finish the job, and every alert appears exactly once.

How the crash is made: each worker runs in its own session; RQ's work horse (the forked child that runs the
job) puts itself in a process group of its own, so `os.killpg` of the worker's group alone would leave it
posting. The whole process tree (worker, scheduler, work horse) is frozen with SIGSTOP and then SIGKILLed, as
if the machine had died. The kill lands in the pause between two posts (`LOBBYBOT_CONSOLE_INTERVAL`), which is
where a paced delivery spends its time; a kill in the single Redis round trip between a post and its record is
the one window `bot.delivery` documents (the console poster cannot tell whether a post landed).

A killed job is retried by another worker once its heartbeat lapses (about 70 s) and that worker's maintenance
notices (at most every 30 s), then waits for the channel lock its dead predecessor held (120 s from that job's
start). An rq worker runs maintenance only when it wakes up, and an idle one blocks in BLPOP for its
`worker_ttl` - 15 s (405 s by default, which `lobbybot worker` keeps), so the test plays the part of
`lobbybot scheduler`, whose dispatchers wake the workers in production (every 60 s there, every 5 s here).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry

from tests.processes import LOBBYBOT, clean_env
from workers.events import Event
from workers.ingest import ingest
from workers.subscriptions import Subscription, SubscriptionStore

pytestmark = pytest.mark.processes

ALERTS = 40
CHANNELS = ("console:crash1", "console:crash2", "console:crash3")
INTERVAL = 0.25  # seconds between two console posts
RECOVERY_SECONDS = 180
CRON_SECONDS = 5
HEADLINE = re.compile(r"^\[(console:\w+)\] Communication report: (.+)$", re.M)


class Worker:
    """A `lobbybot worker` process (not burst) with its stdout in a file."""

    def __init__(self, name: str, env: dict[str, str], folder: Path) -> None:
        self.out_path, self.err_path = folder / f"{name}.out", folder / f"{name}.err"
        self._files: list[IO[bytes]] = [self.out_path.open("wb"), self.err_path.open("wb")]
        self.process = subprocess.Popen([LOBBYBOT, "worker"], env=env, cwd=folder, stdout=self._files[0],
                                        stderr=self._files[1], start_new_session=True)

    def headlines(self) -> list[tuple[str, str]]:
        return HEADLINE.findall(self.out_path.read_text(encoding="utf-8", errors="replace"))

    def alive(self) -> bool:
        return self.process.poll() is None

    def crash(self) -> None:
        """Freeze the whole process tree, then SIGKILL all of it: nothing runs after the first signal."""
        family = [self.process.pid, *_descendants(self.process.pid)]
        for pid in family:
            _signal(pid, signal.SIGSTOP)
        for pid in family:
            _signal(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.close()

    def stop(self) -> None:
        """SIGTERM (a warm shutdown); crash it if it does not exit."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.crash()
        for pid in _descendants(self.process.pid):
            _signal(pid, signal.SIGKILL)
        self.close()

    def close(self) -> None:
        for file in self._files:
            file.close()

    def log_tail(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")[-3000:]


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _descendants(pid: int) -> list[int]:
    """Every live process descending from `pid`, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def reports() -> list[Event]:
    published = datetime.now(UTC) - timedelta(days=1)
    return [Event(id=f"ocl:communication:{n}", version="1", source="ocl", kind="communication",
                  title=f"Hydro-Québec met officials about export contracts (report {n})",
                  organization="Hydro-Québec", institutions=("Natural Resources Canada",), published_at=published,
                  url=f"https://lobbycanada.gc.ca/comm/{n}") for n in range(ALERTS)]


def counts(workers: list[Worker]) -> Counter[str]:
    return Counter(channel for worker in workers for channel, _ in worker.headlines())


def test_workers_killed_mid_batch_post_every_alert_exactly_once(redis: Redis, redis_url: str, make_settings,
                                                                tmp_path: Path) -> None:
    """Workers SIGKILLed at random points while posting a batch of 40 alerts, then replaced by fresh workers:
    every alert reaches its channel exactly once."""
    settings = make_settings(alert_channel=None, batch_threshold=ALERTS + 10)
    store = SubscriptionStore(redis, settings.redis_prefix)
    for channel in CHANNELS:
        store.add(Subscription(channel=channel, terms=["hydro-quebec"]), actor="test")
    ingest(redis, settings, reports(), alert=True)
    jobs = Queue("deliver", connection=redis).jobs
    assert sorted(job.args[0] for job in jobs) == list(CHANNELS)
    assert all(job.args[2] == "alerts" and len(job.args[1]) == ALERTS for job in jobs)

    rng = random.Random()
    kill_at = {channel: rng.randint(3, ALERTS - 4) for channel in CHANNELS}
    env = clean_env(REDIS_URL=redis_url, LOBBYBOT_CONSOLE_INTERVAL=str(INTERVAL),
                    LOBBYBOT_BATCH_THRESHOLD=str(ALERTS + 10), LOBBYBOT_LOG_LEVEL="INFO")
    first = [Worker(f"first{n}", env, tmp_path) for n in range(len(CHANNELS))]
    fresh: list[Worker] = []
    try:
        killed_with: dict[str, int] = {}
        deadline = time.monotonic() + 60
        while len(killed_with) < len(CHANNELS) and time.monotonic() < deadline:
            for channel in CHANNELS:
                if channel in killed_with:
                    continue
                carriers = [w for w in first if any(c == channel for c, _ in w.headlines())]
                if carriers and counts(first)[channel] >= kill_at[channel]:
                    time.sleep(rng.uniform(0.2, 0.6) * INTERVAL)  # into the pause between two posts
                    if carriers[0].alive():
                        carriers[0].crash()
                    killed_with[channel] = counts(first)[channel]
            time.sleep(0.01)
        for worker in first:
            if worker.alive():
                worker.crash()
        before = counts(first)
        assert all(0 < before[channel] < ALERTS for channel in CHANNELS), (kill_at, before)

        fresh = [Worker(f"fresh{n}", env, tmp_path) for n in range(len(CHANNELS))]
        deadline = time.monotonic() + RECOVERY_SECONDS
        cron = Queue("default", connection=redis)
        next_tick = 0.0
        while time.monotonic() < deadline:
            done = counts(first + fresh)
            if all(done[channel] >= ALERTS for channel in CHANNELS):
                break
            if time.monotonic() >= next_tick:  # the cron dispatcher's tick: wakes a worker up
                cron.enqueue("workers.jobs.dispatch_digests", result_ttl=0)
                next_tick = time.monotonic() + CRON_SECONDS
            time.sleep(0.5)
        time.sleep(2 * INTERVAL)  # anything posted twice would show up now
    finally:
        for worker in first + fresh:
            worker.stop()

    posted = Counter(pair for worker in first + fresh for pair in worker.headlines())
    expected = {(channel, event.title) for channel in CHANNELS for event in reports()}
    missing = sorted(expected - set(posted))
    twice = sorted(pair for pair, n in posted.items() if n > 1)
    logs = "\n".join(worker.log_tail() for worker in fresh)
    assert not missing, f"lost {len(missing)} alerts after kills at {before}: {missing[:3]}\n{logs}"
    assert not twice, f"posted twice after kills at {before}: {twice}"
    assert set(posted) == expected
    assert FailedJobRegistry("deliver", connection=redis).count == 0

"""Redis outages: `lobbybot worker` and `lobbybot scheduler` keep running while their own `redis-server` is
stopped (SHUTDOWN SAVE, as a managed Redis restarts for maintenance) and restarted, log one line when Redis goes
and one when it is back, lose nothing, and still stop cleanly on SIGTERM while Redis is down."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rq import Queue
from rq.worker import Worker

from tests.processes import Daemon, RedisServer, clean_env, free_port, run, wait_until
from workers.events import Event
from workers.ingest import ingest
from workers.lifecycle import heartbeat_key
from workers.settings import configure, load_settings

pytestmark = [pytest.mark.faults, pytest.mark.processes]
STOP_SECONDS = 25  # the shutdown promise (docs/operations.md)
HEADLINE = re.compile(r"^\[console:(\w+)\] Communication report: (.+)$", re.M)


def reports(n: int, tag: str) -> list[Event]:
    published = datetime.now(UTC) - timedelta(days=1)
    return [Event(id=f"ocl:communication:{tag}{i}", version="1", source="ocl", kind="communication",
                  title=f"Hydro-Québec met officials ({tag} {i})", organization="Hydro-Québec",
                  institutions=("Natural Resources Canada",), published_at=published,
                  url=f"https://lobbycanada.gc.ca/comm/{tag}{i}") for i in range(n)]


def test_worker_and_scheduler_ride_out_a_redis_restart(tmp_path: Path) -> None:
    """Redis stops and comes back: processes started before and during the outage keep running, log once when
    it goes and once when it is back, and every job enqueued before the outage runs once after it."""
    server = RedisServer(tmp_path)
    redis = server.client()
    settings = load_settings(redis_url=server.url, alert_channel="console:outage", sources=[], batch_threshold=50)
    env = clean_env(REDIS_URL=server.url, LOBBYBOT_SOURCES="[]", LOBBYBOT_ALERT_CHANNEL="console:outage",
                    LOBBYBOT_BATCH_THRESHOLD="50", LOBBYBOT_LOG_LEVEL="INFO")
    # The worker already running listens to a queue of its own, so the jobs queued before the outage wait for it.
    early = Daemon("early", ["worker", "early"], env, tmp_path)
    processes = [early]
    try:
        wait_until(lambda: len(Worker.all(connection=redis)) == 1, 30, "the first worker registers", every=0.2)
        configure(settings)
        ingest(redis, settings, reports(5, "before"), alert=True)  # a delivery job, queued before the outage
        assert Queue("deliver", connection=redis).count == 1
        server.stop()

        down = run("status", env=env, cwd=tmp_path, timeout=30)
        assert down.returncode == 1 and down.stderr == (f"redis unreachable at {server.url}: Connection refused\n")
        late = Daemon("late", ["worker"], env, tmp_path)
        scheduler = Daemon("scheduler", ["scheduler"], env, tmp_path)
        processes += [late, scheduler]
        for process in processes:
            process.wait_for("redis unreachable at")
        time.sleep(3)  # a few retries with backoff while Redis is down
        server.start()

        for process in processes:
            process.wait_for("redis back after", timeout=40)
        late.wait_for("(before 4)", timeout=40, stream="out")
        Queue("early", connection=redis).enqueue("bot.delivery.deliver", "console:outage",
                                                 [[f"ocl:communication:before{i}", "1", "new", []] for i in range(2)])
        ingest(redis, settings, reports(3, "after"), alert=True)
        late.wait_for("(after 2)", timeout=40, stream="out")
        wait_until(lambda: redis.exists(heartbeat_key(settings.redis_prefix)), 30, "the scheduler's heartbeat",
                   every=0.2)
        time.sleep(1)
        codes = {process.name: process.terminate(STOP_SECONDS) for process in processes}
    finally:
        configure(None)
        for process in processes:
            if process.alive():
                process.crash()
        server.kill()

    assert codes == {"early": 0, "late": 0, "scheduler": 0}
    for process in processes:
        log = process.err()
        assert log.count("redis unreachable at") == 1, f"{process.name}:\n{log[-3000:]}"
        assert len(re.findall(r"redis back after \d+ s", log)) == 1, f"{process.name}:\n{log[-3000:]}"
        assert "quitting" not in log and "Traceback" not in log, f"{process.name}:\n{log[-3000:]}"
    posted = Counter(HEADLINE.findall(early.out() + late.out()))
    expected = {("outage", f"Hydro-Québec met officials ({tag} {i})")
                for tag, n in (("before", 5), ("after", 3)) for i in range(n)}
    assert set(posted) == expected and all(n == 1 for n in posted.values()), posted


def test_sigterm_while_redis_is_down_stops_within_the_promise(tmp_path: Path) -> None:
    """A worker and a scheduler waiting for an unreachable Redis exit 0 on SIGTERM, within 25 s."""
    env = clean_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", LOBBYBOT_SOURCES="[]")
    processes = [Daemon("worker", ["worker"], env, tmp_path), Daemon("scheduler", ["scheduler"], env, tmp_path)]
    try:
        for process in processes:
            process.wait_for("redis unreachable at")
        codes = [process.terminate(STOP_SECONDS) for process in processes]
    finally:
        for process in processes:
            if process.alive():
                process.crash()

    assert codes == [0, 0], "\n".join(process.err()[-2000:] for process in processes)
    assert all(not process.leftovers for process in processes)

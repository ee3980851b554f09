"""`lobbybot status` and `/readyz`'s readiness: what an operator sees, and the exit code a monitor acts on."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.job import JobStatus
from rq.registry import FailedJobRegistry
from rq.worker import Worker, WorkerStatus

from bot.cli import main
from tests.processes import clean_env, free_port, run
from workers.health import SourceState, StateStore, utcnow
from workers.lifecycle import heartbeat_key
from workers.status import readiness
from workers.subscriptions import Subscription, SubscriptionStore


def healthy_setup(redis: Redis, prefix: str) -> Worker:
    """A registered worker, a fresh scheduler heartbeat and a source that succeeded."""
    worker = Worker([Queue(name, connection=redis) for name in ("poll", "deliver", "default")], connection=redis)
    worker.register_birth()
    worker.set_state(WorkerStatus.IDLE)
    redis.set(heartbeat_key(prefix), json.dumps({"name": "s1", "host": "dyno", "pid": 4,
                                                 "at": utcnow().isoformat(timespec="seconds")}), ex=180)
    state = SourceState(name="feeds", status="ok", last_success=utcnow() - timedelta(minutes=3), skipped_total=2)
    StateStore(redis, prefix).save(state)
    return worker


def test_status_healthy_exits_zero_and_names_every_part(redis: Redis, make_settings,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """With a worker, a scheduler heartbeat and a healthy source, status exits 0 and shows each part."""
    settings = make_settings()
    worker = healthy_setup(redis, settings.redis_prefix)
    Queue("deliver", connection=redis).enqueue_in(timedelta(minutes=5), "bot.delivery.deliver", "console:x", [])

    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lobbybot: healthy")
    assert f"workers    1 alive: {worker.name} (idle)" in out
    assert re.search(r"scheduler  alive, heartbeat \d+ s ago \(dyno pid 4\)", out)
    assert re.search(r"source     feeds  ok +last success \d{4}-\d\d-\d\d \d\d:\d\d UTC, 2 malformed skipped", out)
    assert "delivery   backlog 0 queued, 1 scheduled" in out
    assert "problem" not in out


def test_status_unhealthy_names_each_failed_check(redis: Redis, make_settings,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """No worker, no scheduler, a failed delivery and a disabled source: exit 1, one problem line for each;
    a paused subscription is a warning."""
    settings = make_settings(sources=["feeds", "lda"])
    StateStore(redis, settings.redis_prefix).save(SourceState(
        name="lda", status="disabled", reason="HTTP 401 from lda.gov", action="Check LOBBYBOT_LDA_API_KEY."))
    job = Queue("deliver", connection=redis).enqueue("bot.delivery.deliver", "console:x", [])
    job.set_status(JobStatus.FAILED)
    FailedJobRegistry(queue=Queue("deliver", connection=redis)).add(job, ttl=600)
    store = SubscriptionStore(redis, settings.redis_prefix)
    store.add(Subscription(channel="console:gone", terms=["hydro"]), actor="test")
    store.set_paused("console:gone", "channel_not_found")

    assert main(["status", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] is False
    problems = "\n".join(report["problems"])
    assert "no worker is running" in problems
    assert "no scheduler heartbeat" in problems
    assert "1 delivery jobs failed" in problems
    assert "source lda is disabled: HTTP 401 from lda.gov — Check LOBBYBOT_LDA_API_KEY." in problems
    assert report["paused"] == [{"id": 1, "channel": "console:gone", "reason": "channel_not_found"}]
    assert any("1 subscriptions are paused" in warning for warning in report["warnings"])
    assert report["queues"]["deliver"]["failed"] == 1

    assert main(["status"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("lobbybot: UNHEALTHY (4 problems)")
    assert "#1 console:gone: channel_not_found" in out


def test_status_with_redis_unreachable_prints_one_line_without_password(tmp_path: Path) -> None:
    """With nothing listening at REDIS_URL, status prints one line naming Redis (password masked), exits 1."""
    port = free_port()
    result = run("status", env=clean_env(REDIS_URL=f"redis://:pw-test-SECRET-status@127.0.0.1:{port}/6"),
                 cwd=tmp_path, timeout=30)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"redis unreachable at redis://:***@127.0.0.1:{port}/6: Connection refused\n"


def test_readiness_needs_redis_and_readable_queues(redis: Redis, make_settings) -> None:
    """/readyz's check is ready with Redis up (queue depths included) and unready when Redis is gone."""
    settings = make_settings()
    Queue("poll", connection=redis).enqueue("workers.jobs.poll_source", "feeds")

    ready, body = readiness(redis, settings)
    assert ready and body == {"status": "ready", "redis": "ok", "queues": {"poll": 1, "deliver": 0, "default": 0}}

    dead = Redis(port=free_port(), socket_connect_timeout=1, retry=None)
    ready, body = readiness(dead, settings)
    assert not ready and body == {"status": "unready", "redis": "ConnectionError"}

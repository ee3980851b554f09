"""Local operations: `honcho start web worker scheduler` runs the Procfile's processes (docs/operations.md)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from redis import Redis
from rq.worker import Worker

from tests import leaks
from tests.processes import clean_env, descendants, free_port, running
from workers.lifecycle import heartbeat_key

pytestmark = pytest.mark.processes
ROOT = Path(__file__).parent.parent
HONCHO_CODE = 128 + signal.SIGTERM  # honcho's own exit after it stopped its processes on SIGTERM
HONCHO = shutil.which("honcho", path=str(Path(sys.executable).parent))
# The Procfile says `lobbybot …`: found on PATH as in an activated venv (`make test` does not activate one).
VENV_PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.mark.skipif(HONCHO is None, reason="honcho is in the dev extra: pip install -e '.[dev]'")
def test_honcho_starts_web_worker_and_scheduler_from_the_procfile(redis: Redis, redis_url: str,
                                                                  tmp_path: Path) -> None:
    """The Procfile's web, worker and scheduler come up under honcho (ready, registered, beating) and all stop
    within 25 s when honcho gets SIGTERM."""
    port = free_port()
    log = tmp_path / "honcho.log"
    leaks.remember_file(log)
    with log.open("wb") as out:
        honcho = subprocess.Popen([str(HONCHO), "-f", str(ROOT / "Procfile"), "-e", "/dev/null", "start", "-p",
                                   str(port), "web", "worker", "scheduler"], cwd=tmp_path, stdout=out,
                                  stderr=subprocess.STDOUT,
                                  env=clean_env(REDIS_URL=redis_url, LOBBYBOT_SOURCES="[]", PATH=VENV_PATH),
                                  start_new_session=True)
    family: list[int] = []
    try:
        deadline = time.monotonic() + 40
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            except httpx.ConnectError:
                ready = None
            if ready is not None and Worker.all(connection=redis) and redis.exists(heartbeat_key("lobbybot:")):
                break
            time.sleep(0.3)
        family = descendants(honcho.pid)
        honcho.send_signal(signal.SIGTERM)
        code = honcho.wait(timeout=25)
    finally:
        for pid in [honcho.pid, *family]:
            if running(pid):
                subprocess.run(["kill", "-9", str(pid)], check=False)
        if honcho.poll() is None:
            honcho.wait(timeout=10)

    text = log.read_text(errors="replace")
    assert ready is not None and ready.status_code == 200, text[-3000:]
    assert len(Worker.all(connection=redis)) == 0, "the worker did not unregister"
    assert {"web.1", "worker.1", "scheduler.1"} <= {line.split()[1] for line in text.splitlines()
                                                    if len(line.split()) > 1}
    assert code == HONCHO_CODE, text[-3000:]
    assert not [pid for pid in family if running(pid)], "a process outlived honcho"

"""Helpers to run lobbybot as real processes (the `lobbybot` console script of this environment), and a
`redis-server` of a test's own on a free port (to stop and restart it mid-run).

Every environment built by `clean_env` and every output read through `run` or `Process.communicate` is noted
for the session's secret scan (`tests/leaks.py`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests import leaks

LOBBYBOT = shutil.which("lobbybot", path=str(Path(sys.executable).parent)) or "lobbybot"


def clean_env(**values: str) -> dict[str, str]:
    """The current environment without lobbybot/Slack/Discord/Redis settings, plus `values`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LOBBYBOT_", "SLACK_", "DISCORD_")) and k not in ("REDIS_URL", "PORT")}
    env.update(values)
    leaks.remember_env(env)
    return env


def run(*args: str, env: dict[str, str], timeout: float = 120, cwd: Path | None = None,
        ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([LOBBYBOT, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    leaks.remember_output(result.stdout, result.stderr)
    return result


class Process(subprocess.Popen[str]):
    """A Popen whose output, once read with `communicate`, joins the secret scan."""

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        out, err = super().communicate(input, timeout)
        leaks.remember_output(out, err)
        return out, err


def start(*args: str, env: dict[str, str], cwd: Path | None = None) -> Process:
    return Process([LOBBYBOT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A `redis-server` of the test's own on a free port, without persistence except on `stop()` (SHUTDOWN
    SAVE into `folder`), so a restart finds the data the way a managed Redis finds it after maintenance."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = (self.folder / "redis-server.log").open("ab")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), "--dbfilename", "dump.rdb"], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                Redis(port=self.port).ping()
                return
            except RedisConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def client(self) -> Redis:
        return Redis.from_url(self.url)

    def stop(self) -> None:
        """Save the data set and stop (a Redis restart for maintenance)."""
        if self.process is not None and self.process.poll() is None:
            Redis(port=self.port).shutdown(save=True)  # redis-py expects the connection to drop
            self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

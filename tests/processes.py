"""Helpers to run lobbybot as real processes (the `lobbybot` console script of this environment), and a
`redis-server` of a test's own on a free port (to stop and restart it mid-run).

Every environment built by `clean_env` and every output read through `run` or `Process.communicate` is noted
for the session's secret scan (`tests/leaks.py`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests import leaks
from tests.wire import NOWHERE, OFFLINE

LOBBYBOT = shutil.which("lobbybot", path=str(Path(sys.executable).parent)) or "lobbybot"


def clean_env(**values: str) -> dict[str, str]:
    """The current environment without lobbybot/Slack/Discord/Redis settings, plus `values`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LOBBYBOT_", "SLACK_", "DISCORD_"))
           and k not in ("REDIS_URL", "PORT", "WEB_CONCURRENCY")}
    env.update({f"LOBBYBOT_{name.upper()}": NOWHERE for name in OFFLINE})  # no process reaches the internet
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


def wait_until(check: Callable[[], object], timeout: float, what: str, *, every: float = 0.1) -> None:
    """Return once `check()` is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(every)


def get(port: int, path: str, *, within: float = 30) -> httpx.Response:
    """GET `http://127.0.0.1:{port}{path}`, retrying while nothing listens yet (a process still starting)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


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


class Daemon:
    """A long-running `lobbybot` process (worker, scheduler, web…) in its own session, its stdout and stderr in
    files of `folder` (read while it runs; scanned for secrets at the end of the session)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], folder: Path) -> None:
        self.name = name
        self.out_path, self.err_path = folder / f"{name}.out", folder / f"{name}.err"
        leaks.remember_file(self.out_path)
        leaks.remember_file(self.err_path)
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.process = subprocess.Popen([LOBBYBOT, *args], env=env, cwd=folder, stdout=out, stderr=err,
                                            start_new_session=True)
        self.leftovers: list[int] = []

    @property
    def pid(self) -> int:
        return self.process.pid

    def out(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def err(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_for(self, text: str, timeout: float = 30, *, stream: str = "err") -> None:
        """Wait until `text` appears in the process's stderr (or stdout); fail with the log tail if it does not."""
        deadline = time.monotonic() + timeout
        read = self.err if stream == "err" else self.out
        while text not in read():
            if time.monotonic() > deadline or not self.alive():
                raise AssertionError(f"{self.name}: no {text!r} within {timeout} s "
                                     f"(alive: {self.alive()})\n{self.err()[-3000:]}")
            time.sleep(0.1)

    def family(self) -> list[int]:
        return [self.pid, *descendants(self.pid)]

    def terminate(self, timeout: float = 25) -> int | None:
        """SIGTERM every process of the tree, as Heroku does to a dyno; the exit code, or None if the process
        was still running after `timeout` seconds (then it is killed)."""
        family = self.family()
        for pid in family:
            send_signal(pid, signal.SIGTERM)
        try:
            code: int | None = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        # Children left running after the parent exited (a clean stop leaves none); they are killed here.
        self.leftovers = [pid for pid in family[1:] if running(pid)]
        for pid in self.leftovers:
            send_signal(pid, signal.SIGKILL)
        self.crash()
        return code

    def crash(self) -> None:
        """Freeze the whole process tree, then SIGKILL all of it: nothing runs after the first signal."""
        family = self.family()
        for pid in family:
            send_signal(pid, signal.SIGSTOP)
        for pid in family:
            send_signal(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def running(pid: int) -> bool:
    """`pid` exists and is not a zombie."""
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text(errors="replace").lower()
    except OSError:
        return False


def send_signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def descendants(pid: int) -> list[int]:
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

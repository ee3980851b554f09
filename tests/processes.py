"""Helpers to run lobbybot as real processes (the `lobbybot` console script of this environment)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

LOBBYBOT = shutil.which("lobbybot", path=str(Path(sys.executable).parent)) or "lobbybot"


def clean_env(**values: str) -> dict[str, str]:
    """The current environment without lobbybot/Slack/Discord/Redis settings, plus `values`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LOBBYBOT_", "SLACK_", "DISCORD_")) and k not in ("REDIS_URL", "PORT")}
    env.update(values)
    return env


def run(*args: str, env: dict[str, str], timeout: float = 120, cwd: Path | None = None,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LOBBYBOT, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def start(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([LOBBYBOT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=cwd)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

"""Test fixtures: a real Redis (an isolated database flushed before and after each test), settings pointing
at it, and a feed server on 127.0.0.1. Nothing here reaches the internet."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from redis import Redis

from tests import leaks
from tests.wire import NOWHERE, OFFLINE, FeedServer
from workers.connection import with_database
from workers.logs import secrets_of
from workers.settings import Settings, configure, load_settings

TEST_DB = int(os.environ.get("TEST_REDIS_DB", "13"))  # another number lets two test runs share a server


def test_redis_url() -> str:
    """REDIS_URL (default the local server) with the test database, so a developer's data is never touched."""
    return with_database(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), TEST_DB)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No developer .env or LOBBYBOT_* variable leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("LOBBYBOT_", "SLACK_", "DISCORD_")) or name in ("REDIS_URL", "PORT"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def redis_url() -> str:
    return test_redis_url()


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    conn = Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture
def make_settings(redis: Redis, redis_url: str) -> Iterator[type[Settings]]:
    """Build settings for the test Redis and make them the process's current settings."""

    def build(**overrides: object) -> Settings:
        overrides.setdefault("sources", ["feeds"])  # a test polls a registry only when it says so
        overrides.setdefault("alert_channel", "console:alerts")  # alerts are visible without a subscription
        for name in OFFLINE:  # a test that forgets to point a source or platform at its fake gets "refused"
            overrides.setdefault(name, NOWHERE)
        settings = load_settings(**{"redis_url": redis_url, **overrides})
        for secret in secrets_of(settings):
            leaks.remember_secret(secret)
        configure(settings)
        return settings

    yield build  # type: ignore[misc]
    configure(None)


_collector = leaks.Collector()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Every log record of the run (INFO and above) joins the secret scan."""
    root = logging.getLogger()
    root.addHandler(_collector)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a configured secret or a distinctive fake one appears in any log or process output."""
    logging.getLogger().removeHandler(_collector)
    found = leaks.find_leaks(leaks.all_texts(_collector.texts), leaks.secrets)
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"secret scan: {len(found)} log or output lines hold a secret:", *found[:20]]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        else:
            print("\n".join(lines))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

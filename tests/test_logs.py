"""Logs: one line per event, JSON lines on request, and no secret in any record (workers.logs), plus proof that
the session's secret scan (tests/leaks.py) catches a leak."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

from tests import leaks
from tests.processes import clean_env, run
from tests.wire import FeedServer
from workers.logs import display_url, make_handler, secrets_of
from workers.settings import load_settings

TOKEN = "xoxb-test-SECRET-logs-0001"
SIGNING = "signing-test-SECRET-0002"
CLQ_KEY = "clq-test-SECRET-0003"
PASSWORD = "redis-test-SECRET-0004"
SECRETS = (TOKEN, SIGNING, CLQ_KEY, PASSWORD)


def isolated_logger(name: str, log_format: str) -> tuple[logging.Logger, io.StringIO]:
    """A logger writing through lobbybot's handler into a buffer, not to the root (the scan must not see the
    raw secrets these tests log on purpose)."""
    settings = load_settings(redis_url=f"redis://:{PASSWORD}@127.0.0.1:6379/0", slack_bot_token=TOKEN,
                             slack_signing_secret=SIGNING, clq_api_key=CLQ_KEY, log_format=log_format)
    buffer = io.StringIO()
    logger = logging.getLogger(f"lobbybot.test.{name}")
    logger.propagate = False
    logger.handlers = [make_handler(settings, stream=buffer)]
    logger.setLevel(logging.INFO)
    return logger, buffer


def test_secrets_of_settings_are_every_secret_field_and_the_redis_password() -> None:
    """The redaction list holds the tokens, secrets, API keys and the REDIS_URL password, nothing else."""
    settings = load_settings(redis_url=f"redis://user:{PASSWORD}@127.0.0.1:6379/0", slack_bot_token=TOKEN,
                             slack_signing_secret=SIGNING, clq_api_key=CLQ_KEY, slack_client_id="1234.5678")
    assert sorted(secrets_of(settings)) == sorted(SECRETS)
    assert display_url(settings.redis_url or "") == "redis://user:***@127.0.0.1:6379/0"


def test_every_secret_is_redacted_in_message_arguments_extras_and_exception() -> None:
    """A secret in the message, its arguments, an extra field or an exception's text is printed as ***."""
    logger, buffer = isolated_logger("text", "text")
    logger.info("token %s in the arguments", TOKEN, extra={"header": f"Bearer {CLQ_KEY}"})
    logger.warning(f"signing secret {SIGNING} in the message")
    try:
        raise RuntimeError(f"cannot connect to redis://:{PASSWORD}@db:6379")
    except RuntimeError:
        logger.exception("connect failed")

    text = buffer.getvalue()
    assert not leaks.find_leaks([text], SECRETS)
    assert "token *** in the arguments" in text
    assert "signing secret *** in the message" in text
    assert "RuntimeError: cannot connect to redis://:***@db:6379" in text
    assert [line.split(" ", 3)[2] for line in text.splitlines() if " lobbybot." in line] == ["INFO", "WARNING",
                                                                                                "ERROR"]


def test_json_format_writes_one_object_per_line_with_extras() -> None:
    """LOBBYBOT_LOG_FORMAT=json: each record is one JSON object (time, level, logger, message, extras, exc)."""
    logger, buffer = isolated_logger("json", "json")
    logger.info("poll %s: %d fetched", "feeds", 3, extra={"source": "feeds", "header": TOKEN})
    try:
        raise ValueError("bad\nrow")
    except ValueError:
        logger.error("ingest failed", exc_info=True)

    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "poll feeds: 3 fetched" and first["level"] == "INFO"
    assert first["logger"] == "lobbybot.test.json" and first["source"] == "feeds" and first["header"] == "***"
    assert first["time"].endswith("Z")
    assert second["level"] == "ERROR" and "ValueError: bad\nrow" in second["exc"]


SCRIPT = """
import logging, sys
from workers.settings import load_settings
settings = load_settings()
if sys.argv[1] == "configured":
    from workers import logs
    logs.configure(settings)
else:
    logging.basicConfig(level="INFO")
log = logging.getLogger("lobbybot.leaky")
log.info("calling Slack with %s", settings.slack_bot_token.get_secret_value())
try:
    raise PermissionError("CLQ refused key " + settings.clq_api_key.get_secret_value())
except PermissionError:
    log.exception("poll failed")
"""


def test_scan_catches_a_leak_that_configured_logging_redacts(tmp_path: Path) -> None:
    """A process logging secrets through an unconfigured logger is caught by the scan; the same process with
    workers.logs.configure prints *** and passes it."""
    env = {**clean_env(), "SLACK_BOT_TOKEN": TOKEN, "LOBBYBOT_CLQ_API_KEY": CLQ_KEY}  # not noted: leaks on purpose
    outputs = {mode: subprocess.run([sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True,
                                    timeout=60, cwd=Path(__file__).parent.parent).stderr
               for mode in ("configured", "unconfigured")}

    found = leaks.find_leaks([outputs["unconfigured"]], [TOKEN, CLQ_KEY])
    assert len(found) == 2 and TOKEN in found[0] and CLQ_KEY in found[1]
    assert leaks.find_leaks([outputs["configured"]], [TOKEN, CLQ_KEY]) == []
    assert "calling Slack with ***" in outputs["configured"]
    assert "PermissionError: CLQ refused key ***" in outputs["configured"]
    assert leaks.find_leaks(["xapp-test-SECRET-9 in a line"], []), "the distinctive pattern alone is caught too"


def test_lobbybot_process_logs_json_lines(redis_url: str, feed_server: FeedServer, tmp_path: Path) -> None:
    """`lobbybot poll --inline` with LOBBYBOT_LOG_FORMAT=json writes only JSON objects on stderr, one per line."""
    url = feed_server.serve("/feed.xml", "<rss version='2.0'><channel><title>t</title></channel></rss>")
    env = clean_env(REDIS_URL=redis_url, LOBBYBOT_LOG_FORMAT="json", LOBBYBOT_SOURCES='["feeds"]',
                    LOBBYBOT_FEEDS=json.dumps([url]), SLACK_BOT_TOKEN="xoxb-test-SECRET-process")
    result = run("poll", "feeds", "--inline", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert any(r["logger"] == "lobbybot.jobs" and r["message"].startswith("poll feeds:") for r in records)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)

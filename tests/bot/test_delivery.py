"""The delivery job: idempotent per (channel, event, version); transient errors retried, permanent ones not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis import Redis
from rq import Queue

from bot.delivery import deliver
from bot.posters import ConsolePoster
from bot.render import Message
from workers.dedupe import Classified, Verdict
from workers.errors import PermanentDeliveryError, TransientDeliveryError
from workers.events import Event
from workers.fanout import fan_out
from workers.store import EventStore


def article(n: int) -> Event:
    return Event(id=f"news:{n:04x}", version="v1", source="news", kind="article",
                 title=f"Lobbying story number {n}", url=f"https://news.example/{n}",
                 published_at=datetime(2026, 11, 20, tzinfo=UTC))


class FlakyPoster:
    """Posts to the console, but fails with `error` on the post numbered `fail_at`."""

    min_interval = 0.0

    def __init__(self, error: Exception, fail_at: int) -> None:
        self.console = ConsolePoster()
        self.error, self.fail_at, self.calls = error, fail_at, 0

    def post(self, channel: str, message: Message, *, thread: str | None = None) -> str:
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.error
        return self.console.post(channel, message, thread=thread)


@pytest.fixture
def stored(redis: Redis, make_settings) -> list[list[str]]:
    settings = make_settings()
    events = [article(n) for n in range(3)]
    EventStore(redis, settings.redis_prefix).save((event, 0) for event in events)
    return [[event.id, event.version, "new"] for event in events]


def headlines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("[console:room] News:")]


def test_a_repeated_delivery_posts_nothing_twice(stored: list[list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    """Running the same delivery job twice (a retry, a duplicate) posts each alert once."""
    assert deliver("console:room", stored) == 3
    assert deliver("console:room", stored) == 0
    assert len(headlines(capsys.readouterr().out)) == 3


def test_a_transient_error_raises_and_the_retry_posts_only_the_rest(
        stored: list[list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    """A rate limit mid-batch fails the job (so RQ retries it); the retry posts what was not yet posted."""
    with pytest.raises(TransientDeliveryError):
        deliver("console:room", stored, poster=FlakyPoster(TransientDeliveryError("ratelimited"), fail_at=2))
    assert len(headlines(capsys.readouterr().out)) == 1
    assert deliver("console:room", stored) == 2
    assert len(headlines(capsys.readouterr().out)) == 2


def test_a_permanent_error_stops_without_raising(stored: list[list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    """A channel that is gone stops the delivery without an RQ retry (retrying cannot help)."""
    poster = FlakyPoster(PermanentDeliveryError("channel_not_found"), fail_at=1)
    assert deliver("console:room", stored, poster=poster) == 0
    assert poster.calls == 1
    assert headlines(capsys.readouterr().out) == []


def test_fan_out_enqueues_a_retried_delivery_job(redis: Redis, make_settings) -> None:
    """Alerts become one delivery job on the `deliver` queue, by dotted path, with retries for killed workers."""
    settings = make_settings(alert_channel="console:room")
    items = [Classified(article(n), Verdict.NEW) for n in range(2)]
    assert fan_out(redis, settings, items) == 2
    [job] = Queue("deliver", connection=redis).jobs
    assert job.func_name == "bot.delivery.deliver"
    assert job.args[0] == "console:room" and [ref[0] for ref in job.args[1]] == [i.event.id for i in items]
    assert job.retries_left == 5 and job.args[2] == "alerts"

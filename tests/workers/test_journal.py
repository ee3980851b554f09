"""The fan-out journal: a poll killed between dedupe (records marked seen) and fan-out (alerts queued) loses no
alert. The kill is played by running dedupe and store alone, as the killed ingest had; the retried poll and the
dispatcher's recovery then run for real, and the console poster shows what a channel would see."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from redis import Redis

from tests.records import lines_of, posted, report, subscribe
from workers import fanout
from workers.dedupe import Deduper, journal_key
from workers.events import Event
from workers.health import utcnow
from workers.ingest import ingest
from workers.settings import Settings
from workers.store import EventStore


def later() -> datetime:
    """A moment when every journal entry written so far is old enough to be recovered."""
    return utcnow() + timedelta(seconds=fanout.RECOVER_AFTER + 1)


@pytest.fixture
def settings(make_settings) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(alert_channel=None)  # type: ignore[no-any-return]


def killed_after_dedupe(redis: Redis, settings: Settings, events: list[Event]) -> None:
    """What a poll killed right after dedupe leaves behind: records seen and stored, no alert queued."""
    classified = Deduper(redis, settings).classify(events, journal=True)
    EventStore(redis, settings.redis_prefix).save((item.event, item.ttl) for item in classified)


def test_alerts_of_a_poll_killed_after_dedupe_are_posted_once(redis: Redis, settings: Settings,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The retried poll sees the records as duplicates; the dispatcher's recovery posts their alerts, once."""
    subscribe(redis, "console:cloud", "amazon")
    killed_after_dedupe(redis, settings, [report(1), report(2)])

    retry = ingest(redis, settings, [report(1), report(2)], alert=True)
    assert retry.counts["duplicate"] == 2 and posted(capsys, redis) == ""

    assert fanout.recover(redis, settings, later()) == 2
    out = posted(capsys, redis)
    headlines = [line for line in lines_of(out, "console:cloud") if line.startswith("Communication report")]
    assert sorted(headlines) == [
        "Communication report: Amazon Web Services Canada met officials (report 1)",
        "Communication report: Amazon Web Services Canada met officials (report 2)"]
    assert fanout.recover(redis, settings, later()) == 0
    assert posted(capsys, redis) == ""


def test_a_poll_killed_before_storing_alerts_when_polled_again(redis: Redis, settings: Settings,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Killed after dedupe but before the store: recovery forgets the record was seen, so the next poll alerts it."""
    subscribe(redis, "console:cloud", "amazon")
    Deduper(redis, settings).classify([report(1)], journal=True)  # nothing stored
    assert fanout.recover(redis, settings, later()) == 0
    assert ingest(redis, settings, [report(1)], alert=True).counts["new"] == 1
    assert "(report 1)" in posted(capsys, redis)


def test_recovery_waits_for_a_poll_that_may_still_be_running(redis: Redis, settings: Settings) -> None:
    """A journal entry younger than RECOVER_AFTER belongs to an ingest that may still be fanning out."""
    subscribe(redis, "console:cloud", "amazon")
    killed_after_dedupe(redis, settings, [report(1)])
    assert fanout.recover(redis, settings, utcnow()) == 0
    assert redis.zcard(journal_key(settings.redis_prefix)) == 1


def test_a_completed_ingest_leaves_the_journal_empty(redis: Redis, settings: Settings) -> None:
    """Alerts queued by a normal poll are taken out of the journal; a baseline poll never writes to it."""
    subscribe(redis, "console:cloud", "amazon")
    ingest(redis, settings, [report(1)], alert=False)
    ingest(redis, settings, [report(2), report(1, version="2")], alert=True)
    assert redis.zcard(journal_key(settings.redis_prefix)) == 0


def test_recovered_amendment_says_its_changes_are_unknown(redis: Redis, settings: Settings,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """An amendment recovered from the journal is posted, saying what changed was not recorded."""
    subscribe(redis, "console:cloud", "amazon")
    ingest(redis, settings, [report(1)], alert=True)
    posted(capsys, redis)
    killed_after_dedupe(redis, settings, [report(1, version="2")])
    assert fanout.recover(redis, settings, later()) == 1
    out = posted(capsys, redis)
    assert "was recovered after an interrupted poll" in out
    assert "↳ reply to" in out  # still threaded under the original alert


def test_an_alert_handed_twice_to_one_job_is_posted_once_in_order(redis: Redis, settings: Settings,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A ref fanned out twice (once with its changes, once recovered without) is posted once, in first place."""
    from bot.delivery import deliver

    ingest(redis, settings, [report(1), report(2)], alert=False)
    refs = [["ocl:communication:2", "1", "new", []], ["ocl:communication:1", "1", "new", []],
            ["ocl:communication:2", "1", "new", [fanout.RECOVERED]]]
    capsys.readouterr()
    assert deliver("console:digest", refs, "alerts") == 2
    out = capsys.readouterr().out
    assert out.count("(report 2)") == 1 and out.index("(report 2)") < out.index("(report 1)")

"""Fan-out and delivery, end to end on the real Redis: matching channels, batching, thread replies, digests,
quiet hours, pausing on a permanent error, source-health notices and `lobbybot explain`.

Events go in through `workers.ingest.ingest` (or `workers.jobs.poll_source` against a feed on 127.0.0.1);
the delivery jobs they enqueue run in an RQ `SimpleWorker` burst, and the console poster's lines are read
from the captured stdout.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry

from bot import render
from bot.cli import main
from bot.delivery import deliver
from bot.render import Message
from tests.records import PREFIX, RECENT, lines_of, posted, report, run_jobs, subscribe
from tests.wire import FeedServer
from workers import fanout
from workers.digests import dispatch_digests
from workers.errors import PermanentDeliveryError
from workers.events import Event
from workers.explain import explain
from workers.health import StateStore
from workers.ingest import ingest
from workers.jobs import poll_source
from workers.settings import Settings
from workers.subscriptions import SubscriptionStore

TORONTO = ZoneInfo("America/Toronto")


def registration(institutions: tuple[str, ...], version: str) -> Event:
    return Event(id="ocl:registration:781234-361234", version=version, source="ocl", kind="registration",
                 title="Shopify Inc. registers to lobby on digital tax", organization="Shopify Inc.",
                 institutions=institutions, published_at=RECENT, url="https://lobbycanada.gc.ca/reg/781234")


def article(slug: str, title: str, *, n: str | None = None) -> Event:
    return Event(id=f"news:{n or slug}", version="1", source="news", kind="article", title=title,
                 url=f"https://news.example/{slug}?utm_source=rss", published_at=RECENT)


def next_local(moment: datetime, hour: int, minute: int) -> datetime:
    """The first `hour:minute` in Toronto strictly after `moment`."""
    local = moment.astimezone(TORONTO)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return candidate if candidate > local else candidate + timedelta(days=1)


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings(alert_channel=None)  # type: ignore[no-any-return]


# --- realtime alerts ------------------------------------------------------------------------------------------


def test_alerts_reach_only_matching_channels_once_each(redis: Redis, settings: Settings,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A new record is posted to every channel with a matching subscription, once per channel even when two of
    its subscriptions match, and to no other channel."""
    subscribe(redis, "console:cloud", "amazon")
    subscribe(redis, "console:cloud", "AWS")
    subscribe(redis, "console:hydro", "hydro-quebec")
    subscribe(redis, "console:both", "amazon", "treasury board")

    report_ = ingest(redis, settings, [report(1), report(2, "Bell Canada", institutions=("Finance Canada",))],
                     alert=True)
    out = posted(capsys, redis)

    assert report_.alerted == 2
    headline = "Communication report: Amazon Web Services Canada met officials (report 1)"
    assert lines_of(out, "console:cloud").count(headline) == 1
    assert lines_of(out, "console:both").count(headline) == 1
    assert lines_of(out, "console:hydro") == []
    assert "Bell Canada" not in out
    assert sorted(set(re.findall(r"^\[(console:\w+)\]", out, re.M))) == ["console:both", "console:cloud"]


def test_the_alert_channel_gets_everything_once(redis: Redis, make_settings,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """LOBBYBOT_ALERT_CHANNEL receives every alert, once even when one of its own subscriptions matches too."""
    settings = make_settings(alert_channel="console:alerts")
    subscribe(redis, "console:alerts", "amazon")

    ingest(redis, settings, [report(1), report(2, "Bell Canada")], alert=True)
    out = posted(capsys, redis)

    headlines = [line for line in lines_of(out, "console:alerts") if line.startswith("Communication report")]
    assert headlines == ["Communication report: Amazon Web Services Canada met officials (report 1)",
                         "Communication report: Bell Canada met officials (report 2)"]


def test_a_burst_for_one_channel_becomes_one_summary_message(redis: Redis, settings: Settings,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """More than LOBBYBOT_BATCH_THRESHOLD (5) alerts for a channel in one poll become one summary message;
    five stay five alerts. Every item is then recorded as delivered, so running the job again posts nothing."""
    subscribe(redis, "console:burst", "amazon")
    subscribe(redis, "console:five", "bell")
    events = [report(n) for n in range(6)] + [report(n, "Bell Canada") for n in range(10, 15)]

    ingest(redis, settings, events, alert=True)
    jobs = {job.args[0]: job.args for job in Queue("deliver", connection=redis).jobs}
    out = posted(capsys, redis)

    burst = lines_of(out, "console:burst")
    assert burst[0] == "6 new records: 6 communication reports — most for Amazon Web Services Canada"
    assert sum(1 for line in burst if line.startswith("• ")) == 6
    assert not any(line.startswith("Communication report:") for line in burst)
    five = lines_of(out, "console:five")
    assert sum(1 for line in five if line.startswith("Communication report: Bell Canada")) == 5
    for n in range(6):
        assert redis.get(f"{PREFIX}delivered:console:burst:ocl:communication:{n}:1") not in (None, b"pending")

    capsys.readouterr()
    assert jobs["console:burst"][2] == "batch" and jobs["console:five"][2] == "alerts"
    assert deliver(*jobs["console:burst"]) == 0 and deliver(*jobs["console:five"]) == 0
    ingest(redis, settings, events, alert=True)  # the same records polled again: duplicates
    assert posted(capsys, redis) == ""


def test_an_amendment_is_a_reply_in_the_thread_of_the_original_alert(redis: Redis, settings: Settings,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A new version of an alerted record is posted as a reply to the first alert, saying what changed."""
    subscribe(redis, "console:room", "shopify")
    ingest(redis, settings, [registration(("Finance Canada",), "v1")], alert=True)
    first = posted(capsys, redis)
    assert lines_of(first, "console:room")[0] == "Registration: Shopify Inc. registers to lobby on digital tax"
    original = redis.get(f"{PREFIX}posted:console:room:ocl:registration:781234-361234")
    assert original

    ingest(redis, settings, [registration(("Finance Canada", "Canada Revenue Agency"), "v2")], alert=True)
    reply = lines_of(posted(capsys, redis), "console:room")

    assert reply[0] == (f"↳ reply to {original.decode()}: Amended registration: "
                        "Shopify Inc. registers to lobby on digital tax")
    assert "  institutions: added Canada Revenue Agency" in reply
    assert not any(line.startswith("Registration") for line in reply)


def test_an_amendment_without_a_known_original_is_an_alert_marked_amended(
        redis: Redis, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """An amendment of a record that was never alerted to the channel is a normal alert marked (amended)."""
    subscribe(redis, "console:room", "shopify")
    ingest(redis, settings, [registration(("Finance Canada",), "v1")], alert=False)  # silent baseline
    assert posted(capsys, redis) == ""

    ingest(redis, settings, [registration(("Finance Canada", "Canada Revenue Agency"), "v2")], alert=True)
    out = lines_of(posted(capsys, redis), "console:room")

    assert out[0] == "Registration (amended): Shopify Inc. registers to lobby on digital tax"
    assert not any("reply to" in line for line in out)


def test_import_alert_inline_runs_the_whole_path(redis: Redis, settings: Settings, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot import feeds FILE --alert --inline` dedupes, indexes, fans out and posts in one process."""
    subscribe(redis, "console:news", "shopify")
    item = ("<item><title>{0}</title><link>https://news.example/{1}</link><guid>https://news.example/{1}</guid>"
            "<pubDate>Tue, 24 Nov 2026 10:15:00 GMT</pubDate></item>")
    feed = tmp_path / "feed.xml"
    feed.write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>Lobby News</title>'
                    + item.format("Shopify lobbies Finance on digital tax", "a")
                    + item.format("Bell meets Treasury Board officials", "b") + "</channel></rss>")

    assert main(["import", "feeds", str(feed), "--alert", "--inline"]) == 0
    out = capsys.readouterr().out
    assert lines_of(out, "console:news")[0] == "News: Shopify lobbies Finance on digital tax"
    assert "Bell meets" not in out
    assert main(["import", "feeds", str(feed), "--alert", "--inline"]) == 0
    assert "[console:" not in capsys.readouterr().out


# --- digests and quiet hours ----------------------------------------------------------------------------------


def test_a_daily_digest_holds_alerts_and_sends_one_message_per_day(redis: Redis, settings: Settings,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A daily subscription posts nothing when records arrive; at its next 08:00 (Toronto) one digest grouped
    by organisation goes out, and nothing more that day."""
    sub = subscribe(redis, "console:daily", "treasury board", digest="daily")
    ingest(redis, settings, [report(1), report(2), report(3, "Bell Canada")], alert=True)
    assert posted(capsys, redis) == ""
    assert dispatch_digests(redis, settings) == [], "the first digest went out before its 08:00"
    assert posted(capsys, redis) == ""

    morning = next_local(datetime.now(UTC), 8, 0) + timedelta(minutes=5)  # the next slot, then a bit
    assert dispatch_digests(redis, settings, now=morning) == [sub.id]
    digest = lines_of(posted(capsys, redis), "console:daily")
    assert digest == [
        "Daily digest: treasury board — 3 records",
        "Amazon Web Services Canada (2)",
        "  • Amazon Web Services Canada met officials (report 1) https://lobbycanada.gc.ca/comm/1",
        "  • Amazon Web Services Canada met officials (report 2) https://lobbycanada.gc.ca/comm/2",
        "Bell Canada (1)",
        "  • Bell Canada met officials (report 3) https://lobbycanada.gc.ca/comm/3",
    ]

    ingest(redis, settings, [report(4)], alert=True)
    assert dispatch_digests(redis, settings, now=morning + timedelta(hours=3)) == []
    assert dispatch_digests(redis, settings, now=morning) == []
    assert posted(capsys, redis) == ""
    assert dispatch_digests(redis, settings, now=morning + timedelta(days=1)) == [sub.id]
    assert lines_of(posted(capsys, redis), "console:daily")[0] == "Daily digest: treasury board — 1 record"


def test_a_large_digest_is_split_across_messages(redis: Redis, settings: Settings,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A digest longer than a message allows is split into numbered messages; every record appears once."""
    sub = subscribe(redis, "console:daily", "treasury board", digest="daily")
    events = [report(n, f"Organisation {n % 7}") for n in range(60)]
    ingest(redis, settings, events, alert=True)
    assert dispatch_digests(redis, settings, now=next_local(datetime.now(UTC), 8, 0) + timedelta(minutes=5)) == [sub.id]
    out = lines_of(posted(capsys, redis), "console:daily")

    heads = [line for line in out if line.startswith("Daily digest")]
    assert heads == [f"Daily digest: treasury board — 60 records ({n}/2)" for n in (1, 2)]
    items = [line for line in out if line.startswith("  • ")]
    assert len(items) == len(set(items)) == 60

    small = render.digest("Weekly digest", events[:10], max_lines=5)
    assert len(small) > 1 and all(len(message.lines) <= 5 for message in small)
    assert sum(line.startswith("  • ") for message in small for line in message.lines) == 10


def test_quiet_hours_hold_realtime_alerts_until_they_end(redis: Redis, settings: Settings,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A realtime alert arriving at 23:00 (quiet 22:00-07:00 Toronto) is held, and posted after 07:00."""
    sub = subscribe(redis, "console:quiet", "amazon", quiet="22:00-07:00")
    late = next_local(datetime.now(UTC), 23, 0)
    monkeypatch.setattr(fanout, "utcnow", lambda: late.astimezone(UTC))

    ingest(redis, settings, [report(1)], alert=True)
    assert posted(capsys, redis) == ""
    assert explain(redis, settings, "ocl:communication:1", "console:quiet") == [
        f"ocl:communication:1 was held: quiet hours 22:00-07:00 America/Toronto by subscription #{sub.id} "
        f"at {late.astimezone(UTC).isoformat(timespec='seconds')}."]

    assert dispatch_digests(redis, settings, now=late + timedelta(hours=7, minutes=30)) == []  # 06:30
    assert posted(capsys, redis) == ""
    assert dispatch_digests(redis, settings, now=late + timedelta(hours=8, minutes=5)) == [sub.id]  # 07:05
    out = lines_of(posted(capsys, redis), "console:quiet")
    assert out[0] == "Held during quiet hours: amazon — 1 record"
    assert "  • Amazon Web Services Canada met officials (report 1) https://lobbycanada.gc.ca/comm/1" in out


# --- permanent errors -----------------------------------------------------------------------------------------


class GonePoster:
    """A platform answering that the channel no longer exists."""

    min_interval = 0.0

    def __init__(self) -> None:
        self.calls = 0

    def post(self, channel: str, message: Message, *, thread: str | None = None) -> str:
        self.calls += 1
        raise PermanentDeliveryError("channel_not_found: the channel was deleted")


def test_a_permanent_error_pauses_the_channel_with_the_reason(redis: Redis, settings: Settings,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A channel that is gone pauses its subscriptions with the reason; `lobbybot subscriptions` shows it, and
    later records are recorded as 'paused' instead of posted."""
    subscribe(redis, "console:gone", "amazon")
    subscribe(redis, "console:gone", "bell")
    subscribe(redis, "console:fine", "amazon")
    ingest(redis, settings, [report(1)], alert=True)
    jobs = {job.args[0]: job for job in Queue("deliver", connection=redis).jobs}
    poster = GonePoster()

    assert deliver(*jobs["console:gone"].args, poster=poster) == 0
    assert poster.calls == 1
    jobs["console:gone"].delete()
    capsys.readouterr()
    assert main(["subscriptions"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.endswith("PAUSED: channel_not_found: the channel was deleted") for line in listing] == [
        True, True, False]
    assert SubscriptionStore(redis, PREFIX).audit()[0]["action"] == "pause"

    ingest(redis, settings, [report(2), report(3, "Bell Canada")], alert=True)
    assert "console:gone" not in [job.args[0] for job in Queue("deliver", connection=redis).jobs]
    out = posted(capsys, redis)
    assert "[console:gone]" not in out
    assert lines_of(out, "console:fine").count(
        "Communication report: Amazon Web Services Canada met officials (report 2)") == 1
    assert "was paused: channel_not_found: the channel was deleted" in explain(
        redis, settings, "ocl:communication:3", "console:gone")[0]


def test_a_delivery_to_a_busy_channel_is_rescheduled_with_retries(redis: Redis, settings: Settings) -> None:
    """A delivery finding its channel busy is put back with the same retries, so a worker killed while running
    the rescheduled job still cannot lose its alerts."""
    ingest(redis, settings, [report(1)], alert=False)
    redis.set(f"{PREFIX}lock:deliver:console:busy", "another job")

    assert deliver("console:busy", [["ocl:communication:1", "1", "new", []]]) == 0

    [job_id] = ScheduledJobRegistry("deliver", connection=redis).get_job_ids()
    job = Queue("deliver", connection=redis).fetch_job(job_id)
    assert job is not None and job.func_name == "bot.delivery.deliver"
    assert job.args[0] == "console:busy" and job.retries_left == fanout.DELIVERY_RETRY.max


# --- source-health notices ------------------------------------------------------------------------------------

RSS = ('<?xml version="1.0"?><rss version="2.0"><channel><title>Lobby News</title><item><title>Bell meets '
       "officials</title><link>https://news.example/bell</link><guid>https://news.example/bell</guid></item>"
       "</channel></rss>")


def test_a_failing_source_sends_one_notice_per_channel_and_one_on_recovery(
        redis: Redis, make_settings, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]) -> None:
    """When a feed starts failing each channel depending on it gets one notice, not one per poll, and one more
    when it recovers; a channel filtered on another source hears nothing."""
    url = feed_server.serve("/feed.xml", RSS)
    settings = make_settings(feeds=[url], alert_channel=None)
    subscribe(redis, "console:all", "bell")
    subscribe(redis, "console:all", "telus")
    subscribe(redis, "console:news", "bell", sources=["news"])
    subscribe(redis, "console:ocl", "bell", sources=["ocl"])
    states = StateStore(redis, settings.redis_prefix)

    def poll(status: int) -> str:
        feed_server.serve("/feed.xml", RSS if status == 200 else "oops", status=status)
        state = states.load("feeds")
        for endpoint in state.endpoints.values():
            endpoint.retry_at = None  # the backoff has passed: poll the endpoint now
        states.save(state)
        poll_source("feeds")
        return posted(capsys, redis)

    assert poll(200) == ""  # baseline: healthy from the start, nothing to announce
    failing = poll(500)
    again = poll(500)
    recovered = poll(200)

    assert states.load("feeds").status == "ok" and len(feed_server.hits("/feed.xml")) == 4
    for channel in ("console:all", "console:news"):
        assert lines_of(failing, channel)[0] == "Source feeds is failing: the site failed (HTTP 500)"
        assert lines_of(recovered, channel) == ["Source feeds recovered: alerts from it flow again."]
    assert len(lines_of(failing, "console:all")) == 3  # one notice of three lines
    assert again == ""
    assert "console:ocl" not in failing + recovered


# --- explain --------------------------------------------------------------------------------------------------


def test_explain_answers_with_the_rule_that_decided(redis: Redis, settings: Settings,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot explain EVENT CHANNEL` says: delivered at T, held for the digest, paused, duplicate of X,
    baseline, no match with the closest word, or never seen."""
    subscribe(redis, "console:live", "amazon")
    subscribe(redis, "console:daily", "amazon", digest="daily")
    subscribe(redis, "console:paused", "amazon")
    subscribe(redis, "console:typo", "shopfy")
    subscribe(redis, "console:news", "shopify")
    SubscriptionStore(redis, PREFIX).set_paused("console:paused", "missing_scope: chat:write")
    ingest(redis, settings, [report(1), article("shopify-tax", "Shopify lobbies Finance on digital tax", n="a1")],
           alert=True)
    run_jobs(redis)
    ingest(redis, settings, [article("shopify-tax", "Shopify lobbies Finance on digital tax (updated)", n="b2")],
           alert=True)  # the same story from another feed: same canonical URL, another guid
    ingest(redis, settings, [report(2, "Shopify Inc.")], alert=False)  # recorded silently (baseline)
    capsys.readouterr()

    def why(event_id: str, channel: str) -> str:
        assert main(["explain", event_id, channel]) == 0
        return capsys.readouterr().out

    assert re.fullmatch(r"Delivered to console:live at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 \(message \w+, "
                        r"version 1\)\.\n", why("ocl:communication:1", "console:live"))
    assert re.match(r"ocl:communication:1 was held for the daily digest by subscription #2 at ",
                    why("ocl:communication:1", "console:daily"))
    assert "was paused: missing_scope: chat:write by subscription #3" in why("ocl:communication:1", "console:paused")
    assert why("news:b2", "console:news") == ("news:b2: a duplicate of news:a1 (same article in another feed), "
                                              "so it was not posted again.\n")
    assert "recorded without an alert" in why("ocl:communication:2", "console:news")
    assert why("news:a1", "console:typo") == (
        "No subscription of console:typo matched news:a1 (Shopify lobbies Finance on digital tax):\n"
        "  #4: term 'shopfy' does not match; closest word in the event: 'shopify'\n")
    assert "has never seen it" in why("ocl:communication:999", "console:live")


def test_a_french_subscription_gets_its_alerts_digests_and_summaries_in_french(
        redis: Redis, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """`--lang fr` makes the alert labels, burst summaries and digest titles French; English channels stay English."""
    subscribe(redis, "console:qc", "amazon", language="fr")
    subscribe(redis, "console:on", "amazon")
    ingest(redis, settings, [report(1)], alert=True)
    out = posted(capsys, redis)
    assert lines_of(out, "console:qc")[0].startswith("Rapport de communication: ")
    assert lines_of(out, "console:on")[0].startswith("Communication report: ")

    ingest(redis, settings, [report(n) for n in range(2, 9)], alert=True)
    summary = lines_of(posted(capsys, redis), "console:qc")[0]
    assert summary.startswith("7 nouveaux dossiers: 7 × rapport de communication")

    daily = subscribe(redis, "console:resume", "treasury board", language="fr", digest="daily")
    ingest(redis, settings, [report(20)], alert=True)
    capsys.readouterr()
    dispatch_digests(redis, settings, now=next_local(daily.created_at, 8, 1).astimezone(UTC))
    assert lines_of(posted(capsys, redis), "console:resume")[0] == "Résumé quotidien: treasury board — 1 dossier"

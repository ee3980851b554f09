"""SlackPoster against a mock Slack Web API on 127.0.0.1, driven through the real delivery job."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from redis import Redis
from slack_sdk.oauth.installation_store import Installation

from bot import render
from bot.delivery import deliver
from bot.posters import poster_for
from bot.slack.installations import RedisInstallationStore
from bot.slack.poster import SlackPoster
from bot.slack.render import message_blocks
from tests.slack_api import Reply, SlackAPI
from workers.errors import PermanentDeliveryError, TransientDeliveryError
from workers.events import Event
from workers.settings import Settings
from workers.store import EventStore
from workers.subscriptions import Subscription, SubscriptionStore

TOKEN = "xoxb-1111-2222-SeCrEtToKeN"
CHANNEL = "slack:T1/C1"


def record(n: int, version: str = "v1", institutions: tuple[str, ...] = ("Treasury Board",)) -> Event:
    return Event(id=f"ocl:comm:{700000 + n}", version=version, source="ocl", kind="communication",
                 title=f"Communication with Treasury Board #{n}", url=f"https://lobbycanada.gc.ca/comm/{n}",
                 occurred_at=datetime(2026, 11, 3, tzinfo=UTC), organization="Amazon Web Services Canada",
                 institutions=institutions)


@pytest.fixture
def slack() -> Iterator[SlackAPI]:
    api = SlackAPI()
    yield api
    api.close()


@pytest.fixture
def settings(make_settings, slack: SlackAPI) -> Settings:
    settings: Settings = make_settings(slack_bot_token=TOKEN, slack_api_url=slack.base_url)
    return settings


@pytest.fixture
def poster(settings: Settings, redis: Redis) -> SlackPoster:
    return SlackPoster(settings, redis, min_interval=0, rate_limit_retries=1)


def stored(redis: Redis, settings: Settings, *events: Event, verdict: str = "new",
           changes: list[str] | None = None) -> list[list[object]]:
    EventStore(redis, settings.redis_prefix).save((event, 0) for event in events)
    return [[event.id, event.version, verdict, changes or []] for event in events]


def subscribe(redis: Redis, settings: Settings, channel: str = CHANNEL) -> SubscriptionStore:
    subs = SubscriptionStore(redis, settings.redis_prefix)
    subs.add(Subscription(channel=channel, terms=["amazon"]), actor="U1")
    return subs


def test_an_alert_posts_blocks_and_fallback_text_with_the_bot_token(
        redis: Redis, settings: Settings, slack: SlackAPI, poster: SlackPoster) -> None:
    """An alert reaches the subscribed channel as Block Kit with a notification text, sent with the bot token."""
    assert deliver(CHANNEL, stored(redis, settings, record(1)), poster=poster) == 1
    [call] = slack.calls("chat.postMessage")
    assert call.body["channel"] == "C1" and call.authorization == f"Bearer {TOKEN}"
    assert call.body["text"].startswith("Communication report: Communication with Treasury Board #1")
    assert call.body["blocks"][0]["type"] == "section" and "thread_ts" not in call.body
    assert redis.get(f"lobbybot:posted:{CHANNEL}:ocl:comm:700001") == b"1700000000.000100"


def test_each_workspace_posts_with_its_installed_token(
        redis: Redis, make_settings, slack: SlackAPI) -> None:
    """In multi-workspace mode each team's alerts go out with the token its install saved."""
    settings = make_settings(slack_api_url=slack.base_url, slack_client_id="1.1", slack_client_secret="s")
    RedisInstallationStore(redis, settings.redis_prefix).save(
        Installation(team_id="T2", bot_token="xoxb-team-two", bot_id="B2", bot_user_id="U2", user_id="U9"))
    poster = SlackPoster(settings, redis, min_interval=0)
    assert deliver("slack:T2/C9", stored(redis, settings, record(1)), poster=poster) == 1
    [call] = slack.calls("chat.postMessage")
    assert call.authorization == "Bearer xoxb-team-two" and call.body["channel"] == "C9"


def test_a_workspace_without_an_install_is_paused_with_what_to_do(
        redis: Redis, make_settings, slack: SlackAPI) -> None:
    """A channel in a workspace where lobbybot is not installed is paused, saying how to install it."""
    settings = make_settings(slack_api_url=slack.base_url, slack_client_id="1.1", slack_client_secret="s")
    subs = subscribe(redis, settings, "slack:T7/C1")
    assert deliver("slack:T7/C1", stored(redis, settings, record(1)), poster=SlackPoster(settings, redis)) == 0
    [sub] = subs.for_channel("slack:T7/C1")
    assert "not installed in Slack workspace T7" in sub.paused and "/slack/install" in sub.paused
    assert slack.requests == []


def test_an_amendment_is_a_thread_reply_under_the_original_alert(
        redis: Redis, settings: Settings, slack: SlackAPI, poster: SlackPoster) -> None:
    """An amended record is posted in the thread of its first alert, saying what changed."""
    deliver(CHANNEL, stored(redis, settings, record(1)), poster=poster)
    amended = record(1, "v2", ("Treasury Board", "Finance Canada"))
    refs = stored(redis, settings, amended, verdict="updated", changes=["institutions: + Finance Canada"])
    assert deliver(CHANNEL, refs, poster=poster) == 1
    first, reply = slack.calls("chat.postMessage")
    assert "thread_ts" not in first.body
    assert reply.body["thread_ts"] == "1700000000.000100" and reply.body["channel"] == "C1"
    assert "institutions: + Finance Canada" in str(reply.body["blocks"])
    assert reply.body["text"].startswith("Amended communication report")


def test_a_rate_limit_is_waited_out_and_the_alert_posted_once(
        redis: Redis, settings: Settings, slack: SlackAPI, poster: SlackPoster) -> None:
    """A 429 with Retry-After: 1 is retried by the client; the channel shows the alert exactly once."""
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    assert deliver(CHANNEL, stored(redis, settings, record(1)), poster=poster) == 1
    assert [call.status for call in slack.calls("chat.postMessage")] == [429, 200]
    assert len(slack.posted()) == 1


def test_a_rate_limit_storm_releases_the_claim_and_a_later_retry_posts_once(
        redis: Redis, settings: Settings, slack: SlackAPI, poster: SlackPoster) -> None:
    """Longer 429s than the client's retry budget fail the job (RQ retries it); the retry posts exactly once."""
    refs = stored(redis, settings, record(1))
    slack.rate_limit("chat.postMessage", times=2, retry_after=1)  # the poster retries once: both calls get 429
    with pytest.raises(TransientDeliveryError) as failed:
        deliver(CHANNEL, refs, poster=poster)
    assert failed.value.retry_after == 1
    assert not redis.exists(f"lobbybot:delivered:{CHANNEL}:ocl:comm:700001:v1")  # claim released
    assert slack.posted() == []
    assert deliver(CHANNEL, refs, poster=poster) == 1
    assert deliver(CHANNEL, refs, poster=poster) == 0
    assert len(slack.posted()) == 1


def test_a_long_retry_after_goes_back_to_rq_at_once(
        redis: Redis, settings: Settings, slack: SlackAPI, poster: SlackPoster) -> None:
    """Retry-After: 120 is not slept through in the worker: the job fails at once with retry_after = 120."""
    slack.rate_limit("chat.postMessage", times=1, retry_after=120)
    with pytest.raises(TransientDeliveryError) as failed:
        deliver(CHANNEL, stored(redis, settings, record(1)), poster=poster)
    assert failed.value.retry_after == 120 and len(slack.calls("chat.postMessage")) == 1


def test_a_server_error_is_transient(redis: Redis, settings: Settings, slack: SlackAPI, poster: SlackPoster) -> None:
    """A Slack 5xx fails the job for a retry and pauses nothing."""
    subs = subscribe(redis, settings)
    slack.script("chat.postMessage", Reply(503, {"ok": False, "error": "service_unavailable"}))
    with pytest.raises(TransientDeliveryError, match="HTTP 503"):
        deliver(CHANNEL, stored(redis, settings, record(1)), poster=poster)
    assert [sub.paused for sub in subs.for_channel(CHANNEL)] == [""]


def test_slack_unreachable_is_transient(redis: Redis, make_settings) -> None:
    """With nothing listening at the API URL, the post fails as transient (retried later), not permanent."""
    closed = SlackAPI()
    closed.close()
    settings = make_settings(slack_bot_token=TOKEN, slack_api_url=closed.base_url)
    with pytest.raises(TransientDeliveryError, match="cannot reach Slack"):
        SlackPoster(settings, redis).post(CHANNEL, render.alert(record(1)))


@pytest.mark.parametrize(("error", "says"), [
    ("channel_not_found", "invite @lobbybot to the channel"),
    ("not_in_channel", "/invite @lobbybot"),
    ("is_archived", "unarchive it"),
    ("account_inactive", "reinstall lobbybot"),
    ("token_revoked", "reinstall lobbybot (/slack/install)"),
    ("invalid_auth", "check SLACK_BOT_TOKEN"),
    ("missing_scope", "chat:write"),
])
def test_a_channel_slack_refuses_for_good_is_paused_with_the_reason(
        redis: Redis, settings: Settings, slack: SlackAPI, poster: SlackPoster, error: str, says: str) -> None:
    """channel_not_found and its kin pause the channel's subscriptions with a reason and what to do; no retry."""
    subs = subscribe(redis, settings)
    slack.fail("chat.postMessage", error)
    assert deliver(CHANNEL, stored(redis, settings, record(1), record(2)), poster=poster) == 0
    [sub] = subs.for_channel(CHANNEL)
    assert f"(Slack: {error})" in sub.paused and says in sub.paused
    assert f"lobbybot resume {CHANNEL}" in sub.paused
    assert len(slack.calls("chat.postMessage")) == 1  # the second alert was not tried


def test_blocks_slack_refuses_are_posted_as_plain_text(
        redis: Redis, settings: Settings, slack: SlackAPI, poster: SlackPoster) -> None:
    """If Slack rejects the blocks (invalid_blocks), the alert still arrives, as text."""
    slack.script("chat.postMessage", Reply(200, {"ok": False, "error": "invalid_blocks"}))
    assert deliver(CHANNEL, stored(redis, settings, record(1)), poster=poster) == 1
    rejected, text_only = slack.calls("chat.postMessage")
    assert "blocks" in rejected.body and "blocks" not in text_only.body
    assert "https://lobbycanada.gc.ca/comm/1" in text_only.body["text"]


def test_a_message_split_in_several_posts_resumes_after_a_failure(
        redis: Redis, settings: Settings, slack: SlackAPI, poster: SlackPoster) -> None:
    """A digest part too big for one Slack message is posted page by page; a retry sends only what is missing."""
    events = [record(n) for n in range(39)]
    events = [e.model_copy(update={"url": "https://example.org/" + "p" * 900 + str(n)}) for n, e in enumerate(events)]
    message = render.digest_parts("Weekly digest", events, max_lines=100)[0][0]
    pages = message_blocks(message)
    assert len(pages) >= 2
    slack.script("chat.postMessage", Reply(200, {"ok": True, "channel": "C1", "ts": "1699999999.000001"}),
                 Reply(503, {"ok": False, "error": "fatal_error"}))
    with pytest.raises(TransientDeliveryError):
        poster.post(CHANNEL, message)
    first_ts = poster.post(CHANNEL, message)
    posted = [call.body["text"] for call in slack.calls("chat.postMessage") if call.status == 200]
    assert posted == [text for text, _ in pages]  # each page once, in order
    assert first_ts == "1699999999.000001"  # the first page's ts: where an amendment would reply


def test_the_token_never_reaches_logs_or_pause_reasons(
        redis: Redis, settings: Settings, slack: SlackAPI, poster: SlackPoster,
        caplog: pytest.LogCaptureFixture) -> None:
    """Even at DEBUG (slack_sdk logs each request), the bot token appears in no log line and no reason."""
    caplog.set_level(logging.DEBUG)
    subs = subscribe(redis, settings)
    deliver(CHANNEL, stored(redis, settings, record(1)), poster=poster)
    slack.fail("chat.postMessage", "invalid_auth")
    deliver(CHANNEL, stored(redis, settings, record(2)), poster=poster)
    assert caplog.records and "chat.postMessage" in caplog.text
    assert TOKEN not in caplog.text and "SeCrEt" not in caplog.text
    assert all(TOKEN not in sub.paused for sub in subs.for_channel(CHANNEL))
    assert subs.for_channel(CHANNEL)[0].paused


def test_poster_for_a_slack_channel_is_the_slack_poster(settings: Settings) -> None:
    """Delivery jobs for slack:… channels post through SlackPoster, one second apart per channel."""
    poster = poster_for(CHANNEL, settings)
    assert isinstance(poster, SlackPoster) and poster.min_interval == 1.0


def test_a_delivery_job_for_a_slack_channel_posts_through_the_settings_api_url(
        redis: Redis, settings: Settings, slack: SlackAPI) -> None:
    """The delivery job builds the Slack poster itself (no poster passed) and posts to LOBBYBOT_SLACK_API_URL."""
    assert deliver(CHANNEL, stored(redis, settings, record(1))) == 1
    assert len(slack.posted()) == 1


def test_a_malformed_address_is_permanent(settings: Settings, redis: Redis) -> None:
    """An address that is not slack:<team>/<channel> can never work: permanent, with the expected shape."""
    with pytest.raises(PermanentDeliveryError, match="slack:<team id>/<channel id>"):
        SlackPoster(settings, redis).post("slack:C1", render.alert(record(1)))

"""DiscordPoster against a mock Discord REST API on 127.0.0.1: embeds and nonces, replies, rate limits, lost
responses, and the errors that pause a channel."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from redis import Redis

from bot import render
from bot.delivery import deliver
from bot.discord.poster import DiscordPoster
from bot.posters import poster_for
from tests.bot.discord.conftest import communication
from tests.discord_api import DiscordAPI, Drop, Limit, Status
from workers.errors import PermanentDeliveryError, TransientDeliveryError
from workers.store import EventStore
from workers.subscriptions import Subscription, SubscriptionStore

CHANNEL = "discord:111/222"


def poster(api: DiscordAPI, **options: object) -> DiscordPoster:
    options = {"min_interval": 0.0, "backoff": 0.0, **options}
    return DiscordPoster(SecretStr(api.token), api_url=api.base_url, **options)  # type: ignore[arg-type]


def test_a_post_sends_embeds_a_stable_nonce_and_the_bot_token(discord_api: DiscordAPI) -> None:
    """An alert is one POST to the channel with embeds, `Authorization: Bot …`, a Discord User-Agent and a
    nonce Discord enforces; the message id comes back."""
    message_id = poster(discord_api).post(CHANNEL, render.alert(communication()))
    [request] = discord_api.posts()
    assert request.path == "/api/v10/channels/222/messages"
    assert request.headers["authorization"] == "Bot test-token"
    assert request.headers["user-agent"].startswith("DiscordBot (")
    body = request.body
    assert body["enforce_nonce"] is True and 0 < len(body["nonce"]) <= 25
    assert body["allowed_mentions"] == {"parse": []}
    assert body["embeds"][0]["title"].startswith("Communication report: Amazon Web Services")
    assert "message_reference" not in body
    assert message_id == discord_api.messages[0]["id"]
    again = poster(discord_api).post(CHANNEL, render.alert(communication()))  # same message: same nonce
    assert discord_api.posts()[1].body["nonce"] == body["nonce"] and again == message_id
    assert len(discord_api.messages) == 1


def test_poster_for_serves_discord_channels_from_settings(discord_api: DiscordAPI, make_settings) -> None:
    """Workers get a DiscordPoster for `discord:` channels, pointed at LOBBYBOT_DISCORD_API_URL."""
    settings = make_settings(discord_token="test-token", discord_api_url=discord_api.base_url)
    found = poster_for(CHANNEL, settings)
    assert isinstance(found, DiscordPoster)
    found.post(CHANNEL, render.notice("ocl", "ok", "", ""))
    assert len(discord_api.messages) == 1


def test_an_amendment_replies_to_the_original_alert(discord_api: DiscordAPI, redis: Redis, make_settings) -> None:
    """Through the delivery job, an amended record is posted as a reply (`message_reference`) to its alert."""
    settings = make_settings()
    store = EventStore(redis, settings.redis_prefix)
    first = communication()
    store.save([(first, 0)])
    assert deliver(CHANNEL, [[first.id, first.version, "new"]], poster=poster(discord_api)) == 1
    amended = communication(version="v2")
    store.save([(amended, 0)])
    changes = ["subjects: added Energy"]
    assert deliver(CHANNEL, [[amended.id, amended.version, "updated", changes]], poster=poster(discord_api)) == 1
    original, reply = discord_api.messages
    assert reply["message_reference"] == {"message_id": original["id"], "channel_id": "222",
                                          "fail_if_not_exists": False}
    assert "subjects: added Energy" in reply["embeds"][0]["description"]
    assert original["nonce"] != reply["nonce"]


def test_a_429_storm_is_waited_out_and_posts_once(discord_api: DiscordAPI) -> None:
    """Several 429s with `retry_after` are each waited out; the message is created exactly once."""
    discord_api.plan = [Limit(0.05), Limit(0.05), Limit(0.05)]
    message_id = poster(discord_api).post(CHANNEL, render.alert(communication()))
    assert len(discord_api.posts()) == 4
    assert len({request.body["nonce"] for request in discord_api.posts()}) == 1
    assert [m["id"] for m in discord_api.messages] == [message_id]


def test_a_global_rate_limit_is_honoured(discord_api: DiscordAPI) -> None:
    """A global 429 (`X-RateLimit-Global`) is waited out too; one longer than the poster may wait fails the job
    as transient, carrying Discord's `retry_after` for the retry."""
    discord_api.plan = [Limit(0.05, global_=True)]
    poster(discord_api).post(CHANNEL, render.alert(communication()))
    assert len(discord_api.messages) == 1
    discord_api.plan = [Limit(120.5, global_=True)]
    with pytest.raises(TransientDeliveryError) as failure:
        poster(discord_api).post(CHANNEL, render.alert(communication(2)))
    assert failure.value.retry_after == 120.5 and "global" in failure.value.reason
    assert len(discord_api.messages) == 1


def test_endless_429s_end_as_a_transient_error(discord_api: DiscordAPI) -> None:
    """A bounded number of tries: a channel that keeps answering 429 fails the job for a later retry."""
    discord_api.plan = [Limit(0.01)] * 10
    with pytest.raises(TransientDeliveryError):
        poster(discord_api, max_attempts=3).post(CHANNEL, render.alert(communication()))
    assert len(discord_api.posts()) == 3 and discord_api.messages == []


def test_a_lost_response_is_retried_without_a_duplicate(discord_api: DiscordAPI) -> None:
    """Discord created the message but the answer was lost: the retry carries the same nonce, so Discord hands
    back the first message instead of posting it twice."""
    discord_api.plan = [Drop()]
    message_id = poster(discord_api).post(CHANNEL, render.alert(communication()))
    first, retry = discord_api.posts()
    assert first.body["nonce"] == retry.body["nonce"]
    assert [m["id"] for m in discord_api.messages] == [message_id]


def test_a_retried_delivery_job_does_not_duplicate(discord_api: DiscordAPI, redis: Redis, make_settings) -> None:
    """A delivery job whose post lost its answer fails; RQ's retry of the job posts the same nonce, and the
    channel still shows the alert once."""
    settings = make_settings()
    event = communication()
    EventStore(redis, settings.redis_prefix).save([(event, 0)])
    refs = [[event.id, event.version, "new"]]
    discord_api.plan = [Drop()]
    with pytest.raises(TransientDeliveryError):
        deliver(CHANNEL, refs, poster=poster(discord_api, max_attempts=1))
    assert len(discord_api.messages) == 1  # it did land
    assert deliver(CHANNEL, refs, poster=poster(discord_api)) == 1
    assert len(discord_api.posts()) == 2 and len(discord_api.messages) == 1
    assert deliver(CHANNEL, refs, poster=poster(discord_api)) == 0  # now recorded as delivered


def test_server_errors_are_transient(discord_api: DiscordAPI) -> None:
    """A 5xx fails the job for a retry; nothing is paused."""
    discord_api.plan = [Status(502)]
    with pytest.raises(TransientDeliveryError, match="502"):
        poster(discord_api).post(CHANNEL, render.alert(communication()))


@pytest.mark.parametrize(("status", "code", "name", "advice"), [
    (404, 10003, "Unknown Channel", "/lobby subscribe"),
    (403, 50001, "Missing Access", "View Channel"),
    (403, 50013, "Missing Permissions", "Embed Links"),
])
def test_a_channel_the_bot_cannot_post_to_pauses_its_subscriptions(
        discord_api: DiscordAPI, redis: Redis, make_settings, status: int, code: int, name: str,
        advice: str) -> None:
    """Unknown Channel, Missing Access and Missing Permissions pause the channel's subscriptions with the reason
    and what to do, instead of retrying."""
    settings = make_settings()
    subs = SubscriptionStore(redis, settings.redis_prefix)
    sub = subs.add(Subscription(channel=CHANNEL, terms=["amazon"]), actor="discord:42")
    event = communication()
    EventStore(redis, settings.redis_prefix).save([(event, 0)])
    discord_api.channels["222"] = (status, code, name)
    assert deliver(CHANNEL, [[event.id, event.version, "new"]], poster=poster(discord_api)) == 0
    paused = subs.get(sub.id)
    assert paused is not None and name in paused.paused and advice in paused.paused
    assert f"lobbybot resume {CHANNEL}" in paused.paused
    assert len(discord_api.posts()) == 1


def test_a_bad_token_is_permanent_and_never_shown(discord_api: DiscordAPI, caplog: pytest.LogCaptureFixture) -> None:
    """A token Discord rejects (401) stops for good with a reason naming DISCORD_TOKEN, not the token itself."""
    bad = DiscordPoster(SecretStr("not-the-token-xyz"), api_url=discord_api.base_url, min_interval=0.0)
    with pytest.raises(PermanentDeliveryError) as failure:
        bad.post(CHANNEL, render.alert(communication()))
    assert "DISCORD_TOKEN" in failure.value.reason
    assert "not-the-token-xyz" not in failure.value.reason + caplog.text + repr(bad.__dict__)


def test_no_token_or_a_bad_address_is_permanent(discord_api: DiscordAPI) -> None:
    """Workers without DISCORD_TOKEN, or a malformed channel address, say so instead of retrying."""
    with pytest.raises(PermanentDeliveryError, match="DISCORD_TOKEN is not set"):
        DiscordPoster(None, api_url=discord_api.base_url).post(CHANNEL, render.alert(communication()))
    with pytest.raises(PermanentDeliveryError, match="not a Discord channel address"):
        poster(discord_api).post("discord:general", render.alert(communication()))
    assert discord_api.requests == []


def test_a_message_too_big_for_one_post_is_posted_in_order(discord_api: DiscordAPI) -> None:
    """A digest over Discord's 6,000 characters goes out as several messages; the id is the first one's, and
    each part has its own nonce."""
    events = [communication(n, title=f"Record {n} " + "long title " * 20) for n in range(150)]
    [part] = render.digest("Daily digest", events, max_lines=1000)
    message_id = poster(discord_api).post(CHANNEL, part)
    assert len(discord_api.messages) > 1 and message_id == discord_api.messages[0]["id"]
    assert len({m["nonce"] for m in discord_api.messages}) == len(discord_api.messages)

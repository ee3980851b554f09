"""Delivery jobs (`bot.delivery.deliver`, enqueued by dotted path from `workers.fanout` and `workers.digests`).

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}delivered:{channel}:{event id}:{version}   "pending" while being posted, then the message id
    {prefix}posted:{channel}:{event id}                message id of the first alert (amendments reply to it)
    {prefix}lock:deliver:{channel}                     held while a job posts to the channel (ordering, pacing)

Exactly once per (channel, event id, version): each alert is claimed (`pending`) before it is posted and marked
with the message id right after, so a retried, duplicated or concurrent job skips it. A job killed between the
post and the mark — a window of one Redis round trip — leaves `pending`; its retry posts again only when the
poster cannot tell whether the first post landed (the Discord poster sends a nonce, so Discord drops the
repeat). Posts to one channel go through one job at a time (a lock; a second job is rescheduled) in order,
`Poster.min_interval` apart.

Errors: a `TransientDeliveryError` releases the claim and raises, so RQ retries the job later (it skips what was
posted); a `PermanentDeliveryError` (channel gone, bot removed, permission missing) pauses the channel's
subscriptions with the reason and ends the job without a retry.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from redis import Redis
from rq import Queue, get_current_job

from bot import render
from bot.posters import Poster, poster_for
from workers.errors import PermanentDeliveryError, TransientDeliveryError
from workers.events import Event
from workers.fanout import DELIVERY_RETRY
from workers.health import utcnow
from workers.jobs import job_redis
from workers.settings import current
from workers.store import EventStore
from workers.subscriptions import SubscriptionStore

log = logging.getLogger("lobbybot.delivery")
DELIVERED_TTL = 60 * 86400
LOCK_SECONDS = 120


class ChannelBusy(Exception):
    pass


@contextmanager
def channel_lock(redis: Redis, key: str) -> Iterator[None]:
    """Hold `key` while posting. The token is the RQ job id, so the retry of a job killed while holding the
    lock takes it back at once instead of waiting for it to expire."""
    job = get_current_job()
    token = job.id if job is not None else uuid.uuid4().hex
    if not redis.set(key, token, nx=True, ex=LOCK_SECONDS) and redis.get(key) != token.encode():
        raise ChannelBusy(key)
    redis.expire(key, LOCK_SECONDS)
    try:
        yield
    finally:
        if redis.get(key) == token.encode():
            redis.delete(key)


def deliver(channel: str, refs: list[list[Any]], mode: str = "alerts", label: str = "",
            poster: Poster | None = None, language: str = "en") -> int:
    """Post `refs` ([event id, version, verdict, changes]) to `channel` as single alerts (`alerts`), one summary
    (`batch`), a digest (`digest`, titled `label`) or a source-health notice (`notice`: refs are
    [[notice id, source, status, reason, action]]), in `language` (the subscription's). Returns how many alerts
    (or notices) were posted."""
    settings = current()
    redis = job_redis(settings)
    prefix = settings.redis_prefix
    poster = poster or poster_for(channel, settings)
    try:
        with channel_lock(redis, f"{prefix}lock:deliver:{channel}"):
            return _deliver(redis, prefix, channel, refs, mode, label, poster, language)
    except ChannelBusy:
        # The same retries as the original: a worker killed while running this job must not lose its alerts.
        Queue("deliver", connection=redis).enqueue_in(timedelta(seconds=2), deliver, channel, refs, mode, label,
                                                      language=language, retry=DELIVERY_RETRY,
                                                      failure_ttl=7 * 86400)
        log.info("deliver to %s: channel busy, rescheduled in 2 s", channel)
        return 0
    except PermanentDeliveryError as exc:
        paused = SubscriptionStore(redis, prefix).set_paused(channel, exc.reason)
        log.warning("deliver to %s stopped for good: %s (%d subscriptions paused)", channel, exc.reason, len(paused))
        return 0


def _key(prefix: str, channel: str, event_id: str, version: str) -> str:
    return f"{prefix}delivered:{channel}:{event_id}:{version}"


def _claim(redis: Redis, keys: list[str]) -> list[bool]:
    """Claim each key not yet delivered; a `pending` left by a killed job is claimed again."""
    with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.set(key, "pending", nx=True, ex=DELIVERED_TTL)
        claimed = pipe.execute()
    states = redis.mget(keys) if not all(claimed) else []
    return [bool(ok) or (states[i] == b"pending") for i, ok in enumerate(claimed)]


def _mark(redis: Redis, keys: list[str], message_id: str) -> None:
    """Record the post: '<message id> <UTC time>' (what `lobbybot explain` shows)."""
    value = f"{message_id} {utcnow().isoformat(timespec='seconds')}"
    with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.set(key, value, ex=DELIVERED_TTL)
        pipe.execute()


def _post(redis: Redis, poster: Poster, channel: str, message: render.Message, keys: list[str],
          thread: str | None = None) -> str:
    try:
        message_id = poster.post(channel, message, thread=thread)
    except (TransientDeliveryError, PermanentDeliveryError):
        if keys:
            redis.delete(*keys)  # not posted: a retry (or a resumed subscription) claims them again
        raise
    _mark(redis, keys, message_id)
    if poster.min_interval:
        time.sleep(poster.min_interval)
    return message_id


def _deliver(redis: Redis, prefix: str, channel: str, refs: list[list[Any]], mode: str, label: str,
             poster: Poster, language: str = "en") -> int:
    if mode == "notice":
        notice_id, source, status, reason, action = refs[0]
        keys = [f"{prefix}delivered:{channel}:notice:{notice_id}"]
        if not _claim(redis, keys)[0]:
            return 0
        _post(redis, poster, channel, render.notice(source, status, reason, action, language=language), keys)
        return 1
    first: dict[tuple[str, str], list[Any]] = {}
    for ref in refs:  # one per record version (a ref fanned out twice), in order
        first.setdefault((ref[0], ref[1]), ref)
    refs = list(first.values())
    keys = [_key(prefix, channel, ref[0], ref[1]) for ref in refs]
    claimed = _claim(redis, keys)
    todo = [(ref, key) for ref, key, ok in zip(refs, keys, claimed, strict=True) if ok]
    events = EventStore(redis, prefix).get_many([ref[0] for ref, _ in todo])
    found = [(ref, key, event) for (ref, key), event in zip(todo, events, strict=True) if event is not None]
    gone = [key for (_, key), event in zip(todo, events, strict=True) if event is None]
    if gone:
        redis.delete(*gone)  # expired from the store: nothing left to say
    if not found:
        return 0
    if mode in ("batch", "digest"):
        chosen: list[Event] = [event for _, _, event in found]
        key_of = {event.id: key for _, key, event in found}
        # Each message is recorded with the alerts it shows, so a retry after part 1 of a digest sends the rest.
        parts = (render.digest_parts(label or "Digest", chosen, language=language) if mode == "digest"
                 else [(render.batch(chosen, language=language), chosen)])
        for message, shown in parts:
            message_id = _post(redis, poster, channel, message, [key_of[event.id] for event in shown])
            for event in shown:  # a later amendment of one of them replies in this message's thread
                redis.set(f"{prefix}posted:{channel}:{event.id}", message_id, ex=DELIVERED_TTL, nx=True)
        return len(found)
    posted = 0
    for ref, key, event in found:
        verdict, changes = ref[2], ref[3] if len(ref) > 3 else []
        original = redis.get(f"{prefix}posted:{channel}:{event.id}") if verdict == "updated" else None
        if original is not None:
            thread = original.decode() if isinstance(original, bytes) else str(original)
            reply = render.amendment(event, changes, language=language)
            _post(redis, poster, channel, reply, [key], thread=thread)
        else:
            message = render.alert(event, amended=verdict == "updated", language=language)
            message_id = _post(redis, poster, channel, message, [key])
            redis.set(f"{prefix}posted:{channel}:{event.id}", message_id, ex=DELIVERED_TTL, nx=True)
        posted += 1
    return posted

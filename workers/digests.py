"""Digests and quiet hours: alerts held by `workers.fanout` are released here, by the cron dispatcher.

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}held:{subscription id}    ZSET of alert refs waiting (see `workers.fanout`)
    {prefix}held:subs                 SET of subscription ids that have something held
    {prefix}digest:last:{sub id}      when that subscription's held alerts were last released (ISO time)

A daily digest goes out at the subscription's `digest_time` in its time zone, a weekly one on Mondays at that
time; a realtime subscription's alerts held during quiet hours go out when they end. The refs are taken out of
the held set and put into the delivery job in one MULTI/EXEC, so a crash loses nothing and sends nothing twice;
a digest larger than a message is split by the renderer.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from redis import Redis
from redis.exceptions import WatchError
from rq import Queue

from workers.fanout import DELIVER, DELIVER_QUEUE, DELIVERY_RETRY
from workers.health import utcnow
from workers.settings import Settings
from workers.subscriptions import Subscription, SubscriptionStore

TITLES = {
    "en": {"daily": "Daily digest", "weekly": "Weekly digest", "realtime": "Held during quiet hours"},
    "fr": {"daily": "Résumé quotidien", "weekly": "Résumé hebdomadaire",
           "realtime": "Retenu pendant les heures calmes"},
}


def last_slot(sub: Subscription, now: datetime) -> datetime:
    """The most recent moment, at or before `now`, when `sub`'s digest was due."""
    zone = ZoneInfo(sub.timezone)
    local = now.astimezone(zone)
    hour, minute = (int(part) for part in sub.digest_time.split(":"))
    slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if slot > local:
        slot -= timedelta(days=1)
    if sub.digest == "weekly":
        slot -= timedelta(days=slot.weekday())  # back to Monday
    return slot


def due(sub: Subscription, last: datetime | None, now: datetime) -> bool:
    if sub.paused:
        return False
    if sub.digest == "realtime":
        return not sub.in_quiet_hours(now)
    slot = last_slot(sub, now)
    # Never released yet: the first digest waits for the first slot after the subscription was made, instead
    # of going out at the next dispatch (within a minute of the first held alert).
    return (last or sub.created_at) < slot


def dispatch_digests(redis: Redis, settings: Settings, now: datetime | None = None) -> list[int]:
    """Release what is due; return the ids of the subscriptions released."""
    now = now or utcnow()
    prefix = settings.redis_prefix
    store = SubscriptionStore(redis, prefix)
    released = []
    for sub_id in sorted(int(i) for i in redis.smembers(f"{prefix}held:subs")):
        sub = store.get(sub_id)
        if sub is None:
            redis.srem(f"{prefix}held:subs", sub_id)
            redis.delete(f"{prefix}held:{sub_id}")
            continue
        raw_last = redis.get(f"{prefix}digest:last:{sub_id}")
        last = datetime.fromisoformat(raw_last.decode()) if isinstance(raw_last, bytes) else None
        if due(sub, last, now) and release(redis, prefix, sub, now):
            released.append(sub_id)
    return released


def release(redis: Redis, prefix: str, sub: Subscription, now: datetime) -> bool:
    """Move `sub`'s held refs into one delivery job atomically; False when nothing was held."""
    held = f"{prefix}held:{sub.id}"
    with redis.pipeline() as pipe:
        while True:
            try:
                pipe.watch(held)
                refs = [json.loads(cast(bytes, raw)) for raw in pipe.zrange(held, 0, -1)]
                if not refs:
                    pipe.unwatch()
                    redis.srem(f"{prefix}held:subs", sub.id)
                    return False
                pipe.multi()
                label = f"{TITLES[sub.language][sub.digest]}: {' '.join(sub.terms)}"
                Queue(DELIVER_QUEUE, connection=redis).enqueue(
                    DELIVER, sub.channel, refs, "digest", label, language=sub.language, retry=DELIVERY_RETRY,
                    failure_ttl=7 * 86400,
                    description=f"digest of {len(refs)} alerts for subscription #{sub.id}", pipeline=pipe)
                pipe.delete(held)
                pipe.srem(f"{prefix}held:subs", sub.id)
                pipe.set(f"{prefix}digest:last:{sub.id}", now.isoformat())
                pipe.execute()
                return True
            except WatchError:
                continue  # a new alert was held meanwhile: take it too

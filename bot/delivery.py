"""The delivery job (`bot.delivery.deliver`, enqueued by dotted path from `workers.fanout`).

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}delivered:{channel}:{event id}:{version}    message id once posted (expires after 30 days)

Idempotent per (channel, event id, version): a post already recorded is skipped, so a retried or duplicated
job does not post twice. The record is written right after the post, so the only window for a repeat is a kill
between the two (exactly-once across kills is issue #6). Transient poster errors raise and the job's RQ `Retry`
runs it again; permanent ones are logged and not retried.
"""

from __future__ import annotations

import logging

from bot.posters import Poster, poster_for
from bot.render import alert
from workers.errors import PermanentDeliveryError
from workers.jobs import job_redis
from workers.settings import current
from workers.store import EventStore

log = logging.getLogger("lobbybot.delivery")
DELIVERED_TTL = 30 * 86400


def deliver(channel: str, refs: list[list[str]], poster: Poster | None = None) -> int:
    """Post the events `refs` ([event id, version, verdict] triples) to `channel`; return how many were posted."""
    settings = current()
    redis = job_redis(settings)
    poster = poster or poster_for(channel)
    events = EventStore(redis, settings.redis_prefix).get_many([ref[0] for ref in refs])
    posted = 0
    for (event_id, version, verdict), event in zip(refs, events, strict=True):
        key = f"{settings.redis_prefix}delivered:{channel}:{event_id}:{version}"
        if event is None or redis.exists(key):
            continue
        try:
            message_id = poster.post(channel, alert(event, amended=verdict == "updated"))
        except PermanentDeliveryError as exc:
            log.warning("deliver to %s stopped: %s", channel, exc.reason)
            return posted
        redis.set(key, message_id, ex=DELIVERED_TTL)
        posted += 1
    return posted

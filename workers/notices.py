"""Source-health notices: when a source becomes failing, blocked, disabled or not configured, and when it
recovers, each channel whose subscriptions depend on it gets one notice — not one per poll.

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}notice:{source}     the last health announced for the source (GETSET: one announcement per change)

A subscription depends on a source when its source filter names it or when it has no source filter. Notices
go out as `bot.delivery.deliver` jobs in `notice` mode, idempotent per (channel, source, transition).
"""

from __future__ import annotations

from redis import Redis
from rq import Queue

from workers.fanout import DELIVER, DELIVER_QUEUE, DELIVERY_RETRY
from workers.health import SourceState
from workers.settings import Settings
from workers.subscriptions import SubscriptionStore

BAD = ("failing", "blocked", "disabled", "not_configured")


def announce(redis: Redis, settings: Settings, state: SourceState) -> list[str]:
    """Send a notice if `state`'s health changed since the last one announced; return the channels told."""
    status = state.status
    if status not in BAD and status != "ok":
        return []
    previous = redis.getset(f"{settings.redis_prefix}notice:{state.name}", status)
    before = previous.decode() if isinstance(previous, bytes) else None
    if before == status or (before is None and status == "ok"):
        return []  # unchanged, or a first success: nothing to announce
    if status == "ok" and before not in BAD:
        return []
    subs = [sub for sub in SubscriptionStore(redis, settings.redis_prefix).all()
            if not sub.paused and sub.depends_on(state.name)]
    languages: dict[str, str] = {}
    for sub in sorted(subs, key=lambda sub: sub.id):
        languages.setdefault(sub.channel, sub.language)
    channels = sorted(languages)
    notice_id = f"{state.name}:{status}:{state.last_attempt.isoformat() if state.last_attempt else ''}"
    for channel in channels:
        Queue(DELIVER_QUEUE, connection=redis).enqueue(
            DELIVER, channel, [[notice_id, state.name, status, state.reason, state.action]], "notice", "",
            language=languages[channel], retry=DELIVERY_RETRY, failure_ttl=7 * 86400,
            description=f"notice {state.name} {status} to {channel}")
    return channels

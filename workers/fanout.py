"""Fan-out: turn alertable events into delivery jobs on the `deliver` queue.

Until subscriptions exist (issue #6) every alert goes to `LOBBYBOT_ALERT_CHANNEL` (default `console:alerts`).
Delivery jobs are enqueued by dotted path (`bot.delivery.deliver`) so `workers` never imports `bot`.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis
from rq import Queue, Retry

from workers.dedupe import Classified
from workers.settings import Settings

DELIVER = "bot.delivery.deliver"
DELIVER_QUEUE = "deliver"
# A delivery killed with its worker (SIGKILL, Heroku's shutdown) is retried; deliveries are idempotent.
DELIVERY_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])


def fan_out(redis: Redis, settings: Settings, items: Sequence[Classified]) -> int:
    """Enqueue delivery of `items` to the channels that want them; return how many alerts were enqueued."""
    if not items:
        return 0
    refs = [[item.event.id, item.event.version, item.verdict.value] for item in items]
    Queue(DELIVER_QUEUE, connection=redis).enqueue(
        DELIVER, settings.alert_channel, refs, retry=DELIVERY_RETRY, failure_ttl=7 * 86400,
        description=f"deliver {len(refs)} alerts to {settings.alert_channel}",
    )
    return len(refs)

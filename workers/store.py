"""Event storage: the latest version of every remembered event, for rendering alerts and answering queries.

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}event:{event id}      JSON of the latest `Event` version; expires with its dedupe record
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from redis import Redis

from workers.events import Event


class EventStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def key(self, event_id: str) -> str:
        return f"{self.prefix}event:{event_id}"

    def save(self, events: Iterable[tuple[Event, int]]) -> None:
        """Store each event with its time to live in seconds (0 = keep)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for event, ttl in events:
                if ttl > 0:
                    pipe.set(self.key(event.id), event.to_json(), ex=ttl)
                else:
                    pipe.set(self.key(event.id), event.to_json())
            pipe.execute()

    def get_many(self, event_ids: Sequence[str]) -> list[Event | None]:
        if not event_ids:
            return []
        raw = self.redis.mget([self.key(event_id) for event_id in event_ids])
        return [Event.from_json(item) if item else None for item in raw]

    def get(self, event_id: str) -> Event | None:
        return self.get_many([event_id])[0]

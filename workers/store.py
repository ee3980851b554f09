"""Event storage: the latest version of every remembered event, for rendering alerts and answering queries.

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}event:{event id}      the latest `Event` version: deflated JSON; expires with its dedupe record

Values are JSON deflated with zlib against a preset dictionary of the field names and phrases every event
repeats, which roughly halves them (a stored event is most of the memory an event costs). A value written
before compression (plain JSON, starting with `{`) still reads.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

from redis import Redis

from workers.events import Event

# Seeds the compressor with what most events share; changing it makes stored values unreadable, so append only.
_DICTIONARY = (
    b'"institutions":["House of Commons","Senate of Canada","Finance Canada (FIN)","Innovation, Science and '
    b'Economic Development Canada (ISED)","Treasury Board Of Canada Secretariat (TBS)"],"officials":[{"name":'
    b'"title":"Member of Parliament","institution":"Policy Advisor","Chief of Staff","Director General"},'
    b'"subjects":["Government Procurement","Industry","Economic Development","Taxation and Finance"],'
    b'"lobbyists":["registrant":"organization":"organization_fr":"published_at":"occurred_at":"T00:00:00Z",'
    b'"status":"active","end_date":"supersedes":"ocl:comm:"language":"fr","url":"https://lobbycanada.gc.ca/app/'
    b'secure/ocl/lrs/do/cmmLgPblcVw?comlogId=","summary":"Registrant: Met: Subjects: communicated with '
    b'filed a communication report","title":"kind":"communication","registration","source":"ocl","version":'
    b'{"id":"ocl:comm:'
)


def pack(event: Event) -> bytes:
    compressor = zlib.compressobj(6, zdict=_DICTIONARY)
    return compressor.compress(event.to_json().encode()) + compressor.flush()


def unpack(raw: bytes) -> Event:
    if raw[:1] == b"{":
        return Event.from_json(raw)
    decompressor = zlib.decompressobj(zdict=_DICTIONARY)
    return Event.from_json(decompressor.decompress(raw) + decompressor.flush())


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
                    pipe.set(self.key(event.id), pack(event), ex=ttl)
                else:
                    pipe.set(self.key(event.id), pack(event))
            pipe.execute()

    def get_many(self, event_ids: Sequence[str]) -> list[Event | None]:
        if not event_ids:
            return []
        raw = self.redis.mget([self.key(event_id) for event_id in event_ids])
        return [unpack(item) if isinstance(item, bytes) else None for item in raw]

    def get(self, event_id: str) -> Event | None:
        return self.get_many([event_id])[0]

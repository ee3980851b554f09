"""The search index (DESIGN §6): write side for the ingest path, read-side primitives for `workers.query`.

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}ix:next              counter of document numbers (INCRBY); every indexed version gets a new one
    {prefix}ix:t:{token}         postings of a token: packed 10-byte entries, appended (see `ENTRY`)
    {prefix}ix:d:{doc}           JSON [event id, lobbyists, institutions, officials, subjects]; expires with the event
    {prefix}ix:id:{bucket}       HASH event id → current document number (bucket = crc32(id) % 4096)
    {prefix}ix:sup:{bucket}      HASH event id → id of the amendment that supersedes it
    {prefix}ix:dead              BITMAP document numbers replaced by a newer version or by an amendment

Tokens come from `workers.terms`: the words and joined keys of the organisation (English and French),
registrant, lobbyists, institutions, officials, subjects, and of the title and summary.

Why this shape: memory. A posting costs 10 bytes (document number, day, last day kept, source/kind, flags),
so a query gets everything the summary counts from the postings alone, without one read per document; sorted
sets or sets of document numbers cost 60–100 bytes per posting once they outgrow their compact encodings.
Entries are appended in document order and never rewritten in place, so:

- an update gets a new document number, and the old one is marked in `ix:dead`;
- an amendment (an event whose `supersedes` names another id) marks the amended record dead, so it never
  counts twice; an amended record arriving after its amendment is not indexed at all;
- a record leaving the retention window is filtered out by its entry's last day (`until`, from the ttl the
  Deduper gave it) and its `ix:d` record expires with it;
- `compact(token)` drops dead and expired entries from one postings string (atomically, keeping anything
  appended meanwhile); queries call it when a list they read is mostly garbage.

Records outside the retention window never get here: the Deduper classifies them `expired`.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
from redis import Redis

from workers.events import Event
from workers.terms import name_keys, text_keys

ENTRY = np.dtype([("doc", "<u4"), ("day", "<u2"), ("until", "<u2"), ("sk", "u1"), ("flags", "u1")])
_PACK = struct.Struct("<IHHBB")
assert _PACK.size == ENTRY.itemsize
FOREVER = 0xFFFF
BUCKETS = 4096
ACTIVE = 1  # flags bit: a registration in force (no end date, not terminated)

SOURCES = ("other", "ocl", "clq", "lda", "news")
KINDS = ("other", "communication", "registration", "filing", "mandate", "article")
_EPOCH = date(1970, 1, 1).toordinal()

# The records of many documents as one JSON array (one reply to parse instead of hundreds); null if expired.
_RECORDS = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('GET', key) or 'null' end
return '[' .. table.concat(out, ',') .. ']'
"""
_COMPACT = """
local raw = redis.call('GET', KEYS[1])
if not raw or #raw < tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2] .. string.sub(raw, tonumber(ARGV[1]) + 1))
return 1
"""


def day_number(moment: date | datetime) -> int:
    """Days since 1970-01-01 (what postings store)."""
    day = moment.astimezone(UTC).date() if isinstance(moment, datetime) and moment.tzinfo else moment
    if isinstance(day, datetime):
        day = day.date()
    return max(0, min(FOREVER - 1, day.toordinal() - _EPOCH))


def day_date(number: int) -> date:
    return date.fromordinal(int(number) + _EPOCH)


def source_code(source: str) -> int:
    return SOURCES.index(source) if source in SOURCES else 0


def kind_code(kind: str) -> int:
    return KINDS.index(kind) if kind in KINDS else 0


def event_day(event: Event, today: int) -> int:
    """The day a record sorts and counts by: when it happened, else when it became public."""
    moment = event.occurred_at or event.published_at or event.end_date
    return day_number(moment) if moment else today


def event_tokens(event: Event) -> set[str]:
    names = [event.organization, event.organization_fr, event.registrant, *event.lobbyists, *event.institutions,
             *(official.name for official in event.officials), *(o.institution for o in event.officials),
             *event.subjects]
    found: set[str] = set()
    for name in names:
        if name:
            found.update(name_keys(name))
    found.update(text_keys(event.title))
    found.update(text_keys(event.summary))
    found.discard("")
    return found


def is_active_registration(event: Event) -> bool:
    return event.kind == "registration" and event.end_date is None and event.status != "terminated"


@dataclass(frozen=True)
class DocRecord:
    """What summaries read of one matching document beyond its postings entry."""

    event_id: str
    lobbyists: list[str]
    institutions: list[str]
    officials: list[str]
    subjects: list[str]

    @classmethod
    def of(cls, event: Event) -> DocRecord:
        return cls(event.id, list(event.lobbyists), list(event.institutions),
                   [official.name for official in event.officials], list(event.subjects))

    def dumps(self) -> str:
        return json.dumps([self.event_id, self.lobbyists, self.institutions, self.officials, self.subjects],
                          ensure_ascii=False, separators=(",", ":"))


class SearchIndex:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._compact = redis.register_script(_COMPACT)
        self._records = redis.register_script(_RECORDS)

    # Key names ----------------------------------------------------------------------------------------
    def token_key(self, token: str) -> str:
        return f"{self.prefix}ix:t:{token}"

    def doc_key(self, doc: int) -> str:
        return f"{self.prefix}ix:d:{doc}"

    def _bucket(self, family: str, event_id: str) -> str:
        return f"{self.prefix}ix:{family}:{zlib.crc32(event_id.encode('utf-8')) % BUCKETS}"

    @property
    def dead_key(self) -> str:
        return f"{self.prefix}ix:dead"

    # Write side ---------------------------------------------------------------------------------------
    def add(self, events: Sequence[tuple[Event, int]], now: datetime | None = None) -> int:
        """Index each (event, ttl seconds; 0 = keep) as the current version of its id; return how many
        were indexed. Replaces an earlier version's entries and the record an amendment supersedes."""
        if not events:
            return 0
        today = day_number(now or datetime.now(UTC))
        with self.redis.pipeline(transaction=False) as pipe:
            for event, _ in events:
                pipe.hget(self._bucket("id", event.id), event.id)
                pipe.hget(self._bucket("sup", event.id), event.id)
                if event.supersedes:
                    pipe.hget(self._bucket("id", event.supersedes), event.supersedes)
            found = iter(pipe.execute())
        previous: dict[str, int | None] = {}
        superseded_by: dict[str, bool] = {}
        targets: dict[str, int | None] = {}
        for event, _ in events:
            previous[event.id] = _int(next(found))
            superseded_by[event.id] = next(found) is not None
            if event.supersedes:
                targets[event.supersedes] = _int(next(found))
        last = int(self.redis.incrby(f"{self.prefix}ix:next", len(events)))
        indexed = 0
        current: dict[str, int] = {}
        appends: dict[str, list[bytes]] = {}  # one APPEND per token per batch, entries in document order
        with self.redis.pipeline(transaction=False) as pipe:
            for position, (event, ttl) in enumerate(events):
                doc = last - len(events) + 1 + position
                old = previous[event.id]
                if old is not None:
                    pipe.setbit(self.dead_key, old, 1)
                    pipe.delete(self.doc_key(old))
                if event.supersedes:
                    pipe.hset(self._bucket("sup", event.supersedes), event.supersedes, event.id)
                    target = current.get(event.supersedes, targets.get(event.supersedes))
                    if target is not None:
                        pipe.setbit(self.dead_key, target, 1)
                        pipe.delete(self.doc_key(target))
                    superseded_by[event.supersedes] = True
                if superseded_by[event.id]:  # its amendment is already here: it must not count again
                    pipe.hdel(self._bucket("id", event.id), event.id)
                    continue
                current[event.id] = doc
                pipe.hset(self._bucket("id", event.id), event.id, doc)
                pipe.set(self.doc_key(doc), DocRecord.of(event).dumps(), ex=ttl or None)
                until = FOREVER if ttl == 0 else min(FOREVER - 1, today + -(-ttl // 86400))
                entry = _PACK.pack(doc, event_day(event, today), until,
                                   source_code(event.source) << 4 | kind_code(event.kind),
                                   ACTIVE if is_active_registration(event) else 0)
                for token in event_tokens(event):
                    appends.setdefault(token, []).append(entry)
                indexed += 1
            for token, entries in appends.items():
                pipe.append(self.token_key(token), b"".join(entries))
            pipe.execute()
        return indexed

    # Read side ----------------------------------------------------------------------------------------
    def postings(self, tokens: Iterable[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The entries of each token (sorted by document number) and the dead-document bitmap, read in one
        round trip. A token with no postings maps to an empty array."""
        names = sorted(set(tokens))
        with self.redis.pipeline(transaction=False) as pipe:
            for token in names:
                pipe.get(self.token_key(token))
            pipe.get(self.dead_key)
            raw = pipe.execute()
        out = {}
        for token, value in zip(names, raw, strict=False):
            data = value or b""
            entries = np.frombuffer(data[: len(data) - len(data) % ENTRY.itemsize], dtype=ENTRY)
            if len(entries) > 1 and not bool(np.all(entries["doc"][1:] > entries["doc"][:-1])):
                entries = np.unique(entries)  # concurrent writers may interleave; unique sorts by doc first
            out[token] = entries
        return out, np.frombuffer(raw[-1] or b"", dtype=np.uint8)

    def records(self, docs: Sequence[int]) -> list[DocRecord | None]:
        """The records of `docs` (None for one that has expired), decoded in one JSON pass."""
        if not docs:
            return []
        found = json.loads(self._records(keys=[self.doc_key(int(doc)) for doc in docs]))
        return [DocRecord(*item) if item else None for item in found]

    def compact(self, token: str, today: int) -> int:
        """Drop dead and expired entries from `token`'s postings; return how many were dropped. Entries
        appended while this runs are kept (the script replaces only the prefix it was given)."""
        raw, dead = self.redis.mget([self.token_key(token), self.dead_key])
        if not isinstance(raw, bytes) or not raw:
            return 0
        dead = dead if isinstance(dead, bytes) else b""
        raw = raw[: len(raw) - len(raw) % ENTRY.itemsize]
        entries = np.frombuffer(raw, dtype=ENTRY)
        kept = entries[live_mask(entries, np.frombuffer(dead, dtype=np.uint8), today)]
        dropped = len(entries) - len(kept)
        if dropped:
            self._compact(keys=[self.token_key(token)], args=[len(raw), kept.tobytes()])
        return dropped


def live_mask(entries: np.ndarray, dead: np.ndarray, today: int) -> np.ndarray:
    """True for entries whose document is neither replaced nor past its last day."""
    docs = entries["doc"]
    byte = docs >> 3
    inside = byte < len(dead)
    bits = np.zeros(len(docs), dtype=bool)
    if len(dead):
        bits[inside] = (dead[byte[inside]] >> (7 - (docs[inside] & 7)).astype(np.uint8)) & 1 == 1
    return ~bits & (entries["until"] >= today)


def _int(value: bytes | None) -> int | None:
    return int(value) if value is not None else None

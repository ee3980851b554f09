"""The search index (DESIGN §6): write side for the ingest path, read-side primitives for `workers.query`.

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}ix:next              counter of document numbers (INCRBY); every indexed version gets a new one
    {prefix}ix:t:{token}         postings of a token: packed 10-byte entries, appended (`workers.postings.ENTRY`)
    {prefix}ix:b:{token}         BITMAP of the token's document numbers, kept once it has `DENSE` postings
    {prefix}ix:d:{doc}           JSON [event id, lobbyists, institutions, officials, subjects]; expires with the event
    {prefix}ix:id:{bucket}       HASH event id → current document number (bucket = crc32(id) % 4096)
    {prefix}ix:sup:{bucket}      HASH event id → id of the amendment that supersedes it
    {prefix}ix:dead              BITMAP document numbers replaced by a newer version or by an amendment
    {prefix}ix:gen               counter bumped by every write (`add`): cached answers of an older one are stale
    {prefix}ix:q:{digest}        a cached answer of `workers.query.search` (see there), expires after 10 min

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
  appended meanwhile). A token's bitmap is a superset of its live documents, so compaction leaves it alone.

Cost of `add`: two round trips and two Lua calls per batch whatever its size (one to look up earlier
versions and allocate document numbers, one to write ids, records, one APPEND per distinct token of the
batch, and the bitmap bits of dense tokens), so a batch of 1,000 events costs a few thousand Redis
operations on the server but only two commands on the client.

Records outside the retention window never get here: the Deduper classifies them `expired`.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from redis import Redis

from workers.events import Event
from workers.postings import (
    ACTIVE,
    DENSE,
    ENTRY,
    FOREVER,
    PACK,
    day_number,
    entries_of,
    kind_code,
    live_mask,
    source_code,
)
from workers.terms import name_keys, text_keys

BUCKETS = 4096

# For each event (id, supersedes or ''): its current document number, whether an amendment already
# supersedes it, and the current document number of what it supersedes ('' when none); then allocate
# ARGV[1] document numbers and return the last one.
_LOOKUP = """
local out = {}
local k = 2
for a = 2, #ARGV, 2 do
  out[#out + 1] = redis.call('HGET', KEYS[k], ARGV[a]) or ''
  out[#out + 1] = redis.call('HEXISTS', KEYS[k + 1], ARGV[a])
  k = k + 2
  if ARGV[a + 1] ~= '' then
    out[#out + 1] = redis.call('HGET', KEYS[k], ARGV[a + 1]) or ''
    k = k + 1
  else
    out[#out + 1] = ''
  end
end
out[#out + 1] = redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))
return out
"""
# ARGV: n ids, m records, t tokens, dense threshold (bytes), then n (id, doc), m (record, ttl), t blobs.
# KEYS: n id buckets, m record keys, t postings keys, t bitmap keys. A postings string that reaches the
# threshold gets a bitmap of all its documents; after that each batch sets the bits of its new entries.
_WRITE = """
local n, m, t, dense = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local a = 5
for i = 1, n do
  redis.call('HSET', KEYS[i], ARGV[a], ARGV[a + 1])
  a = a + 2
end
for i = n + 1, n + m do
  local ttl = tonumber(ARGV[a + 1])
  if ttl > 0 then redis.call('SET', KEYS[i], ARGV[a], 'EX', ttl) else redis.call('SET', KEYS[i], ARGV[a]) end
  a = a + 2
end
redis.call('INCR', KEYS[n + m + 2 * t + 1])
for j = 1, t do
  local key, bits, blob = KEYS[n + m + j], KEYS[n + m + t + j], ARGV[a]
  a = a + 1
  local size = redis.call('APPEND', key, blob)
  if size >= dense then
    if size - #blob < dense or redis.call('EXISTS', bits) == 0 then blob = redis.call('GET', key) end
    for p = 1, #blob - 9, 10 do
      redis.call('SETBIT', bits, struct.unpack('<I4', blob, p), 1)
    end
  end
end
return 0
"""
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
        self._lookup = redis.register_script(_LOOKUP)
        self._write = redis.register_script(_WRITE)

    # Key names ----------------------------------------------------------------------------------------
    def token_key(self, token: str) -> str:
        return f"{self.prefix}ix:t:{token}"

    def bitmap_key(self, token: str) -> str:
        return f"{self.prefix}ix:b:{token}"

    def doc_key(self, doc: int) -> str:
        return f"{self.prefix}ix:d:{doc}"

    def _bucket(self, family: str, event_id: str) -> str:
        return f"{self.prefix}ix:{family}:{zlib.crc32(event_id.encode('utf-8')) % BUCKETS}"

    @property
    def dead_key(self) -> str:
        return f"{self.prefix}ix:dead"

    @property
    def generation_key(self) -> str:
        return f"{self.prefix}ix:gen"

    # Write side ---------------------------------------------------------------------------------------
    def add(self, events: Sequence[tuple[Event, int]], now: datetime | None = None) -> int:
        """Index each (event, ttl seconds; 0 = keep) as the current version of its id; return how many
        were indexed. Replaces an earlier version's entries and the record an amendment supersedes."""
        if not events:
            return 0
        today = day_number(now or datetime.now(UTC))
        keys = [f"{self.prefix}ix:next"]
        args: list[str | int] = [len(events)]
        for event, _ in events:
            keys += [self._bucket("id", event.id), self._bucket("sup", event.id)]
            args += [event.id, event.supersedes or ""]
            if event.supersedes:
                keys.append(self._bucket("id", event.supersedes))
        found = self._lookup(keys=keys, args=args)
        last = int(found[-1])
        previous: dict[str, int | None] = {}
        superseded_by: dict[str, bool] = {}
        targets: dict[str, int | None] = {}
        for position, (event, _) in enumerate(events):
            previous[event.id] = _int(found[3 * position])
            superseded_by[event.id] = bool(found[3 * position + 1])
            if event.supersedes:
                targets[event.supersedes] = _int(found[3 * position + 2])
        ids: list[tuple[str, str, int]] = []  # (bucket key, event id, document)
        records: list[tuple[int, str, int]] = []  # (document, record, ttl)
        appends: dict[str, list[bytes]] = {}  # one APPEND per token per batch, entries in document order
        current: dict[str, int] = {}
        with self.redis.pipeline(transaction=False) as pipe:  # rare: updates and amendments only
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
                ids.append((self._bucket("id", event.id), event.id, doc))
                records.append((doc, DocRecord.of(event).dumps(), ttl))
                until = FOREVER if ttl == 0 else min(FOREVER - 1, today + -(-ttl // 86400))
                entry = PACK.pack(doc, event_day(event, today), until,
                                  source_code(event.source) << 4 | kind_code(event.kind),
                                  ACTIVE if is_active_registration(event) else 0)
                for token in event_tokens(event):
                    appends.setdefault(token, []).append(entry)
            if len(pipe):
                pipe.execute()
        self._write_batch(ids, records, appends)
        return len(records)

    def _write_batch(self, ids: list[tuple[str, str, int]], records: list[tuple[int, str, int]],
                     appends: dict[str, list[bytes]]) -> None:
        tokens = list(appends)
        keys = [bucket for bucket, _, _ in ids] + [self.doc_key(doc) for doc, _, _ in records] \
            + [self.token_key(token) for token in tokens] + [self.bitmap_key(token) for token in tokens] \
            + [self.generation_key]
        args: list[str | int | bytes] = [len(ids), len(records), len(tokens), DENSE * ENTRY.itemsize]
        for _, event_id, doc in ids:
            args += [event_id, doc]
        for _, record, ttl in records:
            args += [record, ttl]
        args += [b"".join(appends[token]) for token in tokens]
        self._write(keys=keys, args=args)

    # Read side ----------------------------------------------------------------------------------------
    def sizes(self, tokens: Iterable[str]) -> dict[str, tuple[int, bool]]:
        """Postings count of each token and whether it has a bitmap, in one round trip."""
        names = sorted(set(tokens))
        with self.redis.pipeline(transaction=False) as pipe:
            for token in names:
                pipe.strlen(self.token_key(token))
                pipe.exists(self.bitmap_key(token))
            raw = pipe.execute()
        return {token: (int(raw[2 * i]) // ENTRY.itemsize, bool(raw[2 * i + 1])) for i, token in enumerate(names)}

    def read(self, full: Iterable[str], bitmaps: Iterable[str]) -> tuple[dict[str, np.ndarray],
                                                                         dict[str, np.ndarray], np.ndarray]:
        """The entries of each token of `full` (sorted by document number), the bitmap of each token of
        `bitmaps`, and the dead-document bitmap, read in one round trip."""
        full, bitmaps = sorted(set(full)), sorted(set(bitmaps))
        with self.redis.pipeline(transaction=False) as pipe:
            for token in full:
                pipe.get(self.token_key(token))
            for token in bitmaps:
                pipe.get(self.bitmap_key(token))
            pipe.get(self.dead_key)
            raw = pipe.execute()
        entries = {token: entries_of(value) for token, value in zip(full, raw, strict=False)}
        bits = {token: np.frombuffer(value or b"", dtype=np.uint8)
                for token, value in zip(bitmaps, raw[len(full):], strict=False)}
        return entries, bits, np.frombuffer(raw[-1] or b"", dtype=np.uint8)

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


def _int(value: bytes | str | None) -> int | None:
    return int(value) if value not in (None, b"", "") else None

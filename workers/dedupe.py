"""Dedupe: classify each event as new, updated (known id, new version) or duplicate, atomically (DESIGN §5).

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}seen:{event id}           the last version seen; expires with retention (news: LOBBYBOT_NEWS_TTL_DAYS)
    {prefix}news:url:{sha1}           event id owning a canonical article URL (news only; expires like news)
    {prefix}news:title:{sha1}         event id owning a normalised title (news only; expires like news)
    {prefix}fanout:journal            ZSET "id\nversion\nverdict" of alerts not yet fanned out, scored by time

The journal closes the gap between "seen" and "alerted": the script that marks an event seen also writes it to
the journal (when the caller alerts), and `workers.fanout` removes it once its delivery jobs are queued. A poll
killed in between leaves it there, and `fanout.recover` fans it out a few minutes later (the retried poll sees
the record as a duplicate, so without the journal its alert would be lost).

An event whose `supersedes` names a record already seen (an amended federal communication report gets a new id
that points at the one it replaces) is `updated`, not new: amendments never count as a second record.

One Lua script classifies a whole batch, so two workers polling the same feed at the same moment cannot both
see an event as new. News is also deduplicated across feeds: an article whose guid is new but whose canonical
URL or normalised title (" - Publisher" removed) another article already owns is a duplicate of that one.

Retention: a registry record whose latest date (end date, else publication) is older than
`LOBBYBOT_RETENTION_DAYS` is `expired` (not recorded, not alerted, not indexed); a registration still in force
never expires; otherwise the record's key lives until it leaves the window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from redis import Redis

from workers.events import Event
from workers.health import utcnow
from workers.normalize import canonical_url, normalised_title
from workers.settings import Settings

BATCH = 500
_MIN_TITLE_WORDS = 4  # shorter titles ("Breaking news") are too common to mean "same article"

# KEYS[1] is the fan-out journal, ARGV[1] the time (its score); then per event: its seen key, the seen key of
# the record it supersedes (when it names one), its news alias keys; and id, version, ttl, number of aliases,
# superseded id, journal mode ('' none, 'n' when new, 'a' when new or updated).
_CLASSIFY = """
local out = {}
local k = 2
local a = 2
while a <= #ARGV do
  local id, version, ttl = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local n, prior_id, journal = tonumber(ARGV[a + 3]), ARGV[a + 4], ARGV[a + 5]
  a = a + 6
  local seen = KEYS[k]
  k = k + 1
  local prior = nil
  if prior_id ~= '' then
    prior = KEYS[k]
    k = k + 1
  end
  local current = redis.call('GET', seen)
  local verdict, other = 'new', ''
  if current then
    if current == version then verdict, other = 'duplicate', id else verdict, other = 'updated', current end
  elseif prior and redis.call('EXISTS', prior) == 1 then
    verdict, other = 'updated', prior_id
  else
    for j = 0, n - 1 do
      local owner = redis.call('GET', KEYS[k + j])
      if owner and owner ~= id then verdict, other = 'duplicate', owner break end
    end
  end
  if verdict ~= 'duplicate' or other ~= id then
    if ttl > 0 then redis.call('SET', seen, version, 'EX', ttl) else redis.call('SET', seen, version) end
  end
  if verdict == 'new' then
    for j = 0, n - 1 do
      if ttl > 0 then
        redis.call('SET', KEYS[k + j], id, 'EX', ttl, 'NX')
      else
        redis.call('SET', KEYS[k + j], id, 'NX')
      end
    end
  end
  k = k + n
  if (journal == 'a' and verdict ~= 'duplicate') or (journal == 'n' and verdict == 'new') then
    redis.call('ZADD', KEYS[1], ARGV[1], id .. '\\n' .. version .. '\\n' .. verdict)
  end
  out[#out + 1] = verdict
  out[#out + 1] = other
end
return out
"""


class Verdict(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    DUPLICATE = "duplicate"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Classified:
    event: Event
    verdict: Verdict
    other: str = ""  # duplicate: the id it duplicates; updated: the previous version, or the id it supersedes
    ttl: int = 0  # seconds the record is kept (0 = no expiry)


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class Deduper:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.prefix = settings.redis_prefix
        self.retention_seconds = settings.retention_days * 86400
        self.news_ttl_seconds = settings.news_ttl_days * 86400
        self._script = redis.register_script(_CLASSIFY)

    def ttl(self, event: Event, now: datetime) -> int | None:
        """Seconds to remember `event`; 0 = forever (a registration in force); None = outside retention."""
        if event.source == "news":
            return self.news_ttl_seconds
        if event.kind == "registration" and event.end_date is None and event.status != "terminated":
            return 0
        latest = event.latest_date
        if latest is None:
            return self.retention_seconds
        remaining = int(self.retention_seconds - (now - latest).total_seconds())
        return remaining if remaining > 0 else None

    def aliases(self, event: Event) -> list[str]:
        if event.source != "news":
            return []
        keys = []
        if event.url:
            keys.append(f"{self.prefix}news:url:{_sha1(canonical_url(event.url))}")
        title = normalised_title(event.title)
        if len(title.split()) >= _MIN_TITLE_WORDS:
            keys.append(f"{self.prefix}news:title:{_sha1(title)}")
        return keys

    def classify(self, events: Iterable[Event], now: datetime | None = None, *,
                 journal: bool = False) -> list[Classified]:
        """Classify and record `events` in order; an event repeated within the batch is a duplicate. With
        `journal`, every event that will alert (new; updated, except news) is written to the fan-out journal
        in the same atomic step (`workers.fanout` takes it out once its alerts are queued)."""
        now = now or utcnow()
        results: list[Classified] = []
        pending: list[tuple[Event, int]] = []
        for event in events:
            ttl = self.ttl(event, now)
            if ttl is None:
                results.append(Classified(event, Verdict.EXPIRED))
                continue
            pending.append((event, ttl))
            results.append(Classified(event, Verdict.NEW))  # placeholder, replaced below
        verdicts = iter(self._run(pending, now, journal))
        return [next(verdicts) if c.verdict is not Verdict.EXPIRED else c for c in results]

    def _run(self, pending: Sequence[tuple[Event, int]], now: datetime, journal: bool) -> list[Classified]:
        out: list[Classified] = []
        for start in range(0, len(pending), BATCH):
            chunk = pending[start:start + BATCH]
            keys: list[str] = [journal_key(self.prefix)]
            args: list[str | int | float] = [now.timestamp()]
            for event, ttl in chunk:
                aliases = self.aliases(event)
                keys.append(f"{self.prefix}seen:{event.id}")
                if event.supersedes:
                    keys.append(f"{self.prefix}seen:{event.supersedes}")
                keys.extend(aliases)
                mode = ("n" if event.source == "news" else "a") if journal else ""
                args.extend((event.id, event.version, ttl, len(aliases), event.supersedes or "", mode))
            raw = self._script(keys=keys, args=args)
            for i, (event, ttl) in enumerate(chunk):
                verdict, other = raw[2 * i], raw[2 * i + 1]
                out.append(Classified(event, Verdict(_text(verdict)), _text(other), ttl))
        return out

    def forget(self, event_ids: Iterable[str]) -> None:
        """Drop what is remembered of these ids (tests and `lobbybot import --alert` replays)."""
        keys = [f"{self.prefix}seen:{event_id}" for event_id in event_ids]
        if keys:
            self.redis.delete(*keys)


def journal_key(prefix: str) -> str:
    return f"{prefix}fanout:journal"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

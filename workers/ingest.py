"""The ingest path every source shares: dedupe → store → index (`workers.index`) → fan-out.

`ingest()` is called by the poll job and by `lobbybot import`. With `alert=False` (an endpoint's first
successful poll, or an import without `--alert`) everything is recorded and nothing is alerted, so adding a
source never floods a channel.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from redis import Redis

from workers import fanout
from workers.dedupe import Classified, Deduper, Verdict
from workers.events import Event, changes
from workers.index import SearchIndex
from workers.settings import Settings
from workers.store import EventStore


@dataclass
class IngestReport:
    counts: Counter[str] = field(default_factory=Counter)
    alerted: int = 0
    baseline: int = 0

    def add(self, other: IngestReport) -> None:
        self.counts.update(other.counts)
        self.alerted += other.alerted
        self.baseline += other.baseline

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        parts = [f"{self.counts[v.value]} {v.value}" for v in Verdict]
        return f"{', '.join(parts)}; {self.alerted} alerted" + (f", {self.baseline} baseline" if self.baseline else "")


def alertable(item: Classified) -> bool:
    """New records alert; amendments alert too, except news whose headline was merely edited."""
    if item.verdict is Verdict.NEW:
        return True
    return item.verdict is Verdict.UPDATED and item.event.source != "news"


def ingest(redis: Redis, settings: Settings, events: Iterable[Event], *, alert: bool) -> IngestReport:
    classified = Deduper(redis, settings).classify(events, journal=alert)
    report = IngestReport(counts=Counter(item.verdict.value for item in classified))
    kept = [item for item in classified if item.verdict in (Verdict.NEW, Verdict.UPDATED)]
    store = EventStore(redis, settings.redis_prefix)
    updated = [item for item in kept if item.verdict is Verdict.UPDATED and alert]
    # An amendment that supersedes another record is compared with that record, else with its own last version.
    previous = store.get_many([item.other if item.other == item.event.supersedes else item.event.id
                               for item in updated])
    amended = {item.event.id: changes(before, item.event)
               for item, before in zip(updated, previous, strict=True) if before is not None}
    store.save((item.event, item.ttl) for item in kept)
    _remember_cross_feed_duplicates(redis, settings, classified)
    SearchIndex(redis, settings.redis_prefix).add([(item.event, item.ttl) for item in kept])
    to_alert = [item for item in kept if alertable(item)]
    if alert:
        report.alerted = fanout.fan_out(redis, settings, to_alert, amended)
        fanout.settle(redis, settings.redis_prefix, kept)  # every journal entry of this batch, whatever wrote it
    else:
        report.baseline = len(to_alert)
    return report


CHUNK = 1000


def ingest_all(redis: Redis, settings: Settings, events: Iterable[Event], *, alert: bool,
               progress: Callable[[int], None] | None = None) -> IngestReport:
    """`ingest` a stream of any length in chunks, so memory stays flat; `progress(n)` after each chunk."""
    report = IngestReport()
    chunk: list[Event] = []
    done = 0
    for event in events:
        chunk.append(event)
        if len(chunk) == CHUNK:
            report.add(ingest(redis, settings, chunk, alert=alert))
            done += len(chunk)
            chunk = []
            if progress:
                progress(done)
    if chunk:
        report.add(ingest(redis, settings, chunk, alert=alert))
        if progress:
            progress(done + len(chunk))
    return report


def _remember_cross_feed_duplicates(redis: Redis, settings: Settings, classified: list[Classified]) -> None:
    """An article dropped as a copy of another one is never stored: note which, for `lobbybot explain`."""
    copies = [item for item in classified if item.verdict is Verdict.DUPLICATE and item.other != item.event.id]
    if not copies:
        return
    with redis.pipeline(transaction=False) as pipe:
        for item in copies:
            key = f"{settings.redis_prefix}why:{item.event.id}"
            pipe.hset(key, "*", json.dumps({"decision": f"a duplicate of {item.other} (same article in another "
                                                        "feed), so it was not posted again"}))
            pipe.expire(key, settings.news_ttl_days * 86400)
        pipe.execute()

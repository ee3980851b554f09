"""The neutral answer to `/lobby` (`Summary`, DESIGN §6) and how it is computed from matching postings.

`summarise(...)` takes the live, filtered postings entries of a query (`workers.postings.ENTRY`) and returns
the `Summary`. Every count is exact and vectorised over the entries' columns (no copy of the entries, one
histogram of days for the 12 months and for picking the most recent matches). The names (lobbyists,
institutions, officials, subjects) come from the records of the `SAMPLE` most recent matches only;
`Summary.sample` says how many were read, so a card can say when it is partial.

How it fails: never on data; an expired record (its `ix:d` key gone) is skipped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from workers.index import DocRecord, SearchIndex
from workers.postings import ACTIVE, ENTRY, KINDS, SOURCES, day_date, day_number, kind_code
from workers.store import EventStore
from workers.terms import name_key

_SK_OFFSET = 8  # byte offset of `sk` (followed by `flags`) in a postings entry
assert ENTRY.fields is not None and ENTRY.fields["sk"][1] == _SK_OFFSET and ENTRY.fields["flags"][1] == 9
SAMPLE = 200  # most recent matches whose names are read (a record costs ~10 µs to fetch and count)
TOP = 10
LATEST = 10


@dataclass(frozen=True)
class Count:
    name: str
    count: int


@dataclass(frozen=True)
class Month:
    month: str  # YYYY-MM
    count: int


@dataclass(frozen=True)
class Item:
    id: str
    source: str
    kind: str
    title: str
    url: str
    date: str  # YYYY-MM-DD


@dataclass(frozen=True)
class Lobbyists:
    total: int = 0
    by_source: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class News:
    total: int = 0
    latest: list[Item] = field(default_factory=list)


@dataclass(frozen=True)
class Summary:
    query: list[str]
    total: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    lobbyists: Lobbyists = field(default_factory=Lobbyists)
    communications_last_12_months: int = 0
    active_registrations: int = 0
    institutions: list[Count] = field(default_factory=list)
    officials: list[Count] = field(default_factory=list)
    subjects: list[Count] = field(default_factory=list)
    monthly: list[Month] = field(default_factory=list)
    latest: list[Item] = field(default_factory=list)
    news: News = field(default_factory=News)
    sample: int = 0  # how many of the most recent matches the name counts were read from
    since: str | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        """The inverse of `to_dict` (how `workers.query` reads a cached answer back)."""
        def items(rows: list[dict[str, Any]]) -> list[Item]:
            return [Item(**row) for row in rows]

        def counts(rows: list[dict[str, Any]]) -> list[Count]:
            return [Count(**row) for row in rows]

        return cls(**{**data, "lobbyists": Lobbyists(**data["lobbyists"]),
                      "institutions": counts(data["institutions"]), "officials": counts(data["officials"]),
                      "subjects": counts(data["subjects"]), "monthly": [Month(**row) for row in data["monthly"]],
                      "latest": items(data["latest"]),
                      "news": News(data["news"]["total"], items(data["news"]["latest"]))})


def summarise(index: SearchIndex, store: EventStore, query: list[str], entries: np.ndarray, now: datetime,
              since: date | None, source: str | None) -> Summary:
    today = day_number(now)
    entries = np.ascontiguousarray(entries)
    day = entries["day"]
    # One pass counts every (source/kind, flags) pair: the two adjacent bytes read as one little-endian uint16.
    pairs = np.ndarray(len(entries), dtype="<u2", buffer=entries, offset=_SK_OFFSET,
                       strides=entries.strides) if len(entries) else np.zeros(0, dtype="<u2")
    per_pair = np.bincount(pairs, minlength=1 << 16).reshape(256, 256)  # [flags, source/kind]
    per_sk = per_pair.sum(axis=0)
    codes = np.arange(256)
    by_source = _named(np.bincount(codes >> 4, weights=per_sk, minlength=16).astype(np.int64), SOURCES)
    by_kind = _named(np.bincount(codes & 15, weights=per_sk, minlength=16).astype(np.int64), KINDS)
    active_flags = (codes & ACTIVE) > 0
    registrations = (codes & 15) == kind_code("registration")
    active = int(per_pair[active_flags][:, registrations].sum())
    comm = SOURCES.index("ocl") << 4 | kind_code("communication")
    recent_days = day > today - 365
    comms = int(np.count_nonzero(pairs[recent_days] & 0xFF == comm)) if per_sk[comm] else 0
    hist = np.bincount(day) if len(day) else np.zeros(1, dtype=np.int64)

    recent = entries[_most_recent(entries, hist)]
    records = index.records([int(doc) for doc in recent["doc"]])
    people_of: dict[str, list[str]] = {}
    institutions: list[str] = []
    officials: list[str] = []
    subjects: list[str] = []
    for code, record in zip((recent["sk"] >> 4).tolist(), records, strict=True):
        if record is not None:
            people_of.setdefault(SOURCES[code], []).extend(record.lobbyists)
            institutions.extend(set(record.institutions))
            officials.extend(set(record.officials))
            subjects.extend(set(record.subjects))
    people = {src: set(_merge(Counter(names))) for src, names in sorted(people_of.items()) if names}

    latest, news = _items(store, recent, records)
    return Summary(
        query=query, total=len(entries), by_source=by_source, by_kind=by_kind,
        lobbyists=Lobbyists(len(set().union(*people.values())), {src: len(keys) for src, keys in people.items()}),
        communications_last_12_months=comms, active_registrations=active,
        institutions=_top(Counter(institutions)), officials=_top(Counter(officials)),
        subjects=_top(Counter(subjects)), monthly=_monthly(hist, now.date()),
        latest=latest, news=News(by_source.get("news", 0), news), sample=len(records),
        since=since.isoformat() if since else None, source=source,
    )


def _most_recent(entries: np.ndarray, hist: np.ndarray) -> np.ndarray:
    """Positions of the `SAMPLE` newest entries (by day, then document number), newest first. The day
    histogram finds the oldest day that can make the cut, so only the entries from that day on are sorted."""
    if len(entries) > SAMPLE:
        newest_first = np.cumsum(hist[::-1])
        cutoff = len(hist) - 1 - int(np.searchsorted(newest_first, SAMPLE))
        positions = np.flatnonzero(entries["day"] >= cutoff)
    else:
        positions = np.arange(len(entries))
    picked = entries[positions]
    key = picked["day"].astype(np.uint64) << np.uint64(32) | picked["doc"].astype(np.uint64)
    return positions[np.argsort(key)[::-1][:SAMPLE]]


def _named(counts: np.ndarray, names: tuple[str, ...]) -> dict[str, int]:
    return {names[code]: int(n) for code, n in enumerate(counts[: len(names)]) if n}


def _merge(counter: Counter[str]) -> dict[str, tuple[str, int]]:
    """Counts per spelling → per name key (two spellings of one name count once, under the commonest)."""
    merged: dict[str, tuple[str, int]] = {}
    for name, n in counter.most_common():
        key = name_key(name) or name
        shown, total = merged.get(key, (name, 0))
        merged[key] = (shown, total + n)
    return merged


def _top(counter: Counter[str]) -> list[Count]:
    ranked = sorted(_merge(counter).values(), key=lambda pair: (-pair[1], pair[0]))
    return [Count(name, n) for name, n in ranked[:TOP]]


def _monthly(hist: np.ndarray, today: date) -> list[Month]:
    """Counts for the 12 calendar months ending with the current one, oldest first, from a day histogram."""
    current = today.year * 12 + today.month - 1
    starts = [day_number(date((current - 11 + i) // 12, (current - 11 + i) % 12 + 1, 1)) for i in range(13)]
    sums = np.concatenate(([0], np.cumsum(hist)))
    bounded = [min(start, len(hist)) for start in starts]
    return [Month(f"{(current - 11 + i) // 12:04d}-{(current - 11 + i) % 12 + 1:02d}",
                  int(sums[bounded[i + 1]] - sums[bounded[i]])) for i in range(12)]


def _items(store: EventStore, recent: np.ndarray, records: list[DocRecord | None]) -> tuple[list[Item], list[Item]]:
    """The most recent matches, and the most recent news among them, with titles and links."""
    picked = [(entry, record) for entry, record in zip(recent, records, strict=True) if record is not None]
    wanted = picked[:LATEST] + [pair for pair in picked if pair[0]["sk"] >> 4 == SOURCES.index("news")][:3]
    events = dict(zip((r.event_id for _, r in wanted), store.get_many([r.event_id for _, r in wanted]),
                      strict=True))
    items = []
    for entry, record in wanted:
        event = events[record.event_id]
        items.append(Item(record.event_id, SOURCES[entry["sk"] >> 4], KINDS[entry["sk"] & 15],
                          event.title if event else record.event_id, event.url if event else "",
                          day_date(entry["day"]).isoformat()))
    return items[: min(LATEST, len(picked))], items[min(LATEST, len(picked)):]

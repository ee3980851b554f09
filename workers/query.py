"""The query engine behind `/lobby` and `lobbybot search`: terms in, a neutral `Summary` out (DESIGN §6).

`search(redis, settings, ["amazon", "hydro-quebec"])` reads the index (`workers.index`) and aliases
(`workers.aliases`); it writes nothing except compacting a postings list that is mostly garbage.

Meaning: every term must match (a term matches its joined key, or all its words, or any name of its alias
group); newest first; `since` keeps records on or after a day; `source` keeps one source. Only current
versions count: an updated record counts once, an amended one is replaced by its amendment.

Cost: every count (totals, per source and kind, communications, registrations, monthly) is exact and comes
from the postings alone. The names (lobbyists, institutions, officials, subjects) come from the records of the
`SAMPLE` most recent matches; `Summary.sample` says how many were read, so a card can say when it is partial.

How it fails: `QueryError` (a clear, one-line message) for no terms, terms that hold no word, too many terms
or too long a query, or an unknown source. Any Unicode is accepted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

import numpy as np
from redis import Redis

from workers.aliases import AliasStore
from workers.index import ACTIVE, KINDS, SOURCES, SearchIndex, day_date, day_number, kind_code, live_mask
from workers.settings import Settings
from workers.store import EventStore
from workers.terms import Term, name_key

MAX_TERMS = 20
MAX_CHARS = 500
SAMPLE = 200  # most recent matches whose names are read (a record costs ~10 µs to fetch and count)
TOP = 10
LATEST = 10
COMPACT_AT = 0.5  # a postings list read with more garbage than this is compacted


class QueryError(ValueError):
    """The query cannot be run as given; the message says why, in one line."""


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


def check_terms(terms: Sequence[str]) -> list[Term]:
    """Parse and validate query terms; raise `QueryError` saying what is wrong."""
    if not terms:
        raise QueryError("give at least one term, e.g. amazon or \"hydro-quebec\"")
    if len(terms) > MAX_TERMS:
        raise QueryError(f"too many terms ({len(terms)}); at most {MAX_TERMS}")
    if sum(len(term) for term in terms) > MAX_CHARS:
        raise QueryError(f"query too long; at most {MAX_CHARS} characters")
    parsed = [Term.parse(term) for term in terms]
    empty = [term.raw for term in parsed if term.empty]
    if empty:
        shown = ", ".join(repr(raw) for raw in empty[:3])
        raise QueryError(f"{shown}: nothing to search for once punctuation, suffixes (inc, ltd…) and "
                         "common words are set aside")
    return parsed


def search(redis: Redis, settings: Settings, terms: Sequence[str], *, since: date | None = None,
           source: str | None = None, now: datetime | None = None) -> Summary:
    """Answer `terms`: every term must match. Raises `QueryError` on bad input."""
    parsed = check_terms(terms)
    if source is not None and source not in SOURCES[1:]:
        raise QueryError(f"unknown source {source!r}; one of: {', '.join(SOURCES[1:])}")
    now = now or datetime.now(UTC)
    today = day_number(now)
    index = SearchIndex(redis, settings.redis_prefix)
    expansions = AliasStore(redis, settings.redis_prefix).expansions()
    forms = [_forms(term, expansions) for term in parsed]
    postings, dead = index.postings(key for group in forms for form in group for key in form.postings_keys())
    _compact_garbage(index, postings, dead, today)

    matched: np.ndarray | None = None
    for group in forms:
        docs = _union([_match(form, postings) for form in group])
        matched = docs if matched is None else _intersect(matched, docs)
    assert matched is not None
    entries = _entries(matched, [postings[key] for form in forms[0] for key in form.postings_keys()])
    entries = entries[live_mask(entries, dead, today)]
    if since is not None:
        entries = entries[entries["day"] >= day_number(since)]
    if source is not None:
        entries = entries[(entries["sk"] >> 4) == SOURCES.index(source)]
    return _summarise(index, EventStore(redis, settings.redis_prefix), list(terms), entries, now, since, source)


def _forms(term: Term, expansions: dict[str, list[str]]) -> list[Term]:
    names = expansions.get(term.key) or expansions.get(name_key(term.raw))
    if not names:
        return [term]
    others = [Term.parse(name) for name in names]
    return [term, *(other for other in others if not other.empty and other.key != term.key)]


def _match(term: Term, postings: dict[str, np.ndarray]) -> np.ndarray:
    """Documents with the term's joined key, or with all of its words."""
    by_key = postings[term.key]["doc"]
    lists = sorted((postings[word]["doc"] for word in term.words), key=len)
    words = lists[0]
    for other in lists[1:]:
        words = _intersect(words, other)
    return _union([by_key, words])


def _intersect(small: np.ndarray, big: np.ndarray) -> np.ndarray:
    """Sorted unique `small` ∩ sorted unique `big`, O(|small| log |big|)."""
    if len(small) > len(big):
        small, big = big, small
    if not len(small) or not len(big):
        return small[:0]
    at = np.minimum(np.searchsorted(big, small), len(big) - 1)
    return small[big[at] == small]


def _union(lists: list[np.ndarray]) -> np.ndarray:
    lists = [docs for docs in lists if len(docs)]
    if not lists:
        return np.empty(0, dtype=np.uint32)
    if len(lists) == 1:
        return lists[0]
    return np.unique(np.concatenate(lists))


def _entries(docs: np.ndarray, lists: list[np.ndarray]) -> np.ndarray:
    """The postings entries of `docs`, taken from the lists that hold them (every doc is in one of them)."""
    out = np.zeros(len(docs), dtype=lists[0].dtype if lists else None)
    missing = np.ones(len(docs), dtype=bool)
    for entries in sorted(lists, key=len, reverse=True):
        if not missing.any():
            break
        if not len(entries):
            continue
        at = np.minimum(np.searchsorted(entries["doc"], docs), len(entries) - 1)
        hit = missing & (entries["doc"][at] == docs)
        out[hit] = entries[at[hit]]
        missing &= ~hit
    return out[~missing]


def _compact_garbage(index: SearchIndex, postings: dict[str, np.ndarray], dead: np.ndarray, today: int) -> None:
    for token, entries in postings.items():
        if len(entries) >= 64:
            garbage = len(entries) - int(live_mask(entries, dead, today).sum())
            if garbage > COMPACT_AT * len(entries):
                index.compact(token, today)


def _summarise(index: SearchIndex, store: EventStore, query: list[str], entries: np.ndarray, now: datetime,
               since: date | None, source: str | None) -> Summary:
    today = day_number(now)
    source_of, kind_of = entries["sk"] >> 4, entries["sk"] & 15
    by_source = _named(np.bincount(source_of, minlength=16), SOURCES)
    by_kind = _named(np.bincount(kind_of, minlength=16), KINDS)
    comms = (source_of == SOURCES.index("ocl")) & (kind_of == kind_code("communication")) \
        & (entries["day"] > today - 365)
    active = (kind_of == kind_code("registration")) & ((entries["flags"] & ACTIVE) > 0)

    key = entries["day"].astype(np.uint64) << np.uint64(32) | entries["doc"].astype(np.uint64)
    if len(key) > SAMPLE:
        top = np.argpartition(key, len(key) - SAMPLE)[-SAMPLE:]
        order = top[np.argsort(key[top])[::-1]]
    else:
        order = np.argsort(key)[::-1]
    recent = entries[order]
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
        communications_last_12_months=int(comms.sum()), active_registrations=int(active.sum()),
        institutions=_top(Counter(institutions)), officials=_top(Counter(officials)),
        subjects=_top(Counter(subjects)), monthly=_monthly(entries["day"], now.date()),
        latest=latest, news=News(by_source.get("news", 0), news), sample=len(records),
        since=since.isoformat() if since else None, source=source,
    )


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


def _monthly(days: np.ndarray, today: date) -> list[Month]:
    """Counts for the 12 calendar months ending with the current one, oldest first."""
    current = today.year * 12 + today.month - 1
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) + 1970 * 12
    counts = np.bincount((months - (current - 11))[(months > current - 12) & (months <= current)], minlength=12)
    return [Month(f"{(current - 11 + i) // 12:04d}-{(current - 11 + i) % 12 + 1:02d}", int(counts[i]))
            for i in range(12)]


def _items(store: EventStore, recent: np.ndarray, records: list) -> tuple[list[Item], list[Item]]:
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

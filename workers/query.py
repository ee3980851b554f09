"""The query engine behind `/lobby` and `lobbybot search`: terms in, a neutral `Summary` out (DESIGN §6).

`search(redis, settings, ["amazon", "hydro-quebec"])` reads the index (`workers.index`) and aliases
(`workers.aliases`); it writes nothing except compacting a postings list it read that is mostly garbage
(found by a sample of 1,024 of its entries, so a clean list costs nothing extra).

Meaning: every term must match (a term matches its joined key, or all its words, or any name of its alias
group); newest first; `since` keeps records on or after a day; `source` keeps one source. Only current
versions count: an updated record counts once, an amended one is replaced by its amendment.

Plan: one round trip reads the size of every postings list involved (and whether it has a bitmap); the term
whose matches can be fewest (its joined key plus its smallest word, per alias form) *drives*: those lists are
read whole, since their entries are what the summary counts. Every other list is only asked "is this document
in you?", so a dense token (`workers.postings.DENSE`) is read as its bitmap (1 bit per document) instead of its
postings (10 bytes per posting): "Finance Canada" never reads the 800k postings of "canada". A second round
trip reads all of it; the summary (`workers.summary`) is computed with numpy and one more round trip for the
records of the 200 most recent matches, and one for the events shown as latest items.

How it fails: `QueryError` (a clear, one-line message) for no terms, terms that hold no word, too many terms
or too long a query, or an unknown source. Any Unicode is accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import numpy as np
from redis import Redis

from workers.aliases import AliasStore, forms
from workers.index import SearchIndex
from workers.postings import ENTRY, SOURCES, bits_of, contains, day_number, live_mask
from workers.settings import Settings
from workers.store import EventStore
from workers.summary import SAMPLE, Count, Item, Lobbyists, Month, News, Summary, summarise
from workers.terms import Term

__all__ = ["MAX_CHARS", "MAX_TERMS", "SAMPLE", "Count", "Item", "Lobbyists", "Month", "News", "QueryError",
           "Summary", "check_terms", "search"]

MAX_TERMS = 20
MAX_CHARS = 500
COMPACT_AT = 0.5  # a postings list read with more garbage than this is compacted
_PROBE = 1024  # entries sampled to estimate a list's garbage


class QueryError(ValueError):
    """The query cannot be run as given; the message says why, in one line."""


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
    groups = [forms(term, expansions) for term in parsed]
    sizes = index.sizes(key for group in groups for form in group for key in form.postings_keys())

    driver = min(range(len(groups)), key=lambda i: sum(_bound(form, sizes) for form in groups[i]))
    drives = {key for form in groups[driver] for key in _driving(form, sizes)}
    probed = {key for group in groups for form in group for key in form.postings_keys()} - drives
    bitmaps = {key for key in probed if sizes[key][1]}
    entries, bits, dead = index.read(drives | probed - bitmaps, bitmaps)
    _compact_garbage(index, {key: entries[key] for key in drives}, dead, today)

    found = _candidates([entries[key] for key in sorted(drives)])
    docs = found["doc"]
    keep = np.ones(len(found), dtype=bool)
    for group in groups:
        in_group = np.zeros(len(found), dtype=bool)
        for form in group:
            in_group |= _member(form, docs, entries, bits)
        keep &= in_group
    found = found[keep]
    found = found[live_mask(found, dead, today)]
    if since is not None:
        found = found[found["day"] >= day_number(since)]
    if source is not None:
        found = found[(found["sk"] >> 4) == SOURCES.index(source)]
    return summarise(index, EventStore(redis, settings.redis_prefix), list(terms), found, now, since, source)




def _bound(term: Term, sizes: dict[str, tuple[int, bool]]) -> int:
    """At most how many documents the term can match: its joined key's plus its smallest word's."""
    return sizes[term.key][0] + min(sizes[word][0] for word in term.words)


def _driving(term: Term, sizes: dict[str, tuple[int, bool]]) -> set[str]:
    """The lists whose entries hold every match of the term: its joined key and its smallest word."""
    return {term.key, min(term.words, key=lambda word: (sizes[word][0], word))}


def _candidates(lists: list[np.ndarray]) -> np.ndarray:
    """The entries of the driving lists, one per document, sorted by document number."""
    lists = [entries for entries in lists if len(entries)]
    if not lists:
        return np.empty(0, dtype=ENTRY)
    if len(lists) == 1:
        return lists[0]
    joined = np.concatenate(lists)
    joined = joined[np.argsort(joined["doc"], kind="stable")]
    docs = joined["doc"]
    return joined[np.concatenate(([True], docs[1:] != docs[:-1]))]


def _has(token: str, docs: np.ndarray, entries: dict[str, np.ndarray], bits: dict[str, np.ndarray]) -> np.ndarray:
    if token in bits:
        return bits_of(bits[token], docs)
    return contains(docs, entries[token]["doc"])


def _member(term: Term, docs: np.ndarray, entries: dict[str, np.ndarray],
            bits: dict[str, np.ndarray]) -> np.ndarray:
    """True for each of `docs` that has the term's joined key, or all of its words."""
    words = np.ones(len(docs), dtype=bool)
    for word in term.words:
        words &= _has(word, docs, entries, bits)
    return words | _has(term.key, docs, entries, bits)


def _compact_garbage(index: SearchIndex, lists: dict[str, np.ndarray], dead: np.ndarray, today: int) -> None:
    """Compact a list whose sampled entries are mostly dead or expired (rare: after many updates)."""
    for token, entries in lists.items():
        if len(entries) >= 64:
            probe = entries[:: max(1, len(entries) // _PROBE)]
            if len(probe) - int(live_mask(probe, dead, today).sum()) > COMPACT_AT * len(probe):
                index.compact(token, today)

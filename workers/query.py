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

Cache: an answer is kept for `CACHE_SECONDS` under a key of the query's meaning (normalised forms, filters and
the day), stamped with the index generation (`ix:gen`, bumped by every index write) read *before* computing;
it is served only while the generation is unchanged, so any ingest makes it stale at once. What the cache
cannot see — a record's `ix:d` expiring during the day — shows up at most `CACHE_SECONDS` late.

How it fails: `QueryError` (a clear, one-line message) for no terms, terms that hold no word, too many terms
or too long a query, or an unknown source. Any Unicode is accepted.
"""

from __future__ import annotations

import hashlib
import json
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
CACHE_SECONDS = 600
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
    cache_key = _cache_key(index, groups, since, source, today)
    generation, cached = redis.mget([index.generation_key, cache_key])
    stamp = b"%d" % int(generation or 0)
    if isinstance(cached, bytes):
        written, _, answer = cached.partition(b" ")
        if written == stamp:
            return Summary.from_dict({**json.loads(answer), "query": list(terms)})
    summary = _search(redis, settings, index, list(terms), groups, since, source, now, today)
    redis.set(cache_key, stamp + b" " + json.dumps(summary.to_dict()).encode(), ex=CACHE_SECONDS)
    return summary


def _cache_key(index: SearchIndex, groups: list[list[Term]], since: date | None, source: str | None,
               today: int) -> str:
    """One key per meaning: the normalised forms in any order (so `Hydro-Québec amazon` and `AMAZON hydro quebec`
    share it), the filters and the day."""
    forms_ = sorted([[form.key, *form.words] for form in group] for group in groups)  # AND commutes
    meaning = json.dumps([*forms_, since.isoformat() if since else "", source or "", today])
    return f"{index.prefix}ix:q:{hashlib.sha1(meaning.encode()).hexdigest()}"


def _search(redis: Redis, settings: Settings, index: SearchIndex, terms: list[str], groups: list[list[Term]],
            since: date | None, source: str | None, now: datetime, today: int) -> Summary:
    sizes = index.sizes(key for group in groups for form in group for key in form.postings_keys())

    driver = min(range(len(groups)), key=lambda i: sum(_bound(form, sizes) for form in groups[i]))
    drives = {key for form in groups[driver] for key in _driving(form, sizes)}
    probed = {key for group in groups for form in group for key in form.postings_keys()} - drives
    bitmaps = {key for key in probed if sizes[key][1]}
    entries, bits, dead = index.read(drives | probed - bitmaps, bitmaps)
    _compact_garbage(index, {key: entries[key] for key in drives}, dead, today)

    found, known = _candidates({key: entries[key] for key in sorted(drives)})
    docs = found["doc"]
    has = _Membership(docs, entries, bits, known)
    keep = live_mask(found, dead, today)
    for group in groups:
        in_group = np.zeros(len(found), dtype=bool)
        for form in group:
            in_group |= has.form(form)
        keep &= in_group
    if since is not None:
        keep &= found["day"] >= day_number(since)
    if source is not None:
        keep &= (found["sk"] >> 4) == SOURCES.index(source)
    found = found if bool(keep.all()) else found[keep]
    return summarise(index, EventStore(redis, settings.redis_prefix), terms, found, now, since, source)




def _bound(term: Term, sizes: dict[str, tuple[int, bool]]) -> int:
    """At most how many documents the term can match: its joined key's plus its smallest word's."""
    return sizes[term.key][0] + min(sizes[word][0] for word in term.words)


def _driving(term: Term, sizes: dict[str, tuple[int, bool]]) -> set[str]:
    """The lists whose entries hold every match of the term: its joined key and its smallest word."""
    return {term.key, min(term.words, key=lambda word: (sizes[word][0], word))}


def _candidates(lists: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The entries of the driving lists, one per document, sorted by document number; and for each driving
    token, which of them it holds (so membership in a driving list costs nothing later). The largest list is
    the base; the others usually hold few documents it lacks (a name's joined key and its rarest word mostly
    share their documents), so the sort, when one is needed at all, is of a few extras."""
    lists = {token: entries for token, entries in lists.items() if len(entries)}
    if not lists:
        return np.empty(0, dtype=ENTRY), {}
    base_token = max(lists, key=lambda token: len(lists[token]))
    found = lists[base_token]
    extras = [entries[~contains(entries["doc"], found["doc"])] for token, entries in lists.items()
              if token != base_token]
    extras = [entries for entries in extras if len(entries)]
    if extras:
        found = np.concatenate([found, *extras])
        found = found[np.sort(np.unique(found["doc"], return_index=True)[1])]  # first of each document
        found = found[np.argsort(found["doc"], kind="stable")]
    masks = {token: (np.ones(len(found), dtype=bool) if entries is found
                     else contains(found["doc"], entries["doc"])) for token, entries in lists.items()}
    return found, masks


class _Membership:
    """Which candidate documents hold a token (each token computed once per query): a driving list's mask is
    already known, a dense token is read from its bitmap, any other from its sorted postings."""

    def __init__(self, docs: np.ndarray, entries: dict[str, np.ndarray], bits: dict[str, np.ndarray],
                 known: dict[str, np.ndarray]) -> None:
        self.docs, self.entries, self.bits, self.known = docs, entries, bits, dict(known)

    def token(self, token: str) -> np.ndarray:
        if token not in self.known:
            self.known[token] = (bits_of(self.bits[token], self.docs) if token in self.bits
                                 else contains(self.docs, self.entries[token]["doc"]))
        return self.known[token]

    def form(self, term: Term) -> np.ndarray:
        """True for each document that has the term's joined key, or all of its words."""
        key = self.token(term.key)
        if term.words == (term.key,) or bool(key.all()):
            return key
        words = np.ones(len(self.docs), dtype=bool)
        for word in term.words:
            words &= self.token(word)
        return words | key


def _compact_garbage(index: SearchIndex, lists: dict[str, np.ndarray], dead: np.ndarray, today: int) -> None:
    """Compact a list whose sampled entries are mostly dead or expired (rare: after many updates)."""
    for token, entries in lists.items():
        if len(entries) >= 64:
            probe = entries[:: max(1, len(entries) // _PROBE)]
            if len(probe) - int(live_mask(probe, dead, today).sum()) > COMPACT_AT * len(probe):
                index.compact(token, today)

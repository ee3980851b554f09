"""The postings format of the search index (`workers.index`) and the numpy primitives that read it.

A posting is one 10-byte entry (`ENTRY`): document number, day, last day kept (`until`), source/kind, flags.
A token's postings are one Redis string of entries in document order. A *dense* token (one with at least
`DENSE` postings) also has a bitmap of its document numbers, so a query can test membership in it by reading
1 bit per document instead of 10 bytes per posting (see docs/adr/0001).

How it fails: never; a truncated string (a partial entry at the end) is cut to whole entries.
"""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime

import numpy as np

ENTRY = np.dtype([("doc", "<u4"), ("day", "<u2"), ("until", "<u2"), ("sk", "u1"), ("flags", "u1")])
PACK = struct.Struct("<IHHBB")
assert PACK.size == ENTRY.itemsize
FOREVER = 0xFFFF
ACTIVE = 1  # flags bit: a registration in force (no end date, not terminated)
DENSE = 8192  # postings from which a token also keeps a bitmap of its documents
TABLE_LIMIT = 32_000_000  # document numbers up to which `contains` uses a lookup table (32 MB at most)

SOURCES = ("other", "ocl", "clq", "lda", "news")
KINDS = ("other", "communication", "registration", "filing", "mandate", "article")
_EPOCH = date(1970, 1, 1).toordinal()


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


def entries_of(raw: bytes | None) -> np.ndarray:
    """The entries of a postings string, sorted by document number (concurrent writers may interleave)."""
    data = raw or b""
    entries = np.frombuffer(data[: len(data) - len(data) % ENTRY.itemsize], dtype=ENTRY)
    docs = entries["doc"]
    if len(entries) > 1 and not bool(np.all(docs[1:] > docs[:-1])):
        entries = np.unique(entries)  # unique sorts by doc first
    return entries


def bits_of(bitmap: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """True for each of `docs` whose bit is set in a Redis bitmap (bit 0 = most significant bit of byte 0)."""
    bits = np.zeros(len(docs), dtype=bool)
    if not len(bitmap):
        return bits
    byte = docs >> 3
    inside = byte < len(bitmap)
    if bool(inside.all()):
        return (bitmap[byte] >> (7 - (docs & 7)).astype(np.uint8)) & 1 == 1
    bits[inside] = (bitmap[byte[inside]] >> (7 - (docs[inside] & 7)).astype(np.uint8)) & 1 == 1
    return bits


def live_mask(entries: np.ndarray, dead: np.ndarray, today: int) -> np.ndarray:
    """True for entries whose document is neither replaced nor past its last day."""
    return ~bits_of(dead, entries["doc"]) & (entries["until"] >= today)


def contains(docs: np.ndarray, sorted_docs: np.ndarray) -> np.ndarray:
    """True for each of `docs` found in the sorted array `sorted_docs`. Below `TABLE_LIMIT` document numbers
    this is one pass over each array through a lookup table (a byte per document number), several times faster
    than a binary search per document on lists of 100,000s; above it, a binary search per document."""
    if not len(sorted_docs) or not len(docs):
        return np.zeros(len(docs), dtype=bool)
    top = int(max(int(docs.max()), int(sorted_docs[-1]))) + 1
    if top <= TABLE_LIMIT:
        table = np.zeros(top, dtype=bool)
        table[sorted_docs] = True
        return table[docs]
    at = np.minimum(np.searchsorted(sorted_docs, docs), len(sorted_docs) - 1)
    return sorted_docs[at] == docs

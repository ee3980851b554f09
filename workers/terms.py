"""Search terms: the one normalisation that indexing and queries share (DESIGN §6).

    words("Hydro-Québec Inc.")        → ["hydro", "quebec"]          casefold, accents stripped, suffixes dropped
    name_keys("Hydro-Québec Inc.")    → ["hydro", "quebec", "hydroquebec"]
    Term.parse('"HYDRO QUÉBEC"')      → joined "hydroquebec", words ("hydro", "quebec")
    quoted(["amazon", "hydro quebec"]) → 'amazon "hydro quebec"'  (terms shown as one would type them again)

Rules:

- Text is casefolded and accents are stripped (as `workers.normalize.fold` does); letters of every script are kept, so
  a query in Cyrillic or Chinese works; anything that is not a letter or digit separates words. Dotted
  acronyms collapse first (`S.E.N.C.` → `senc`, `U.S.` → `us`).
- Corporate suffixes (inc, ltd, ltée, llc, ulc, corp, s.e.n.c., …) are never indexed and are dropped from
  query terms, so `Amazon Inc` matches `Amazon`.
- A few English and French stop words are not indexed as words of free text ("the", "de", "of", …); inside a
  name they still count for its joined key (`Bank of Canada` → `bankofcanada`).
- A name (organisation, registrant, lobbyist, institution, official, subject) is indexed by its words AND by
  its joined key (its words without spaces), so `hydro-quebec`, `Hydro Québec`, `HYDRO-QUÉBEC` and
  `HydroQuébec` all match. Free text (title, summary) is indexed by its words and by the joined key of each
  hyphenated compound.
- A query term matches a record that has its joined key, or that has all its words.

How it fails: never on input; text that holds no word (punctuation, emoji, stop words only) gives `[]`, and
`Term.parse` then returns a term whose `empty` is true.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

MAX_TOKEN = 80  # longer tokens are cut, so no key grows without bound

SUFFIXES = frozenset({
    "inc", "incorporated", "incorporee", "ltd", "limited", "ltee", "limitee", "llc", "ulc", "corp", "corporation",
    "co", "plc", "llp", "lp", "senc", "sencrl", "srl", "gmbh", "sa", "sas", "sarl", "ag", "bv", "nv", "pty",
})
STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of", "on", "or", "the",
    "to", "was", "with", "au", "aux", "avec", "ce", "ces", "d", "dans", "de", "des", "du", "en", "et", "l", "la",
    "le", "les", "par", "pour", "qu", "que", "qui", "s", "sur", "un", "une",
})

_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_ACRONYM = re.compile(r"(?<!\w)(?:\w\.){2,}", re.UNICODE)
_SPLIT = re.compile(r"[\W_]+", re.UNICODE)
_COMPOUND = re.compile(r"\w+(?:[-‐‑–]\w+)+", re.UNICODE)


def _fold(text: str) -> str:
    """`workers.normalize.fold`, faster: one regex pass removes the combining marks NFKD split off."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return _COMBINING.sub("", decomposed.encode("utf-8", "ignore").decode("utf-8"))


def _clean(text: str) -> str:
    """Folded text with surrogates and other unencodable code points removed (they cannot go to Redis)."""
    folded = _fold(text)
    return _ACRONYM.sub(lambda m: m.group(0).replace(".", ""), folded)


def tokens(text: str) -> list[str]:
    """Every word of `text`, folded, corporate suffixes dropped, stop words kept."""
    return [token[:MAX_TOKEN] for token in _SPLIT.split(_clean(text)) if token and token not in SUFFIXES]


def words(text: str) -> list[str]:
    """The indexed words of free text: `tokens` without stop words."""
    return [token for token in tokens(text) if token not in STOPWORDS]


def joined(parts: list[str]) -> str:
    return "".join(parts)[:MAX_TOKEN]


@lru_cache(maxsize=1 << 16)  # names repeat: the same organisations, people and institutions again and again
def name_keys(name: str) -> list[str]:
    """What a name is indexed under: its words and, for a name of several words, its joined key."""
    parts = tokens(name)
    keys = [part for part in parts if part not in STOPWORDS]
    if len(parts) > 1:
        keys.append(joined(parts))
    return keys


def text_keys(text: str) -> list[str]:
    """What free text is indexed under: its words and the joined key of each hyphenated compound.

    Works per whitespace-separated chunk (no word, acronym or compound spans whitespace), and chunks repeat
    across records ("Registrant:", names, subject labels), so each chunk is normalised once per process."""
    keys: list[str] = []
    for chunk in text.split():
        keys.extend(_chunk_keys(chunk))
    return keys


@lru_cache(maxsize=1 << 17)
def _chunk_keys(chunk: str) -> tuple[str, ...]:
    keys = words(chunk)
    for compound in _COMPOUND.findall(_clean(chunk)):
        parts = tokens(compound)
        if len(parts) > 1:
            keys.append(joined(parts))
    return tuple(keys)


@lru_cache(maxsize=1 << 16)
def name_key(name: str) -> str:
    """The key two spellings of one name share ('' when the name holds no word)."""
    return joined(tokens(name))


@dataclass(frozen=True)
class Term:
    """One query term: `raw` as typed, its joined key and its indexed words."""

    raw: str
    key: str
    words: tuple[str, ...]

    @classmethod
    def parse(cls, raw: str) -> Term:
        parts = tokens(raw)
        return cls(raw, joined(parts), tuple(dict.fromkeys(p for p in parts if p not in STOPWORDS)))

    @property
    def empty(self) -> bool:
        return not self.words

    def postings_keys(self) -> set[str]:
        return {self.key, *self.words}


def quoted(terms: Iterable[str]) -> str:
    """Terms as one would type them again: separated by spaces, a term that holds a space in double quotes."""
    return " ".join(f'"{term}"' if " " in term else term for term in terms)

"""Text and URL normalisation shared by dedupe, sources and (later) the search index.

`fold` casefolds and strips accents; `canonical_url` drops tracking parameters and fragments so one article
reached through two feeds has one URL; `normalised_title` drops a trailing " - Publisher" so a Google News copy
and the publisher's own item compare equal.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING_PARAMS = {"cmp", "fbclid", "gclid", "mc_cid", "mc_eid", "ocid", "ref", "taid", "igshid"}
# " - Publisher" at the end; the publisher itself may hold hyphens ("Radio-Canada.ca") but no " - ".
_PUBLISHER_SUFFIX = re.compile(r"\s+[-–—|]\s+(?:(?!\s[-–—|]\s).){2,60}$")
_NON_WORD = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Casefold and strip accents: 'Hydro-Québec' → 'hydro-quebec'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def canonical_url(url: str) -> str:
    """The URL without tracking parameters (`utm_*`, `?cmp=rss`, …) or fragment; scheme and host lower-cased."""
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith("utm_") and k.lower() not in _TRACKING_PARAMS]
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, urlencode(query), ""))


def normalised_title(title: str) -> str:
    """The title as cross-feed dedupe compares it: no trailing ' - Publisher', folded, punctuation gone."""
    bare = _PUBLISHER_SUFFIX.sub("", title.strip())
    return _NON_WORD.sub(" ", fold(bare)).strip()

"""The meaning of `/lobby …`, neutral of any platform (DESIGN §6): text in, an answer out.

    /lobby amazon "hydro quebec"        → a `Summary` (workers.query.search) for two terms
    /lobby                              → usage

Slack and Discord adapters pass the command's text to `parse_terms` and render the `Summary` they get back;
the CLI (`lobbybot search`) gets its terms from the shell already split and calls `workers.query` itself.

How it fails: `parse_terms` never raises: an unbalanced quote closes at the end of the text (`"hydro quebec`
is the one term `hydro quebec`). Bad queries raise `workers.query.QueryError` from `search`.
"""

from __future__ import annotations

import shlex
from datetime import date

from redis import Redis

from workers.query import Summary, search
from workers.settings import Settings

USAGE = 'usage: /lobby TERM… — each word is a term, quotes group words: /lobby amazon "hydro quebec"'


def parse_terms(text: str) -> list[str]:
    """Split command text into terms: whitespace separates, double quotes (straight, curly or « ») group.
    Apostrophes are text (`l'Agence` is one word)."""
    for quote in "“”«»":
        text = text.replace(quote, '"')
    if text.count('"') % 2:  # an unbalanced quote closes at the end of the text
        text += '"'
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.quotes = '"'
    lexer.escape = ""  # a backslash is text, not an escape
    terms = list(lexer)
    return [term.strip() for term in terms if term.strip()]


def lobby(redis: Redis, settings: Settings, text: str, *, since: date | None = None,
          source: str | None = None) -> Summary:
    """Answer `/lobby text`. Raises `workers.query.QueryError` (its message is for the user) on bad input."""
    return search(redis, settings, parse_terms(text), since=since, source=source)

"""The `feeds` source: RSS 2.0, Atom and Google News search feeds (registries.md §5).

Endpoints are the URLs of `LOBBYBOT_FEEDS` plus one Google News search feed per term of
`LOBBYBOT_NEWS_TERMS` and locale of `LOBBYBOT_NEWS_LOCALES` (fr-CA and en-CA by default). Each is fetched with
httpx (timeout, redirects, User-Agent) and a conditional GET, so an unchanged feed costs one 304, then parsed
by feedparser from bytes (feedparser's own fetching has no timeout).

How it fails: a 403 or a challenge page makes the endpoint `blocked`; timeouts, 5xx, 429 and a body that is no
feed at all make it `failing` with backoff; a malformed (bozo) feed that still has entries is read, and its
unusable entries (no title, no link) are skipped and counted. One bad feed never stops the others.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import feedparser
import httpx

from workers.errors import BlockedSourceError, SourceError, TransientSourceError
from workers.events import Event, Language
from workers.health import SourceState, utcnow
from workers.normalize import canonical_url
from workers.settings import FeedConfig, Settings
from workers.sources import PollResult
from workers.sources.http import check_status, conditional_headers, is_challenge, transport_error

# Stop fetching more endpoints after this long, so a poll finishes well inside Heroku's 30 s SIGTERM window;
# the endpoints not reached stay due and the job enqueues a follow-up.
TIME_BUDGET_SECONDS = 20.0

_HEADER_COMPLAINTS = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _digest(text: str, length: int = 16) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


def google_news_url(base: str, term: str, locale: str) -> str:
    language, _, country = locale.partition("-")
    return f"{base}?q={quote_plus(term)}&hl={locale}&gl={country}&ceid={country}:{language}"


@dataclass(frozen=True)
class FeedEndpoint:
    url: str
    name: str
    language: Language | None


def endpoints(settings: Settings) -> list[FeedEndpoint]:
    """Every feed to poll: configured feeds, then Google News searches for the configured terms."""
    found: dict[str, FeedEndpoint] = {}
    for feed in settings.feeds:
        found[feed.url] = FeedEndpoint(feed.url, feed.name or feed.url, _language(feed.language))
    for term in settings.news_terms:
        for locale in settings.news_locales:
            url = google_news_url(settings.google_news_url, term, locale)
            found[url] = FeedEndpoint(url, f"Google News {locale}: {term}", _language(locale))
    return list(found.values())


def _language(code: str | None) -> Language | None:
    if not code:
        return None
    return "fr" if code.lower().startswith("fr") else "en"


@dataclass
class ParsedFeed:
    events: list[Event]
    skipped: int
    malformed: str = ""


def parse_feed(content: bytes, *, url: str, content_type: str = "", language: Language | None = None,
               name: str = "") -> ParsedFeed:
    """Parse feed bytes into article events; raise `TransientSourceError` when it is no feed at all."""
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed: Any = feedparser.parse(content, response_headers=headers)
    # A missing or imprecise Content-Type is the server's sloppiness, not a malformed feed.
    # `version` and `bozo_exception` are absent (not empty) for an empty body or a well-formed non-feed.
    malformed = parsed.bozo and not isinstance(parsed.get("bozo_exception"), _HEADER_COMPLAINTS)
    if not parsed.entries and (malformed or not parsed.get("version")):
        looks_like_html = content.lstrip()[:1] == b"<" and b"<html" in content[:2048].lower()
        if looks_like_html:
            what = "an HTML page"
        elif not content.strip():
            what = "empty"
        elif malformed:
            what = f"unreadable ({type(parsed.bozo_exception).__name__})"
        else:
            what = "neither RSS nor Atom"
        raise TransientSourceError(f"not a feed: the body is {what}",
                                   action=f"Check that {url} still serves RSS or Atom; fix LOBBYBOT_FEEDS.")
    feed_language = language or _language(parsed.feed.get("language"))
    publisher = parsed.feed.get("title", "") or name
    events: list[Event] = []
    skipped = 0
    for entry in parsed.entries:
        event = _article(entry, feed_language or "en", publisher)
        if event is None:
            skipped += 1
        else:
            events.append(event)
    note = str(parsed.bozo_exception).splitlines()[0][:200] if malformed else ""
    return ParsedFeed(events, skipped, note)


def _article(entry: Any, language: Language, publisher: str) -> Event | None:
    title = _plain(entry.get("title", ""))
    link = entry.get("link", "")
    if not title or not link:
        return None
    guid = entry.get("id") or ""
    key = canonical_url(guid) if guid.startswith(("http://", "https://")) else guid
    key = key or canonical_url(link)
    summary = _plain(entry.get("summary", ""))[:600]
    if summary.startswith(title):  # Google News repeats "title publisher" as the description
        summary = ""
    source = entry.get("source") or {}
    if not source.get("title") and publisher.endswith("Google News") and " - " in title:
        publisher = title.rsplit(" - ", 1)[1]
    # Plain dict reads: feedparser's own `entry["updated_parsed"]` falls back to `published_parsed` with a
    # DeprecationWarning when a feed has an unreadable <pubDate> and no <updated>.
    struct = dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
    published = datetime.fromtimestamp(calendar.timegm(struct), UTC) if struct else None
    return Event(
        id=f"news:{_digest(key)}",
        version=_digest(f"{title}\n{summary}", 12),
        source="news",
        kind="article",
        title=title,
        summary=summary,
        url=canonical_url(link),
        language=_language(entry.get("language")) or language,
        published_at=published,
        occurred_at=published,
        publisher=source.get("title", "") or publisher,
    )


def _plain(text: str) -> str:
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()


def fetch(http: httpx.Client, url: str, *, etag: str | None, last_modified: str | None) -> httpx.Response:
    """GET with conditional headers; map refusals and errors to `SourceError`. A 304 is returned as is."""
    try:
        response = http.get(url, headers=conditional_headers(etag, last_modified), follow_redirects=True)
    except httpx.HTTPError as exc:
        raise transport_error(exc) from None
    if response.status_code in (200, 403, 503) and is_challenge(response.content[:4096], response.headers):
        raise BlockedSourceError("the site answered with a bot challenge page", status=response.status_code,
                                 action="Open the feed in a browser; ask the site to allow lobbybot.")
    check_status(response, blocked_action="Open the feed in a browser; if it works there, the site blocks bots.",
                 gone_action="Fix or remove this URL in LOBBYBOT_FEEDS.")
    return response


class FeedsSource:
    name = "feeds"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.skipped = 0  # entries skipped by the last `load()`

    def poll(self, state: SourceState, http: httpx.Client) -> PollResult:
        result = PollResult(state=state)
        configured = endpoints(self.settings)
        if not configured:
            state.endpoints.clear()
            state.status, state.reason = "not_configured", "no feeds or news terms configured"
            state.action = "Set LOBBYBOT_FEEDS (JSON list of feed URLs) or LOBBYBOT_NEWS_TERMS."
            return result
        for gone in set(state.endpoints) - {e.url for e in configured}:
            del state.endpoints[gone]
        started = time.monotonic()
        for endpoint in configured:
            now = utcnow()
            current = state.endpoint(endpoint.url)
            if not current.due(now):
                continue
            if time.monotonic() - started > TIME_BUDGET_SECONDS:
                result.more = True
                break
            try:
                response = fetch(http, endpoint.url, etag=current.etag, last_modified=current.last_modified)
                result.fetched += 1
                if response.status_code == 304:
                    result.not_modified += 1
                    current.succeeded(now)
                    continue
                parsed = parse_feed(response.content, url=str(response.url), name=endpoint.name,
                                    content_type=response.headers.get("content-type", ""),
                                    language=endpoint.language)
            except SourceError as error:
                current.failed(error, now, max_failures=self.settings.max_failures)
                continue
            result.batches[endpoint.url] = parsed.events
            result.skipped += parsed.skipped
            note = f"malformed feed read anyway: {parsed.malformed}" if parsed.malformed else ""
            current.succeeded(now, skipped=parsed.skipped, etag=response.headers.get("etag"),
                              last_modified=response.headers.get("last-modified"), reason=note)
        state.roll_up()
        return result

    def load(self, path: Path) -> Iterator[Event]:
        parsed = parse_feed(path.read_bytes(), url=path.resolve().as_uri(), name=path.name)
        self.skipped = parsed.skipped
        yield from parsed.events


__all__ = ["FeedConfig", "FeedsSource", "endpoints", "parse_feed"]

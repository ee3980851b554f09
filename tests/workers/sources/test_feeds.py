"""The feeds source (RSS 2.0, Atom, Google News) polled from a feed server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import rq
from redis import Redis

from tests.records import source_state
from tests.wire import FeedServer, payload
from workers.events import Event
from workers.health import SourceState, StateStore
from workers.jobs import http_client, poll_source
from workers.settings import Settings
from workers.sources import PollResult
from workers.sources.feeds import FeedsSource, google_news_url
from workers.store import EventStore

MakeSettings = Callable[..., Settings]


def poll(settings: Settings, state: SourceState | None = None) -> PollResult:
    """One poll of the feeds source, with the HTTP client the job uses."""
    with http_client(settings) as http:
        return FeedsSource(settings).poll(state or SourceState(name="feeds"), http)


def events_of(result: PollResult, url: str | None = None) -> list[Event]:
    """The events a poll read (from one endpoint when `url` is given); batches may be lazy iterators."""
    if url is not None:
        return list(result.batches[url])
    return [event for batch in result.batches.values() for event in batch]


def saved_state(redis: Redis, settings: Settings) -> SourceState:
    return source_state(redis, settings, "feeds")


def save_state(redis: Redis, settings: Settings, state: SourceState) -> None:
    StateStore(redis, settings.redis_prefix).save(state)


def with_new_item(body: bytes, title: str, slug: str) -> bytes:
    """The RSS `body` with one more item on top, as a feed looks after a publisher posts an article."""
    item = (
        f"<item>\n      <title><![CDATA[{title}]]></title>\n"
        f"      <link>https://www.cbc.ca/news/politics/{slug}?cmp=rss</link>\n"
        f'      <guid isPermaLink="false">{slug}</guid>\n'
        f"      <pubDate>Wed, 23 Sep 2026 16:00:00 EDT</pubDate>\n"
        f"      <description><![CDATA[<p>{title}.</p>]]></description>\n    </item>\n    "
    )
    assert b"<item>" in body
    return body.replace(b"<item>", item.encode() + b"<item>", 1)


def deliver_queue(redis: Redis) -> rq.Queue:
    return rq.Queue("deliver", connection=redis)


# --- parsing -----------------------------------------------------------------------------------------------


def test_rss2_items_become_article_events(feed_server: FeedServer, make_settings: MakeSettings) -> None:
    """RSS 2.0 items become news events with a canonical link (no ?cmp=rss) and a UTC publication time."""
    url = feed_server.serve("/lineup/politics.xml", payload("rss_cbc_politics.xml"))
    result = poll(make_settings(feeds=[url]))
    events = events_of(result, url)
    assert [e.title for e in events] == [
        "Lobbying commissioner opens review of pipeline meetings",
        "Treasury Board officials met tech firms 40 times this year",
    ]
    first = events[0]
    assert first.id.startswith("news:")
    assert first.source == "news"
    assert first.kind == "article"
    assert first.url == "https://www.cbc.ca/news/politics/lobbying-commissioner-pipeline-review-1.7311234"
    assert "cmp=" not in events[1].url
    assert first.published_at == datetime(2026, 9, 22, 18, 35, tzinfo=UTC)  # 14:35 EDT
    assert first.language == "en"
    assert first.publisher == "CBC | Politics News"
    assert "commissioner says the meetings" in first.summary
    assert "<p>" not in first.summary
    assert len({e.id for e in events}) == 2
    assert result.state.endpoints[url].status == "ok"


def test_atom_entries_become_article_events(feed_server: FeedServer, make_settings: MakeSettings) -> None:
    """Atom entries become events; offsets are converted to UTC and `updated` stands in for a missing `published`."""
    url = feed_server.serve("/atom.xml", payload("atom_small.xml"), content_type="application/atom+xml")
    events = events_of(poll(make_settings(feeds=[url])), url)
    assert [(e.title, e.url, e.published_at) for e in events] == [
        ("Grocery chains step up lobbying on food prices",
         "https://lobbymonitor.example.org/2026/09/grocery-chains-lobbying",
         datetime(2026, 9, 20, 6, 30, tzinfo=UTC)),
        ("Airlines register new consultants ahead of passenger rights bill",
         "https://lobbymonitor.example.org/2026/09/airlines-consultants",
         datetime(2026, 9, 18, 17, 45, tzinfo=UTC)),
    ]
    assert all(e.id.startswith("news:") for e in events)
    assert events[1].summary == "Two firms filed registrations on behalf of carriers."


def test_google_news_items_take_publisher_from_source(feed_server: FeedServer, make_settings: MakeSettings) -> None:
    """A Google News item's publisher is its <source>, not the feed's title; the fr-CA search is French."""
    url = feed_server.serve("/rss/search/fr", payload("google_news_fr.xml"))
    events = events_of(poll(make_settings(feeds=[url])), url)
    assert [(e.publisher, e.language) for e in events] == [("La Presse", "fr"), ("Radio-Canada.ca", "fr")]
    assert events[0].published_at == datetime(2026, 9, 23, 12, 4, tzinfo=UTC)
    assert events[0].id.startswith("news:")
    assert events[0].title.startswith("Hydro-Québec multiplie les rencontres")


def test_fr_ca_feed_is_french_and_links_lose_tracking(feed_server: FeedServer, make_settings: MakeSettings) -> None:
    """A feed declaring fr-CA yields French events; utm_* parameters and fragments leave the link."""
    url = feed_server.serve("/rss/politique.xml", payload("rss_ledevoir_fr.xml"))
    [event] = events_of(poll(make_settings(feeds=[url])), url)
    assert event.language == "fr"
    assert event.url == "https://www.ledevoir.com/politique/quebec/812345/hydro-quebec-mandat-lobbyisme"
    assert event.published_at == datetime(2026, 9, 23, 13, 15, tzinfo=UTC)
    assert event.title == "Hydro-Québec ciblée par un nouveau mandat de lobbyisme"


def test_configured_language_overrides_the_feed(feed_server: FeedServer, make_settings: MakeSettings) -> None:
    """A feed configured with "language": "fr" is French even when the feed says en."""
    url = feed_server.serve("/bilingual.xml", payload("rss_cbc_politics.xml"))
    events = events_of(poll(make_settings(feeds=[{"url": url, "name": "CBC", "language": "fr"}])), url)
    assert {e.language for e in events} == {"fr"}


# --- politeness --------------------------------------------------------------------------------------------


def test_second_poll_is_conditional_and_yields_nothing(feed_server: FeedServer, make_settings: MakeSettings) -> None:
    """An unchanged feed is re-polled with If-None-Match, answered 304, and yields no events."""
    url = feed_server.serve("/lineup/politics.xml", payload("rss_cbc_politics.xml"))
    settings = make_settings(feeds=[url])
    first = poll(settings)
    etag = first.state.endpoints[url].etag
    assert etag
    assert len(events_of(first)) == 2
    second = poll(settings, first.state)
    hits = feed_server.hits("/lineup/politics.xml")
    assert len(hits) == 2
    assert "if-none-match" not in hits[0].headers
    assert hits[1].headers["if-none-match"] == etag
    assert second.not_modified == 1
    assert events_of(second) == []
    assert second.state.endpoints[url].status == "ok"


def test_last_modified_is_sent_back(feed_server: FeedServer, make_settings: MakeSettings) -> None:
    """A feed that sends Last-Modified (and no ETag) is re-polled with If-Modified-Since."""
    stamp = "Wed, 23 Sep 2026 14:00:00 GMT"
    url = feed_server.serve("/lm.xml", payload("rss_cbc_politics.xml"), etag=False, headers={"Last-Modified": stamp})
    settings = make_settings(feeds=[url])
    poll(settings, poll(settings).state)
    hits = feed_server.hits("/lm.xml")
    assert "if-modified-since" not in hits[0].headers
    assert hits[1].headers["if-modified-since"] == stamp


def test_user_agent_names_lobbybot(feed_server: FeedServer, make_settings: MakeSettings) -> None:
    """Feeds are fetched with a descriptive User-Agent starting with lobbybot/ and carrying the contact."""
    url = feed_server.serve("/lineup/politics.xml", payload("rss_cbc_politics.xml"))
    make_settings(feeds=[url], contact="ops@example.org")
    poll_source("feeds")
    [hit] = feed_server.hits("/lineup/politics.xml")
    assert hit.headers["user-agent"].startswith("lobbybot/")
    assert "ops@example.org" in hit.headers["user-agent"]


def test_google_news_searches_per_term_and_locale(feed_server: FeedServer, make_settings: MakeSettings) -> None:
    """Each news term is searched in fr-CA and en-CA, with hl, gl and ceid consistent with the locale."""
    base = feed_server.url("/rss/search")
    terms = ["Hydro-Québec", "Amazon Web Services"]
    bodies = {"fr-CA": payload("google_news_fr.xml"), "en-CA": payload("google_news_en.xml")}
    for term in terms:
        for locale, body in bodies.items():
            feed_server.serve(httpx.URL(google_news_url(base, term, locale)).raw_path.decode(), body)
    result = poll(make_settings(news_terms=terms, google_news_url=base))
    searched = set()
    for seen in feed_server.requests:
        parts = urlsplit(seen.path)
        assert parts.path == "/rss/search"
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        assert set(query) == {"q", "hl", "gl", "ceid"}
        language, country = query["hl"].split("-")
        assert query["gl"] == country
        assert query["ceid"] == f"{country}:{language}"
        searched.add((query["q"], query["hl"]))
    assert searched == {(term, locale) for term in terms for locale in ("fr-CA", "en-CA")}
    assert len(feed_server.requests) == 4
    assert {e.status for e in result.state.endpoints.values()} == {"ok"}
    languages = {e.language for batch in result.batches.values() for e in batch}
    assert languages == {"fr", "en"}


# --- bad input ---------------------------------------------------------------------------------------------


def test_bozo_feed_yields_good_entries_and_counts_skipped(feed_server: FeedServer, make_settings: MakeSettings) -> None:
    """A malformed feed is read anyway: good entries come through, the unusable one is skipped and counted."""
    body = payload("rss_bozo_ampersand.xml")
    url = feed_server.serve("/qpb.xml", body)
    settings = make_settings(feeds=[url])
    result = poll(settings)
    assert [e.title for e in events_of(result, url)] == [
        "Bell & Rogers lobby Ottawa on spectrum auction rules",
        "Pharmacies & insurers meet Health Canada officials",
    ]
    endpoint = result.state.endpoints[url]
    assert endpoint.status == "ok"
    assert (endpoint.skipped_last, endpoint.skipped_total) == (1, 1)
    assert result.skipped == 1
    assert "malformed" in endpoint.reason
    assert result.state.skipped_total == 1
    # the feed changes, still with its unusable entry: the count goes on
    feed_server.serve("/qpb.xml", body.replace(b"Both carriers", b"Both national carriers"))
    again = poll(settings, result.state)
    endpoint = again.state.endpoints[url]
    assert (endpoint.skipped_last, endpoint.skipped_total) == (1, 2)
    assert again.state.skipped_total == 2


def test_entry_without_link_is_skipped_in_a_well_formed_feed(
    feed_server: FeedServer, make_settings: MakeSettings
) -> None:
    """An entry with no link is skipped and counted; a well-formed feed is not called malformed."""
    url = feed_server.serve("/hilltimes.xml", payload("rss_entry_without_link.xml"))
    result = poll(make_settings(feeds=[url]))
    assert [e.title for e in events_of(result, url)] == ["Registry shows record month for consultant lobbyists"]
    endpoint = result.state.endpoints[url]
    assert (endpoint.status, endpoint.skipped_last) == ("ok", 1)
    assert "malformed" not in endpoint.reason


def test_item_with_an_unreadable_date_is_kept_undated(feed_server: FeedServer, make_settings: MakeSettings) -> None:
    """An item whose <pubDate> is empty or not a date is still an alert, without a date (and no warning)."""
    body = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Hill</title><link>https://hill.example/</link>'
            b"<item><title>Lobbyist registry opens consultation on new rules</title>"
            b"<link>https://hill.example/a</link><pubDate></pubDate></item>"
            b"<item><title>Treasury Board meets cloud vendors again this spring</title>"
            b"<link>https://hill.example/b</link><pubDate>not a date</pubDate></item></channel></rss>")
    url = feed_server.serve("/hill.xml", body)
    events = events_of(poll(make_settings(feeds=[url])), url)
    assert [(e.title[:9], e.published_at) for e in events] == [("Lobbyist ", None), ("Treasury ", None)]


def test_html_page_fails_that_feed_and_others_are_still_ingested(
    redis: Redis, feed_server: FeedServer, make_settings: MakeSettings
) -> None:
    """An HTML page instead of a feed makes that endpoint failing ('not a feed'); the other feeds are ingested."""
    html = feed_server.serve("/politics", payload("html_page.html"), content_type="text/html; charset=utf-8")
    good = feed_server.serve("/atom.xml", payload("atom_small.xml"), content_type="application/atom+xml")
    settings = make_settings(feeds=[html, good])
    summary = poll_source("feeds")
    state = saved_state(redis, settings)
    broken = state.endpoints[html]
    assert broken.status == "failing"
    assert "not a feed" in broken.reason
    assert "HTML" in broken.reason
    assert broken.action
    assert broken.retry_at is not None
    assert state.endpoints[good].status == "ok"
    assert state.status == "failing"
    assert html in state.reason
    assert summary["new"] == 2
    assert summary["status"] == "failing"
    stored = EventStore(redis, settings.redis_prefix)
    event_ids = [key.decode().rsplit("event:", 1)[1] for key in redis.scan_iter(f"{settings.redis_prefix}event:*")]
    assert sorted(e.title for e in stored.get_many(event_ids) if e) == [
        "Airlines register new consultants ahead of passenger rights bill",
        "Grocery chains step up lobbying on food prices",
    ]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/rss+xml"),
        (b'<?xml version="1.0"?><error><code>NoSuchKey</code><message>Not found</message></error>',
         "application/xml"),
    ],
    ids=["empty-body", "xml-error-document"],
)
def test_body_that_is_no_feed_is_failing_not_empty(
    feed_server: FeedServer, make_settings: MakeSettings, body: bytes, content_type: str
) -> None:
    """A 200 whose body is empty or XML that is neither RSS nor Atom is a failing feed, never 'no new items'."""
    url = feed_server.serve("/feed", body, content_type=content_type)
    result = poll(make_settings(feeds=[url]))
    endpoint = result.state.endpoints[url]
    assert endpoint.status == "failing"
    assert "not a feed" in endpoint.reason
    assert endpoint.last_success is None
    assert url not in result.batches


# --- refusals and failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [(403, b"<html><body><h1>403 Forbidden</h1></body></html>"), (200, None), (503, None)],
    ids=["http-403", "challenge-200", "challenge-503"],
)
def test_refusal_or_challenge_page_is_blocked(
    feed_server: FeedServer, make_settings: MakeSettings, status: int, body: bytes | None
) -> None:
    """A 403 or a Cloudflare 'Just a moment...' challenge page makes the feed `blocked`, with an action."""
    url = feed_server.serve("/guarded.xml", body if body is not None else payload("cf_challenge.html"),
                            status=status, content_type="text/html; charset=UTF-8")
    result = poll(make_settings(feeds=[url]))
    endpoint = result.state.endpoints[url]
    assert endpoint.status == "blocked"
    assert endpoint.reason
    assert endpoint.action
    assert result.state.status == "blocked"
    assert events_of(result) == []


def test_rate_limit_honours_retry_after(feed_server: FeedServer, make_settings: MakeSettings) -> None:
    """A 429 with Retry-After: 3600 makes the feed failing and it is not fetched again for an hour."""
    url = feed_server.serve("/busy.xml", b"Too Many Requests", status=429, headers={"Retry-After": "3600"},
                            content_type="text/plain")
    settings = make_settings(feeds=[url])
    before = datetime.now(UTC)
    result = poll(settings)
    endpoint = result.state.endpoints[url]
    assert endpoint.status == "failing"
    assert "429" in endpoint.reason
    assert endpoint.retry_at is not None
    assert endpoint.retry_at >= before + timedelta(hours=1)
    poll(settings, result.state)
    assert len(feed_server.hits("/busy.xml")) == 1


def test_server_errors_back_off_then_disable_until_reset(
    redis: Redis, feed_server: FeedServer, make_settings: MakeSettings
) -> None:
    """5xx: retried after 5, 10, 20 min; after LOBBYBOT_MAX_FAILURES it is disabled, and reset() re-enables it."""
    url = feed_server.serve("/flaky.xml", b"<h1>Internal Server Error</h1>", status=500, content_type="text/html")
    settings = make_settings(feeds=[url], max_failures=4)

    def poll_now() -> tuple[datetime, SourceState]:
        before = datetime.now(UTC)
        poll_source("feeds")
        return before, saved_state(redis, settings)

    def make_due(state: SourceState) -> None:
        state.endpoints[url].retry_at = datetime.now(UTC) - timedelta(seconds=1)
        save_state(redis, settings, state)

    for failures, minutes in ((1, 5), (2, 10), (3, 20)):
        before, state = poll_now()
        endpoint = state.endpoints[url]
        assert (endpoint.status, endpoint.failures) == ("failing", failures)
        assert "500" in endpoint.reason
        assert endpoint.retry_at is not None
        delay = endpoint.retry_at - before
        assert timedelta(minutes=minutes) <= delay <= timedelta(minutes=minutes, seconds=30)
        if failures == 1:  # not due yet: a poll now does not fetch it
            poll_source("feeds")
            assert len(feed_server.hits("/flaky.xml")) == 1
        make_due(state)
    assert len(feed_server.hits("/flaky.xml")) == 3

    _, state = poll_now()
    assert state.endpoints[url].status == "disabled"
    assert state.status == "disabled"
    assert "reset" in state.action
    assert len(feed_server.hits("/flaky.xml")) == 4
    make_due(state)
    poll_source("feeds")
    poll_source("feeds")
    assert len(feed_server.hits("/flaky.xml")) == 4
    assert saved_state(redis, settings).endpoints[url].status == "disabled"

    feed_server.serve("/flaky.xml", payload("rss_cbc_politics.xml"))
    state = saved_state(redis, settings)
    state.reset()
    save_state(redis, settings, state)
    summary = poll_source("feeds")
    assert len(feed_server.hits("/flaky.xml")) == 5
    endpoint = saved_state(redis, settings).endpoints[url]
    assert (endpoint.status, endpoint.failures) == ("ok", 0)
    assert summary["new"] == 2


def test_no_feeds_configured_is_not_configured(make_settings: MakeSettings) -> None:
    """With no feeds and no news terms the source says `not_configured` and how to configure it."""
    result = poll(make_settings())
    assert result.state.status == "not_configured"
    assert "LOBBYBOT_FEEDS" in result.state.action
    assert events_of(result) == []
    assert result.fetched == 0


# --- through the poll job: baseline, alerts --------------------------------------------------------------


def test_first_poll_is_a_silent_baseline_then_new_items_alert(
    redis: Redis, feed_server: FeedServer, make_settings: MakeSettings
) -> None:
    """The first poll records every item and alerts none; a later poll alerts only the item that appeared."""
    body = payload("rss_cbc_politics.xml")
    url = feed_server.serve("/lineup/politics.xml", body)
    settings = make_settings(feeds=[url])

    first = poll_source("feeds")
    assert first["alerted"] == 0
    assert first["baseline"] == 2
    assert first["new"] == 2
    assert deliver_queue(redis).count == 0
    stored = [key for key in redis.scan_iter(f"{settings.redis_prefix}event:*")]
    assert len(stored) == 2

    unchanged = poll_source("feeds")
    assert (unchanged["not_modified"], unchanged["alerted"]) == (1, 0)

    title = "Ethics committee summons lobbyists for wind-power contracts"
    feed_server.serve("/lineup/politics.xml", with_new_item(body, title, "ethics-wind-1.7312001"))
    second = poll_source("feeds")
    assert second["alerted"] == 1
    assert second["new"] == 1
    assert second["duplicate"] == 2
    assert second["baseline"] == 0
    queue = deliver_queue(redis)
    assert queue.count == 1
    [job] = queue.get_jobs()
    [[event_id, _version, verdict, _changes]] = job.args[1]
    assert verdict == "new"
    event = EventStore(redis, settings.redis_prefix).get(event_id)
    assert event is not None
    assert event.title == title


def test_feed_added_later_gets_its_own_silent_baseline(
    redis: Redis, feed_server: FeedServer, make_settings: MakeSettings
) -> None:
    """A feed added to the config later is recorded silently while the feeds already polled keep alerting."""
    cbc_body = payload("rss_cbc_politics.xml")
    cbc = feed_server.serve("/lineup/politics.xml", cbc_body)
    make_settings(feeds=[cbc])
    assert poll_source("feeds")["baseline"] == 2

    atom = feed_server.serve("/atom.xml", payload("atom_small.xml"), content_type="application/atom+xml")
    feed_server.serve("/lineup/politics.xml",
                      with_new_item(cbc_body, "Senators question lobbying by defence contractors", "defence-1.73"))
    make_settings(feeds=[cbc, atom])
    summary = poll_source("feeds")
    assert summary["alerted"] == 1
    assert summary["baseline"] == 2
    assert summary["new"] == 3
    assert deliver_queue(redis).count == 1

    atom_body = payload("atom_small.xml").replace(
        b"<entry>",
        b"<entry>\n    <title>Pharma lobby registers for drug pricing talks</title>\n"
        b'    <link rel="alternate" href="https://lobbymonitor.example.org/2026/09/pharma"/>\n'
        b"    <id>tag:lobbymonitor.example.org,2026:post-482</id>\n"
        b"    <updated>2026-09-23T10:00:00Z</updated>\n  </entry>\n  <entry>",
        1,
    )
    feed_server.serve("/atom.xml", atom_body, content_type="application/atom+xml")
    third = poll_source("feeds")
    assert third["alerted"] == 1
    assert third["baseline"] == 0
    assert deliver_queue(redis).count == 2

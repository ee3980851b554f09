"""Garbage from sources (hypothesis): fuzzed feed items and whole feed bodies, LDA filing pages and federal
registry rows never crash a poll or an import; malformed entries are counted as `skipped` (in the source's
health for a poll) and everything well-formed beside them is ingested."""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis

from tests.ocl_exports import communications_zip, official, report
from tests.wire import FeedServer
from workers.errors import SourceError
from workers.health import StateStore
from workers.ingest import ingest
from workers.jobs import poll_source
from workers.sources.lda import LdaSource
from workers.sources.ocl import OclSource

pytestmark = pytest.mark.faults
FUZZ = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# Text a feed can carry: any character XML 1.0 allows (no surrogates, no control characters).
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=60)
PAYLOADS = Path(__file__).parent.parent / "payloads"


def item(title: str | None, link: str | None, date: str, body: str) -> str:
    parts = [f"<title>{escape(title)}</title>" if title is not None else "",
             f"<link>{escape(link)}</link><guid>{escape(link)}</guid>" if link is not None else "",
             f"<pubDate>{escape(date)}</pubDate>", f"<description>{escape(body)}</description>"]
    return "<item>" + "".join(parts) + "</item>"


@st.composite
def feeds(draw: st.DrawFn) -> tuple[str, int, int]:
    """An RSS document with `good` well-formed items (distinct titles and links) and `bad` items missing their
    title or link, shuffled, with fuzzed text, dates and descriptions everywhere."""
    good = draw(st.integers(0, 6))
    bad = draw(st.integers(0, 4))
    items = [item(f"Story {n} {draw(TEXT)}", f"https://news.example/{n}/{draw(st.uuids())}", draw(TEXT), draw(TEXT))
             for n in range(good)]
    items += [item(None, f"https://news.example/bad/{n}", draw(TEXT), draw(TEXT)) if draw(st.booleans())
              else item(draw(TEXT), None, draw(TEXT), draw(TEXT)) for n in range(bad)]
    items = draw(st.permutations(items))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{escape(draw(TEXT))}'
            f"</title><link>https://news.example/</link>{''.join(items)}</channel></rss>"), good, bad




@FUZZ
@given(feeds())
def test_fuzzed_feed_items_are_skipped_and_counted_the_rest_ingested(redis: Redis, make_settings,
                                                                     feed_server: FeedServer, doc) -> None:
    """A feed mixing good items with items lacking a title or link: the poll succeeds, the bad ones are counted
    as skipped in the source's health, every good one is recorded."""
    body, good, bad = doc
    redis.flushdb()
    make_settings(feeds=[feed_server.serve("/fuzz.xml", body)])

    summary = poll_source("feeds")

    state = StateStore(redis, "lobbybot:").load("feeds")
    assert state.status == "ok", state.reason
    assert summary["skipped"] == bad and state.skipped_total == bad
    assert summary["new"] + summary["duplicate"] == good  # a title that normalises like another is a copy
    assert summary["baseline"] == summary["new"]


@FUZZ
@given(st.binary(max_size=400) | TEXT.map(str.encode))
def test_fuzzed_feed_bodies_never_crash_a_poll(redis: Redis, make_settings, feed_server: FeedServer,
                                               body: bytes) -> None:
    """Any body at a feed URL (bytes, text, HTML): the poll ends, and the source's health says ok, or why not and
    what to do."""
    redis.flushdb()
    make_settings(feeds=[feed_server.serve("/garbage.xml", body)])

    poll_source("feeds")

    state = StateStore(redis, "lobbybot:").load("feeds")
    assert state.status in ("ok", "failing", "blocked")  # "cf-chl" in a body reads as a bot challenge: blocked
    assert state.status == "ok" or (state.reason and state.action)


FILING = json.loads((PAYLOADS / "lda_filings_page.json").read_text())["results"][0]
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                    max_leaves=8)


@st.composite
def filings(draw: st.DrawFn) -> tuple[list[object], int]:
    """An LDA page: well-formed filings (the recorded one with fuzzed names and distinct ids) and malformed
    ones (a JSON value that is no filing, or the filing without its registrant or client)."""
    good = []
    for n in range(draw(st.integers(0, 4))):
        filing = json.loads(json.dumps(FILING))
        filing["filing_uuid"] = str(draw(st.uuids()))
        filing["filing_period"] = f"period-{n}"
        filing["client"]["name"] = draw(TEXT)
        filing["registrant"]["name"] = draw(TEXT)
        good.append(filing)
    bad: list[object] = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            bad.append(draw(JSON.filter(lambda value: not isinstance(value, dict))))
        else:
            broken = json.loads(json.dumps(FILING))
            del broken[draw(st.sampled_from(["registrant", "client"]))]
            bad.append(broken)
    return draw(st.permutations(good + bad)), len(bad)


@FUZZ
@given(filings())
def test_fuzzed_lda_pages_skip_bad_filings_and_ingest_the_rest(redis: Redis, make_settings, tmp_path: Path,
                                                                page) -> None:
    """An LDA JSON page with malformed filings: the import counts them as skipped and ingests every other."""
    results, bad = page
    redis.flushdb()
    settings = make_settings()
    path = tmp_path / "page.json"
    path.write_text(json.dumps({"count": len(results), "next": None, "results": results}))
    source = LdaSource(settings)

    events = list(source.load(path))

    assert source.skipped == bad
    assert len(events) == len(results) - bad
    report_ = ingest(redis, settings, events, alert=False)
    assert report_.counts["new"] + report_.counts["updated"] + report_.counts["duplicate"] + \
        report_.counts["expired"] == len(events)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["id", "date", "ok"]), TEXT), min_size=1, max_size=8))
def test_fuzzed_registry_rows_are_skipped_and_counted(make_settings, tmp_path: Path, rows) -> None:
    """Federal registry rows with a garbage COMLOG_ID or date are skipped and counted; good rows become events."""
    reports, officials, bad = [], [], 0
    for n, (kind, text) in enumerate(rows):
        comlog = str(700000 + n)
        if kind == "id":
            comlog, bad = f"x{text}", bad + 1
            reports.append(report(comlog, org_en=f"Org {n}"))
        elif kind == "date":
            reports.append(report(comlog, org_en=f"Org {n}", comm_date=f"not a date {text}"))
            bad += 1
        else:
            reports.append(report(comlog, org_en=f"Org {n} {text}"))
        officials.append(official(comlog))
    path = tmp_path / "export.zip"
    path.write_bytes(communications_zip(reports=reports, officials=officials))
    source = OclSource(make_settings())

    try:
        events = list(source.load(path))
    except SourceError as exc:  # a whole file unreadable is reported, never a crash
        pytest.fail(f"the export was refused as a whole: {exc.reason}")

    assert source.skipped == bad
    assert len(events) == len(rows) - bad

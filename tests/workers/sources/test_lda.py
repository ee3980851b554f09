"""The `lda` source: the US Lobbying Disclosure Act REST API (registries.md §3), faked at the wire by a small
lda.gov stand-in on 127.0.0.1 that serves recorded, real-shaped DRF pages of filings (nested registrant, client
and lobbying activities) and records every request lobbybot sends."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import rq
from redis import Redis

from bot.cli import main
from tests.records import alerted_refs, by_id, load_saved, source_state, stored
from tests.wire import payload
from workers.events import Event
from workers.health import SourceState
from workers.jobs import poll_source
from workers.settings import Settings
from workers.sources import lda
from workers.sources.lda import LdaSource

MakeSettings = Callable[..., Settings]
FILINGS = "/api/v1/filings/"
API_KEY = "test-lda-key-not-real"
EASTERN = timezone(timedelta(hours=-5))
RECORDED = "lda_filings_page.json"  # a page of three filings: Q3 report, RR registration, 4T termination
Q3_UUID = "7c1f4e2a-9b3d-4f6e-8a21-5d0c3b9e7f14"
Q3_ID = "lda:filing:401108833-312845-2026-third_quarter"
NORTHWIND, CASCADIA = "NORTHWIND ENERGY CORP", "CASCADIA RAIL ALLIANCE"


# --- an lda.gov stand-in ------------------------------------------------------------------------------------


@dataclass
class Reply:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class Request:
    path: str
    headers: dict[str, str]

    @property
    def query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}


class LdaApi:
    """`https://lda.gov/api/v1/` on 127.0.0.1. A route is a path plus the query parameters it requires (`page`
    defaults to "1", as DRF reads it); the most specific matching route answers, from its replies in turn, the
    last one for every later request. Every request is recorded with its headers."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, dict[str, str], list[Reply]]] = []
        self.requests: list[Request] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen = Request(self.path, {key.lower(): value for key, value in self.headers.items()})
                api.requests.append(seen)
                reply = api.answer(seen)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def root(self) -> str:
        return f"{self.base_url}/api/v1/"

    def serve(self, path: str, *replies: Reply | bytes, **params: str) -> None:
        """Answer GET `path` (with at least `params` in its query) with `replies`, replacing an equal route."""
        self.routes = [route for route in self.routes if route[:2] != (path, params)]
        self.routes.append((path, params, [r if isinstance(r, Reply) else Reply(r) for r in replies]))

    def answer(self, seen: Request) -> Reply:
        query = {"page": "1", **seen.query}
        matching = [route for route in self.routes if route[0] == urlsplit(seen.path).path
                    and all(query.get(key) == value for key, value in route[1].items())]
        if not matching:
            return Reply(b'{"detail": "Not found."}', status=404)
        replies = max(matching, key=lambda route: len(route[1]))[2]
        return replies.pop(0) if len(replies) > 1 else replies[0]

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def api() -> Iterator[LdaApi]:
    server = LdaApi()
    yield server
    server.close()


# --- real-shaped filings and pages ---------------------------------------------------------------------------


def recorded_filings() -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = json.loads(payload(RECORDED))["results"]
    return results


def posted(days_ago: float, hour: int = 11, minute: int = 41) -> str:
    """A `dt_posted` value as the API writes it (US Eastern offset), `days_ago` days before today."""
    day = datetime.now(UTC).date() - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, minute, 27, tzinfo=EASTERN).isoformat()


def filing(uuid: str, *, filing_type: str = "Q3", display: str = "3rd Quarter - Report", year: int = 2026,
           period: str = "third_quarter", dt_posted: str | None = None, registrant: tuple[int, str] | None = None,
           client: tuple[int, str] | None = None, income: str | None = "50000.00",
           termination_date: str | None = None) -> dict[str, Any]:
    """The recorded Q3 report (real shape, nested objects and all) with the identifying fields replaced."""
    result = copy.deepcopy(recorded_filings()[0])
    result.update({
        "url": f"https://lda.gov/api/v1/filings/{uuid}/", "filing_uuid": uuid, "filing_type": filing_type,
        "filing_type_display": display, "filing_year": year, "filing_period": period,
        "filing_document_url": f"https://lda.gov/filings/public/filing/{uuid}/print/", "income": income,
        "dt_posted": dt_posted or posted(2), "termination_date": termination_date,
    })
    if registrant:
        result["registrant"].update(id=registrant[0], name=registrant[1],
                                    url=f"https://lda.gov/api/v1/registrants/{registrant[0]}/")
    if client:
        result["client"].update(id=client[0], client_id=client[0], name=client[1],
                                url=f"https://lda.gov/api/v1/clients/{client[0]}/")
    return result


def many_filings(count: int, first: int = 0, days_ago: float = 3) -> list[dict[str, Any]]:
    """`count` third-quarter reports of as many clients of one firm, posted in that order."""
    return [filing(f"00000000-0000-4000-8000-{first + i:012d}", client=(500000 + first + i, f"CLIENT {first + i} INC"),
                   dt_posted=posted(days_ago, hour=8 + (first + i) // 60, minute=(first + i) % 60))
            for i in range(count)]


def drf_page(results: list[Any], next_url: str | None = None, previous: str | None = None,
             count: int | None = None) -> bytes:
    return json.dumps({"count": len(results) if count is None else count, "next": next_url,
                       "previous": previous, "results": results}).encode()


def since(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).date().isoformat()


def page_url(api: LdaApi, number: int, **params: str) -> str:
    """The absolute `next`/`previous` URL the API writes: the request's own parameters with another page."""
    query = {"filing_dt_posted_after": since(lda.FIRST_POLL_DAYS), "ordering": "dt_posted", "page": number,
             "page_size": 25, **params}
    if number == 1:
        del query["page"]
    return f"{api.base_url}{FILINGS}?{urlencode(query)}"


def page_path(api: LdaApi, number: int, **params: str) -> str:
    return page_url(api, number, **params).removeprefix(api.base_url)


def serve_pages(api: LdaApi, pages: list[list[dict[str, Any]]], **params: str) -> None:
    """Serve `pages` of filings for the query `params`, each page's `next` pointing at the following one."""
    total = sum(len(results) for results in pages)
    for number, results in enumerate(pages, start=1):
        following = page_url(api, number + 1, **params) if number < len(pages) else None
        previous = page_url(api, number - 1, **params) if number > 1 else None
        api.serve(FILINGS, drf_page(results, following, previous, total), page=str(number), **params)


# --- helpers -----------------------------------------------------------------------------------------------


def lda_settings(make_settings: MakeSettings, api: LdaApi, **overrides: object) -> Settings:
    """Settings with the lda source on the stand-in; requests barely spaced unless a test says otherwise."""
    return make_settings(**{"sources": ["lda"], "lda_url": api.root, "lda_requests_per_minute": 6000, **overrides})


def poll_directly(source: LdaSource, state: SourceState) -> tuple[list[Event], bool, int]:
    """One poll without Redis: the events read, whether a follow-up should run, and the requests made."""
    with httpx.Client() as http:
        result = source.poll(state, http)
    return result.events, result.more, result.fetched


def load(settings: Settings, tmp_path: Path, data: bytes, name: str = "filings.json") -> tuple[list[Event], int]:
    return load_saved(LdaSource(settings), tmp_path, data, name)


def saved_state(redis: Redis, settings: Settings) -> SourceState:
    return source_state(redis, settings, "lda")


def counts(summary: dict[str, Any]) -> tuple[int, int, int, int]:
    return summary["new"], summary["updated"], summary["duplicate"], summary["alerted"]


# --- parsing -----------------------------------------------------------------------------------------------


def test_a_filing_becomes_an_event_with_nested_lobbyists_entities_issues_and_income(
        make_settings: MakeSettings, tmp_path: Path) -> None:
    """A quarterly report names its client and registrant, lists the lobbyists nested in its activities (each
    once), the government entities as institutions, the issues as subjects and the income in dollars, links the
    printable filing and is dated by its posting time in UTC."""
    events = by_id(load(make_settings(), tmp_path, payload(RECORDED))[0])

    report = events[Q3_ID]
    assert (report.source, report.kind, report.language, report.version) == ("lda", "filing", "en", Q3_UUID)
    assert (report.organization, report.registrant) == (NORTHWIND, "CAPITOL BRIDGE STRATEGIES LLC")
    assert report.lobbyists == ("Jane Q. Doe", "Mark Rivera", "Alicia Chen")
    assert [name.casefold() for name in report.institutions] == [
        "house of representatives", "senate", "energy, dept of", "environmental protection agency (epa)",
        "treasury, dept of"]
    assert report.subjects == ("Energy/Nuclear", "Taxation/Internal Revenue Code")
    assert "NORTHWIND ENERGY CORP via CAPITOL BRIDGE STRATEGIES LLC" in report.title
    assert "3rd Quarter - Report 2026" in report.title and "$50,000" in report.title
    assert "Mark Rivera" in report.summary and "Energy/Nuclear" in report.summary
    assert report.url == f"https://lda.gov/filings/public/filing/{Q3_UUID}/print/"
    assert report.published_at == datetime(2026, 10, 20, 20, 5, 11, 387541, tzinfo=UTC)
    assert report.published_at is not None and report.published_at.utcoffset() == timedelta(0)
    assert report.status == "active"


def test_agency_names_keep_their_acronyms(make_settings: MakeSettings, tmp_path: Path) -> None:
    """Mixed-case agency names are shown as the registry writes them ("Environmental Protection Agency (EPA)",
    "Transportation, Dept of (DOT)"), not re-cased into "(Epa)"; only all-capitals names are softened."""
    events = load(make_settings(), tmp_path, payload(RECORDED))[0]

    institutions = {name for event in events for name in event.institutions}
    assert {"Environmental Protection Agency (EPA)", "Transportation, Dept of (DOT)", "Agriculture, Dept of (USDA)",
            "Energy, Dept of", "Senate"} <= institutions
    assert not any(name.endswith(("(Epa)", "(Dot)", "(Usda)")) for name in institutions)


def test_registrations_terminations_and_amendments_are_told_apart(make_settings: MakeSettings,
                                                                  tmp_path: Path) -> None:
    """A registration (RR) reads as one and stays active; a termination (4T) is terminated on its termination
    date; an amendment (3A) and a termination amendment (4@) say they amend an earlier filing."""
    amendments = [
        filing("a0000000-0000-4000-8000-000000000001", filing_type="3A", display="3rd Quarter - Amendment"),
        filing("a0000000-0000-4000-8000-000000000002", filing_type="4@", display="4th Quarter - Termination Amendment",
               period="fourth_quarter", client=(327166, "PRAIRIE SOYBEAN PROCESSORS ASSOCIATION"),
               termination_date="2026-11-06"),
    ]
    data = drf_page([*recorded_filings(), *amendments])

    events = load(make_settings(), tmp_path, data)[0]

    _, registration, termination, amended, termination_amended = events
    assert "Registration 2026" in registration.title and registration.status == "active"
    assert "Amendment" not in registration.summary
    assert termination.status == "terminated"
    assert termination.end_date == datetime(2026, 11, 6, tzinfo=UTC)
    assert "$10,000" in termination.title
    assert amended.summary.startswith("Amendment of an earlier filing")
    assert termination_amended.summary.startswith("Amendment of an earlier filing")
    assert termination_amended.status == "terminated"


def test_a_registration_and_the_report_for_its_quarter_are_two_records(
        redis: Redis, make_settings: MakeSettings, api: LdaApi) -> None:
    """A registration (filed in a quarter, so carrying that `filing_period`) and the client's report for the same
    quarter are two records, both new, not one updating the other; a registration amendment (RA) updates the
    registration."""
    firm, client = (401110476, "HARBORVIEW PUBLIC AFFAIRS"), (330917, CASCADIA)
    registration = filing("b0000000-0000-4000-8000-000000000001", filing_type="RR", display="Registration",
                          period="fourth_quarter", registrant=firm, client=client, income=None, dt_posted=posted(20))
    settings = lda_settings(make_settings, api)
    api.serve(FILINGS, drf_page([registration]))
    poll_source("lda")  # baseline
    report = filing("b0000000-0000-4000-8000-000000000002", filing_type="Q4", display="4th Quarter - Report",
                    period="fourth_quarter", registrant=firm, client=client, dt_posted=posted(2))
    amendment = filing("b0000000-0000-4000-8000-000000000003", filing_type="RA", display="Registration Amendment",
                       period="fourth_quarter", registrant=firm, client=client, income=None, dt_posted=posted(1))
    api.serve(FILINGS, drf_page([registration, report, amendment]))

    summary = poll_source("lda")

    assert (summary["new"], summary["updated"], summary["alerted"]) == (1, 1, 2)
    refs = alerted_refs(redis)
    assert sorted(ref[2] for ref in refs) == ["new", "updated"]
    [new_id] = [ref[0] for ref in refs if ref[2] == "new"]
    [updated_id] = [ref[0] for ref in refs if ref[2] == "updated"]
    assert new_id != updated_id
    kept = stored(redis, settings, updated_id)
    assert kept is not None and kept.version == "b0000000-0000-4000-8000-000000000003"
    quarterly = stored(redis, settings, new_id)
    assert quarterly is not None and quarterly.version == "b0000000-0000-4000-8000-000000000002"


# --- paging, parameters and the key --------------------------------------------------------------------------


def test_a_poll_follows_next_to_the_last_page_and_sends_the_api_key(
        redis: Redis, make_settings: MakeSettings, api: LdaApi) -> None:
    """The first poll asks for 25 filings a page ordered by posting time since 30 days ago, follows `next` to the
    last page and sends `Authorization: Token <key>` with every request."""
    settings = lda_settings(make_settings, api, lda_api_key=API_KEY)
    serve_pages(api, [many_filings(25), many_filings(25, first=25), many_filings(3, first=50)])

    summary = poll_source("lda")

    assert (summary["status"], summary["fetched"], summary["new"], summary["alerted"]) == ("ok", 3, 53, 0)
    assert api.requests[0].query == {"filing_dt_posted_after": since(30), "ordering": "dt_posted", "page_size": "25"}
    assert api.paths()[1:] == [page_path(api, 2), page_path(api, 3)]
    assert [seen.headers.get("authorization") for seen in api.requests] == [f"Token {API_KEY}"] * 3
    assert stored(redis, settings, "lda:filing:401108833-500052-2026-third_quarter") is not None


def test_without_a_key_no_authorization_header_is_sent(make_settings: MakeSettings, api: LdaApi) -> None:
    """Without LOBBYBOT_LDA_API_KEY the API is asked anonymously: no Authorization header at all."""
    lda_settings(make_settings, api)
    serve_pages(api, [many_filings(25), many_filings(1, first=25)])

    assert poll_source("lda")["new"] == 26

    assert len(api.requests) == 2
    assert all("authorization" not in seen.headers for seen in api.requests)


def test_the_next_poll_asks_from_the_watermark_minus_the_overlap(
        redis: Redis, make_settings: MakeSettings, api: LdaApi) -> None:
    """After a poll, the next one asks for filings posted since the latest posting seen (in UTC) minus
    LOBBYBOT_LDA_OVERLAP_DAYS."""
    lda_settings(make_settings, api, lda_overlap_days=3)
    latest = posted(4, hour=22)  # 22:41 Eastern is 03:41 UTC the next day
    api.serve(FILINGS, drf_page([filing("c0000000-0000-4000-8000-000000000001", dt_posted=posted(9)),
                                 filing("c0000000-0000-4000-8000-000000000002", dt_posted=latest,
                                        client=(330917, CASCADIA))]))
    poll_source("lda")

    poll_source("lda")

    watermark = datetime.fromisoformat(latest).astimezone(UTC)
    expected = (watermark - timedelta(days=3)).date().isoformat()
    assert expected == (datetime.now(UTC).date() - timedelta(days=6)).isoformat()
    assert [seen.query["filing_dt_posted_after"] for seen in api.requests] == [since(30), expected]
    assert api.requests[1].query["ordering"] == "dt_posted" and api.requests[1].query["page_size"] == "25"


def test_the_overlap_re_read_is_a_duplicate_and_an_amendment_is_one_update(
        redis: Redis, make_settings: MakeSettings, api: LdaApi) -> None:
    """A filing read again in the overlap window is a duplicate; its amendment (3A, its own filing_uuid, same
    registrant, client, year and period) posted later is one update, alerted once; re-reading both in the window
    later alerts nothing and keeps the amendment as the current version."""
    settings = lda_settings(make_settings, api)
    original = filing(Q3_UUID, dt_posted=posted(5))
    api.serve(FILINGS, drf_page([original]))
    assert counts(poll_source("lda")) == (1, 0, 0, 0)  # the silent baseline

    assert counts(poll_source("lda")) == (0, 0, 1, 0)

    amendment_uuid = "d1a2b3c4-0000-4000-8000-0000000003aa"
    amendment = filing(amendment_uuid, filing_type="3A", display="3rd Quarter - Amendment", dt_posted=posted(1),
                       income="65000.00")
    api.serve(FILINGS, drf_page([original, amendment]))
    amended = poll_source("lda")
    assert amended["new"] == 0 and amended["updated"] == 1 and amended["alerted"] == 1
    assert alerted_refs(redis) == [[Q3_ID, amendment_uuid, "updated"]]

    again = poll_source("lda")  # both filings are still inside the overlap window

    assert again["new"] == again["updated"] == again["alerted"] == 0
    assert again["duplicate"] >= 1
    assert len(alerted_refs(redis)) == 1
    current = stored(redis, settings, Q3_ID)
    assert current is not None and current.version == amendment_uuid and "$65,000" in current.title


def test_client_and_registrant_filters_are_one_endpoint_each(
        redis: Redis, make_settings: MakeSettings, api: LdaApi) -> None:
    """Each LOBBYBOT_LDA_CLIENTS and LOBBYBOT_LDA_REGISTRANTS entry is its own endpoint, asked with `client_name`
    or `registrant_name`; nothing unfiltered is requested."""
    firm = "HARBORVIEW PUBLIC AFFAIRS"
    settings = lda_settings(make_settings, api, lda_clients=[NORTHWIND], lda_registrants=[firm])
    serve_pages(api, [[filing(Q3_UUID)]], client_name=NORTHWIND)
    api.serve(FILINGS, drf_page([recorded_filings()[1]]), registrant_name=firm)

    summary = poll_source("lda")

    assert summary["new"] == 2
    assert set(saved_state(redis, settings).endpoints) == {f"client:{NORTHWIND}", f"registrant:{firm}"}
    queries = [(seen.query.get("client_name", ""), seen.query.get("registrant_name", "")) for seen in api.requests]
    assert sorted(queries) == [("", firm), (NORTHWIND, "")]
    assert all(seen.query["ordering"] == "dt_posted" for seen in api.requests)


# --- politeness: 429, 5xx, the request budget -----------------------------------------------------------------


@pytest.mark.parametrize("retry_after", [120, 3600])
def test_a_429_storm_fails_every_filter_until_retry_after_without_hammering(
        redis: Redis, make_settings: MakeSettings, api: LdaApi, retry_after: int) -> None:
    """A 429 with Retry-After makes the source `failing` until then (at least the 5-minute backoff): the poll asks
    nothing more of the throttled API, not even for another filter, and an immediate second poll sends nothing."""
    settings = lda_settings(make_settings, api, lda_clients=[NORTHWIND, CASCADIA])
    throttled = json.dumps({"detail": f"Request was throttled. Expected available in {retry_after} seconds."})
    api.serve(FILINGS, Reply(throttled.encode(), status=429, headers={"Retry-After": str(retry_after)}))
    before = datetime.now(UTC)

    summary = poll_source("lda")
    again = poll_source("lda")

    assert summary["status"] == again["status"] == "failing"
    assert len(api.requests) == 1
    assert again["fetched"] == 0
    wait = timedelta(seconds=max(retry_after, 300))
    for endpoint in saved_state(redis, settings).endpoints.values():
        assert endpoint.status == "failing"
        assert "429" in endpoint.reason
        assert endpoint.retry_at is not None and endpoint.retry_at >= before + wait


def test_a_server_error_once_is_retried_within_the_poll(make_settings: MakeSettings, api: LdaApi) -> None:
    """A 502 followed by a good page costs one retry after a short wait, and the poll succeeds."""
    settings = lda_settings(make_settings, api)
    api.serve(FILINGS, Reply(b"<html><body><h1>502 Bad Gateway</h1></body></html>", status=502,
                             content_type="text/html"), drf_page([filing(Q3_UUID)]))
    sleeps: list[float] = []
    state = SourceState(name="lda")

    events, more, fetched = poll_directly(LdaSource(settings, sleep=sleeps.append), state)

    assert [event.id for event in events] == [Q3_ID]
    assert (fetched, more, len(api.requests)) == (2, False, 2)
    assert state.endpoints["all"].status == "ok"
    assert 1.0 in sleeps


def test_three_server_errors_in_a_row_fail_the_endpoint_with_backoff(make_settings: MakeSettings,
                                                                     api: LdaApi) -> None:
    """Three 503s in a row (the request and two retries) make the endpoint `failing`, retried in 5 minutes, and a
    poll before then sends nothing."""
    settings = lda_settings(make_settings, api)
    api.serve(FILINGS, Reply(b"<html><body>503 Service Unavailable</body></html>", status=503,
                             content_type="text/html"))
    source = LdaSource(settings, sleep=lambda seconds: None)
    state = SourceState(name="lda")
    before = datetime.now(UTC)

    poll_directly(source, state)
    poll_directly(source, state)

    endpoint = state.endpoints["all"]
    assert len(api.requests) == 3
    assert (endpoint.status, endpoint.failures, state.status) == ("failing", 1, "failing")
    assert "HTTP 503" in endpoint.reason and endpoint.action
    assert endpoint.retry_at is not None
    assert before + timedelta(minutes=5) <= endpoint.retry_at <= datetime.now(UTC) + timedelta(minutes=5)


@pytest.mark.parametrize(("per_minute", "key", "spacing"), [(None, None, 4.0), (None, API_KEY, 0.5),
                                                            (60, API_KEY, 1.0)])
def test_requests_are_spaced_to_the_per_minute_budget(make_settings: MakeSettings, api: LdaApi,
                                                      per_minute: int | None, key: str | None,
                                                      spacing: float) -> None:
    """Requests are spaced to fit the budget: 15 a minute anonymously, 120 with a key, or
    LOBBYBOT_LDA_REQUESTS_PER_MINUTE (60 → about one second between requests)."""
    settings = lda_settings(make_settings, api, lda_requests_per_minute=per_minute, lda_api_key=key)
    serve_pages(api, [many_filings(25), many_filings(25, first=25), many_filings(2, first=50)])
    sleeps: list[float] = []

    events, _, fetched = poll_directly(LdaSource(settings, sleep=sleeps.append), SourceState(name="lda"))

    assert (len(events), fetched) == (52, 3)
    assert len(sleeps) == 2, sleeps
    assert all(spacing * 0.75 < wait <= spacing for wait in sleeps), sleeps


# --- checkpoints -------------------------------------------------------------------------------------------


def test_a_poll_out_of_time_checkpoints_and_a_follow_up_job_continues_silently(
        redis: Redis, make_settings: MakeSettings, api: LdaApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """A poll out of time saves the `next` page and enqueues `poll-lda-more`; the follow-up reads on from that
    page, and the endpoint's first pass stays a silent baseline until its last page; later filings alert."""
    monkeypatch.setattr(lda, "TIME_BUDGET_SECONDS", 0.0)
    settings = lda_settings(make_settings, api)
    serve_pages(api, [many_filings(25), many_filings(3, first=25)])

    first = poll_source("lda")

    endpoint = saved_state(redis, settings).endpoints["all"]
    assert (first["fetched"], first["new"], first["alerted"]) == (1, 25, 0)
    assert endpoint.memo["next"] == page_url(api, 2)
    assert not endpoint.baseline_done
    assert rq.Queue("poll", connection=redis).job_ids == ["poll-lda-more"]
    assert api.paths() == [page_path(api, 1)]

    follow_up = poll_source("lda")

    assert api.paths()[1:] == [page_path(api, 2)]
    assert (follow_up["new"], follow_up["alerted"]) == (3, 0)
    endpoint = saved_state(redis, settings).endpoints["all"]
    assert endpoint.baseline_done and "next" not in endpoint.memo and endpoint.status == "ok"

    api.serve(FILINGS, drf_page([*many_filings(2, first=26), filing(Q3_UUID, dt_posted=posted(0.5))]), page="1")
    later = poll_source("lda")

    assert (later["new"], later["duplicate"], later["alerted"]) == (1, 2, 1)
    assert alerted_refs(redis) == [[Q3_ID, Q3_UUID, "new"]]


def test_out_of_time_every_poll_makes_progress_and_no_filter_starves(
        make_settings: MakeSettings, api: LdaApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the time budget spent, each poll still reads a page, a follow-up continues the cut pass first, and a
    filter left out of one poll goes first in the next, so every filter is read."""
    monkeypatch.setattr(lda, "TIME_BUDGET_SECONDS", 0.0)
    settings = lda_settings(make_settings, api, lda_clients=[NORTHWIND, CASCADIA])
    serve_pages(api, [many_filings(25), many_filings(1, first=25)], client_name=NORTHWIND)
    serve_pages(api, [many_filings(1, first=40)], client_name=CASCADIA)
    source = LdaSource(settings, sleep=lambda seconds: None)
    state = SourceState(name="lda")

    polls = [poll_directly(source, state) for _ in range(3)]

    assert [fetched for _, _, fetched in polls] == [1, 1, 1]
    assert [more for _, more, _ in polls] == [True, False, False]  # only a pass under way asks for a follow-up
    assert [seen.query.get("client_name") for seen in api.requests] == [NORTHWIND, NORTHWIND, CASCADIA]
    assert api.requests[1].path == page_path(api, 2, client_name=NORTHWIND)
    assert sum(len(events) for events, _, _ in polls) == 27
    assert all(endpoint.status == "ok" and endpoint.baseline_done for endpoint in state.endpoints.values())


def test_a_filter_recovering_from_failures_continues_its_cut_pass_in_a_follow_up(
        make_settings: MakeSettings, api: LdaApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """When a failing filter is retried and its pass is cut by the time budget, a follow-up is asked for and
    finishes the pass, and the filter is ok again."""
    monkeypatch.setattr(lda, "TIME_BUDGET_SECONDS", 0.0)
    settings = lda_settings(make_settings, api)
    outage = Reply(b"<html><body>503 Service Unavailable</body></html>", status=503, content_type="text/html")
    serve_pages(api, [many_filings(25), many_filings(2, first=25)])
    api.serve(FILINGS, outage, outage, outage, drf_page(many_filings(25), page_url(api, 2)), page="1")
    source = LdaSource(settings, sleep=lambda seconds: None)
    state = SourceState(name="lda")
    poll_directly(source, state)
    endpoint = state.endpoints["all"]
    assert endpoint.status == "failing"
    endpoint.retry_at = datetime.now(UTC) - timedelta(seconds=1)  # the backoff passed

    _, more, _ = poll_directly(source, state)
    events, again, _ = poll_directly(source, state)

    assert more is True
    assert (len(events), again) == (2, False)
    assert api.paths()[-1] == page_path(api, 2)
    assert state.endpoints["all"].status == "ok"


# --- bad input ---------------------------------------------------------------------------------------------


BAD_PAGES = {
    "html error page": (Reply(b"<!DOCTYPE html><html><head><title>Server Error</title></head><body><h1>Server "
                              b"Error (500)</h1></body></html>", content_type="text/html; charset=utf-8"),
                        "not JSON"),
    "truncated json": (Reply(drf_page(many_filings(25, first=25))[:3000]), "not JSON"),
    "json without results": (Reply(b'{"detail": "Invalid page."}'), "without a list of results"),
}


@pytest.mark.parametrize("bad", list(BAD_PAGES))
def test_a_broken_page_fails_the_endpoint_and_keeps_the_pages_before_it(
        redis: Redis, make_settings: MakeSettings, api: LdaApi, bad: str) -> None:
    """A page that is an HTML error page, truncated JSON or JSON without `results` makes the endpoint `failing`
    with a clear reason, while the filings of the pages before it are ingested; the next try resumes there."""
    settings = lda_settings(make_settings, api)
    reply, reason = BAD_PAGES[bad]
    serve_pages(api, [many_filings(25), many_filings(25, first=25)])
    api.serve(FILINGS, reply, page="2")

    summary = poll_source("lda")

    assert (summary["status"], summary["new"]) == ("failing", 25)
    endpoint = saved_state(redis, settings).endpoints["all"]
    assert endpoint.status == "failing" and reason in endpoint.reason and endpoint.action
    assert endpoint.memo["next"] == page_url(api, 2)
    assert stored(redis, settings, "lda:filing:401108833-500024-2026-third_quarter") is not None


def test_a_filing_missing_what_identifies_it_is_skipped_and_counted(
        redis: Redis, make_settings: MakeSettings, api: LdaApi) -> None:
    """A filing without a registrant, with a registrant that is not an object, with an unreadable posting time,
    or that is not an object at all is skipped and counted in the health, and the others on its page ingested."""
    settings = lda_settings(make_settings, api)
    no_registrant = filing("e0000000-0000-4000-8000-000000000001", client=(600001, "A INC"))
    del no_registrant["registrant"]
    flat_registrant = filing("e0000000-0000-4000-8000-000000000002", client=(600002, "B INC"))
    flat_registrant["registrant"] = "CAPITOL BRIDGE STRATEGIES LLC"
    bad_date = filing("e0000000-0000-4000-8000-000000000003", client=(600003, "C INC"), dt_posted="last Tuesday")
    api.serve(FILINGS, drf_page([no_registrant, filing(Q3_UUID), flat_registrant, bad_date, "oops",
                                 recorded_filings()[1]]))

    summary = poll_source("lda")

    assert (summary["status"], summary["skipped"], summary["new"]) == ("ok", 4, 2)
    endpoint = saved_state(redis, settings).endpoints["all"]
    assert (endpoint.skipped_last, endpoint.skipped_total) == (4, 4)
    assert stored(redis, settings, Q3_ID) is not None


# --- lobbybot import ---------------------------------------------------------------------------------------


def test_import_lda_loads_a_saved_page(redis: Redis, make_settings: MakeSettings, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot import lda FILE.json` records every filing of a saved API page, silently, and says how many."""
    settings = make_settings(retention_days=36500)
    path = tmp_path / RECORDED
    path.write_bytes(payload(RECORDED))

    assert main(["import", "lda", str(path)]) == 0

    captured = capsys.readouterr()
    assert f"import lda: {RECORDED}: 3 records read, 0 skipped" in captured.err
    assert "3 new" in captured.out and "0 alerted" in captured.out
    event = stored(redis, settings, Q3_ID)
    assert event is not None and event.lobbyists == ("Jane Q. Doe", "Mark Rivera", "Alicia Chen")


def test_import_lda_of_a_non_json_file_prints_one_error_line(
        redis: Redis, make_settings: MakeSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot import lda` of an HTML page saved as .json exits non-zero with one clear line and records nothing."""
    settings = make_settings()
    path = tmp_path / "filings.json"
    path.write_text("<!DOCTYPE html><html><body>Server Error (500)</body></html>")

    code = main(["import", "lda", str(path)])

    lines = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith("lobbybot import: ") and "not JSON" in lines[0]
    assert not redis.keys(f"{settings.redis_prefix}event:*")


def test_a_long_backlog_is_read_by_a_chain_of_follow_up_jobs(
        redis: Redis, make_settings: MakeSettings, api: LdaApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backlog of several pages, one page per job, is read to the end by follow-ups run by a worker."""
    monkeypatch.setattr(lda, "TIME_BUDGET_SECONDS", 0.0)
    settings = lda_settings(make_settings, api)
    serve_pages(api, [many_filings(25), many_filings(25, first=25), many_filings(25, first=50),
                      many_filings(2, first=75)])
    queues = [rq.Queue(name, connection=redis) for name in ("poll", "deliver", "default")]
    rq.Queue("poll", connection=redis).enqueue("workers.jobs.poll_source", "lda", job_id="poll-lda")

    rq.SimpleWorker(queues, connection=redis).work(burst=True)

    assert api.paths() == [page_path(api, n) for n in (1, 2, 3, 4)]
    endpoint = saved_state(redis, settings).endpoints["all"]
    assert endpoint.baseline_done and "next" not in endpoint.memo

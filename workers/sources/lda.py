"""The `lda` source: the US Lobbying Disclosure Act REST API (registries.md §3).

Filings are read from `{LOBBYBOT_LDA_URL}filings/` (`https://lda.gov/api/v1/`; redirects from the older
`lda.senate.gov` are followed) in pages of 25, following `next`, asking for filings posted after a watermark
minus an overlap (`LOBBYBOT_LDA_OVERLAP_DAYS`, 7) and ordered by posting time. One endpoint per configured client
or registrant filter (`LOBBYBOT_LDA_CLIENTS`, `LOBBYBOT_LDA_REGISTRANTS`), or one for every filing.

Identity (docs/adr/0002-lda-filing-identity.md): an amendment (`1A`, `2A`, `RA`, …) is a complete restatement
with its own `filing_uuid` that supersedes the filing for the same registrant, client, year and period. So the
event id is that group — `lda:filing:<registrant id>-<client id>-<year>-<period>`, the period of a registration
(RR/RA) being `registration` as it carries the quarter it was filed in — and the version is the `filing_uuid`:
the overlap window re-reads the same uuid (a duplicate), an amendment is an update.

Politeness: a request budget per minute (15 anonymous, 120 with `LOBBYBOT_LDA_API_KEY`, or
`LOBBYBOT_LDA_REQUESTS_PER_MINUTE`), requests spaced to fit it; a 429 waits as long as `Retry-After` says; a
5xx is retried twice in the poll, then the endpoint backs off. A poll that would outlast its job (20 s) saves
the `next` page as a checkpoint and asks for a follow-up job, which continues from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlencode, urljoin

import httpx

from workers.errors import SourceError, TransientSourceError
from workers.events import Event
from workers.health import EndpointState, SourceState, utcnow
from workers.settings import Settings
from workers.sources import PollResult, read_json
from workers.sources.http import check_status, transport_error

TIME_BUDGET_SECONDS = 20.0
FIRST_POLL_DAYS = 30
SERVER_ERROR_RETRIES = 2
PAGE_SIZE = 25


class FilingPage(TypedDict):
    count: int
    next: str | None
    results: list[dict[str, Any]]


def _name(person: dict[str, Any]) -> str:
    parts = [person.get("first_name") or "", person.get("middle_name") or "", person.get("last_name") or ""]
    return " ".join(part.strip().title() for part in parts if part and part.strip())


def _money(value: Any) -> str:
    """A decimal string ('50000.00') as '$50,000'; '' when absent or unreadable."""
    if value in (None, ""):
        return ""
    try:
        return f"${Decimal(str(value)):,.0f}"
    except InvalidOperation:
        return ""


def _posted(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def filing_event(filing: dict[str, Any]) -> Event:
    """One filing → one event; raises KeyError/TypeError/ValueError on a filing missing what identifies it."""
    uuid = str(filing["filing_uuid"])
    registrant, client = filing["registrant"], filing["client"]
    filing_type = str(filing.get("filing_type") or "")
    year = filing.get("filing_year")
    # A registration (RR/RA) carries the quarter it was filed in as its period: never group it with that report.
    period = "registration" if filing_type in ("RR", "RA") else filing.get("filing_period") or "registration"
    activities = filing.get("lobbying_activities") or []
    lobbyists: dict[str, None] = {}
    institutions: dict[str, None] = {}
    subjects: dict[str, None] = {}
    for activity in activities:
        for entry in activity.get("lobbyists") or []:
            name = _name(entry.get("lobbyist") or {})
            if name:
                lobbyists[name] = None
        for entity in activity.get("government_entities") or []:
            if entity.get("name"):
                name = str(entity["name"])  # "SENATE" is softened; "Commerce, Dept of (DOC)" is kept as written
                institutions[name.title() if name.isupper() else name] = None
        issue = activity.get("general_issue_code_display") or activity.get("general_issue_code")
        if issue:
            subjects[str(issue)] = None
    amount = _money(filing.get("income")) or _money(filing.get("expenses"))
    amended = "A" in filing_type[1:] or "@" in filing_type[1:]  # nA/nAY, RA; n@/n@Y amend a termination
    terminated = "T" in filing_type[1:] or "@" in filing_type[1:]
    display = filing.get("filing_type_display") or filing_type
    client_name, registrant_name = str(client.get("name") or ""), str(registrant.get("name") or "")
    who = client_name if client_name == registrant_name else f"{client_name} via {registrant_name}"
    title = f"{who}: {display}" + (f" {year}" if year else "") + (f" ({amount})" if amount else "")
    summary = "; ".join(filter(None, [
        "Amendment of an earlier filing" if amended else "",
        f"Issues: {', '.join(list(subjects)[:6])}" if subjects else "",
        f"Lobbyists: {', '.join(list(lobbyists)[:6])}" if lobbyists else "",
        f"Entities: {', '.join(list(institutions)[:6])}" if institutions else "",
    ]))
    posted = _posted(filing.get("dt_posted"))
    ended = filing.get("termination_date")
    return Event(
        id=f"lda:filing:{registrant['id']}-{client['id']}-{year}-{period}", version=uuid, source="lda",
        kind="filing", title=title, summary=summary,
        url=str(filing.get("filing_document_url") or filing.get("url") or ""), language="en",
        occurred_at=posted, published_at=posted, organization=client_name, registrant=registrant_name,
        lobbyists=tuple(lobbyists), institutions=tuple(institutions), subjects=tuple(subjects),
        status="terminated" if terminated or ended else "active",
        end_date=_posted(ended + "T00:00:00") if isinstance(ended, str) and len(ended) == 10 else None,
    )


def parse_page(data: Any, skipped: Callable[[], None]) -> tuple[list[Event], str | None]:
    """Events of one DRF page and its `next` URL; a filing that cannot be read calls `skipped()`."""
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise TransientSourceError("the LDA API answered without a list of results",
                                   action="Check LOBBYBOT_LDA_URL; lobbybot retries with backoff.")
    events = []
    for filing in data["results"]:
        try:
            events.append(filing_event(filing))
        except (KeyError, TypeError, ValueError, AttributeError):
            skipped()
    following = data.get("next")
    return events, following if isinstance(following, str) and following else None


class LdaSource:
    name = "lda"

    def __init__(self, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.sleep = sleep
        self.skipped = 0
        key = settings.lda_api_key.get_secret_value() if settings.lda_api_key else ""
        self.headers = {"Authorization": f"Token {key}"} if key else {}
        self.per_minute = settings.lda_requests_per_minute or (120 if key else 15)
        self._last_request = 0.0

    def endpoints(self) -> dict[str, dict[str, str]]:
        """Endpoint key → the filter it applies (one per configured client or registrant, else everything)."""
        found = {f"client:{name}": {"client_name": name} for name in self.settings.lda_clients}
        found |= {f"registrant:{name}": {"registrant_name": name} for name in self.settings.lda_registrants}
        return found or {"all": {}}

    def poll(self, state: SourceState, http: httpx.Client) -> PollResult:
        result = PollResult(state=state)
        started = time.monotonic()
        wanted = self.endpoints()
        for gone in set(state.endpoints) - set(wanted):
            del state.endpoints[gone]

        def turn(key: str) -> tuple[bool, datetime]:
            # A cut pass continues first, then the filter polled longest ago: no filter starves behind the others.
            endpoint = state.endpoint(key)
            return "next" not in endpoint.memo, endpoint.last_attempt or datetime.min.replace(tzinfo=UTC)

        throttled: SourceError | None = None
        for key in sorted(wanted, key=turn):
            endpoint = state.endpoint(key)
            if not endpoint.due(utcnow()):
                continue
            if throttled is not None:  # Retry-After holds for the whole API, not for one filter
                endpoint.failed(throttled, utcnow(), max_failures=self.settings.max_failures)
                continue
            events: list[Event] = []
            failed = False
            try:
                finished = self._read(endpoint, wanted[key], http, events, result, started)
            except SourceError as error:
                endpoint.failed(error, utcnow(), max_failures=self.settings.max_failures)
                finished, failed = False, True
                throttled = error if error.status == 429 else None
            # Pages come in posting order, so the last version read of a filing is its latest: an original re-read
            # in the overlap window beside its amendment must not flip the record back (dedupe keeps one version).
            result.batches[key] = list({event.id: event for event in events}.values())
            if finished:
                endpoint.memo.pop("next", None)
                endpoint.succeeded(utcnow(), skipped=int(endpoint.memo.pop("skipped", "0")))
            elif "next" in endpoint.memo and not failed:
                result.more = True
                endpoint.reason = f"checkpointed; continuing from {endpoint.memo['next']}"
        state.roll_up()
        return result

    def _first_url(self, endpoint: EndpointState, filters: dict[str, str]) -> str:
        watermark = endpoint.memo.get("watermark")
        since = (datetime.fromisoformat(watermark) - timedelta(days=self.settings.lda_overlap_days)
                 if watermark else utcnow() - timedelta(days=FIRST_POLL_DAYS))
        query = {"filing_dt_posted_after": since.date().isoformat(), "ordering": "dt_posted",
                 "page_size": PAGE_SIZE, **filters}
        return urljoin(self.settings.lda_url, "filings/") + "?" + urlencode(query)

    def _read(self, endpoint: EndpointState, filters: dict[str, str], http: httpx.Client, events: list[Event],
              result: PollResult, started: float) -> bool:
        """Follow pages from the checkpoint (or the watermark); True when the last page was read."""
        url: str | None = endpoint.memo.get("next") or self._first_url(endpoint, filters)

        def skip() -> None:
            result.skipped += 1
            endpoint.memo["skipped"] = str(int(endpoint.memo.get("skipped", "0")) + 1)

        pages = 0
        while url:
            # Out of time: a pass under way is checkpointed for a follow-up; one not started waits for its turn.
            # The first page of a poll is always read, so every poll makes progress.
            if result.fetched and time.monotonic() - started > TIME_BUDGET_SECONDS:
                if pages:
                    endpoint.memo["next"] = url
                return False
            endpoint.memo["next"] = url  # a failure below resumes here
            data = self._get_json(url, http, result)
            pages += 1
            page_events, url = parse_page(data, skip)
            events.extend(page_events)
            for event in page_events:
                if event.published_at and event.published_at.isoformat() > endpoint.memo.get("watermark", ""):
                    endpoint.memo["watermark"] = event.published_at.isoformat()
        return True

    def _get_json(self, url: str, http: httpx.Client, result: PollResult) -> Any:
        for attempt in range(SERVER_ERROR_RETRIES + 1):
            wait = self._last_request + 60.0 / self.per_minute - time.monotonic()
            if wait > 0:
                self.sleep(wait)
            self._last_request = time.monotonic()
            try:
                response = http.get(url, headers=self.headers, follow_redirects=True)
            except httpx.HTTPError as exc:
                raise transport_error(exc) from None
            result.fetched += 1
            if response.status_code >= 500 and attempt < SERVER_ERROR_RETRIES:
                self.sleep(2.0 ** attempt)
                continue
            check_status(response, blocked_action="Check LOBBYBOT_LDA_API_KEY; without one, unset it.",
                         gone_action="Check LOBBYBOT_LDA_URL (https://lda.gov/api/v1/).")
            try:
                return response.json()
            except ValueError:
                raise TransientSourceError("the LDA API answered with something that is not JSON "
                                           "(an HTML error page or a truncated reply)",
                                           action="Nothing to do if it passes; lobbybot retries with backoff."
                                           ) from None
        raise AssertionError("unreachable")

    def load(self, path: Path) -> Iterator[Event]:
        """A saved API page (`{"results": [...]}`) or a JSON list of filings."""
        self.skipped = 0
        data = read_json(path, action="Save the API's JSON reply as it was sent.")
        if isinstance(data, list):
            data = {"results": data}

        def skip() -> None:
            self.skipped += 1

        events, _ = parse_page(data, skip)
        yield from events

"""The `clq` source: Quebec's Carrefour Lobby Québec mandates (registries.md §2).

CLQ publishes no open data; its public search page calls a signed JSON backend (registries.md §2.3). lobbybot
uses it only with the API key and signing secret the operator supplies (`LOBBYBOT_CLQ_API_KEY`,
`LOBBYBOT_CLQ_SIGNING_SECRET`); none ships with lobbybot. Without them the source is `not_configured` and says
what to set.

Each request is `POST {LOBBYBOT_CLQ_URL}` with a compact JSON body for one publication day, signed as the
backend expects:

    X-Public-Timestamp: <epoch ms>
    X-Public-Signature: base64(HMAC-SHA256(secret, "<ts>:POST:search::" + base64(sha256(body))))

Days are read one by one from the day after the last one read (re-reading the last day) to today. Items become
mandate events (`clq:mandate:<declarationNo>`, version `lastUpdate`, else `publishedDate`); the items of one
mandate (one per lobbyist) merge into one event with all its lobbyists. A 401/403 means the key or the secret is
wrong: the endpoint fails with that reason and the action to fix it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from workers.errors import NotConfiguredError, SourceError, TransientSourceError
from workers.events import Event
from workers.health import SourceState, utcnow
from workers.settings import Settings
from workers.sources import PollResult, read_json
from workers.sources.http import check_status, transport_error

FIRST_POLL_DAYS = 14
MAX_HITS = 200
TIME_BUDGET_SECONDS = 20.0
SEARCH_PAGE = "https://www.carrefourlobby.quebec/recherche-mandats"
KEY_ACTION = "Check LOBBYBOT_CLQ_API_KEY and LOBBYBOT_CLQ_SIGNING_SECRET (they rotate when the site is updated)."


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The backend's request signature over the exact body bytes sent."""
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    message = f"{timestamp}:POST:search::{digest}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def search_body(day: date) -> bytes:
    """The search for mandates published on `day`, as compact UTF-8 JSON (signed exactly as sent)."""
    query = {"searchterms": "*", "entrepclient": None, "neq": "", "lobbyist": None, "maxhits": MAX_HITS,
             "institution": None, "activeOnly": False, "fromDate": day.isoformat(), "toDate": day.isoformat(),
             "dateType": "publication", "source": "new"}
    return json.dumps(query, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def mandate_events(items: Iterable[Any], skipped: Callable[[], None]) -> list[Event]:
    """Merge the items of each mandate into one event; an item without a declarationNo is skipped."""
    mandates: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        number = item.get("declarationNo") if isinstance(item, dict) else None
        if not isinstance(number, str | int) or not str(number).strip():
            skipped()
            continue
        mandates.setdefault(str(number).strip(), []).append(item)
    events = []
    for number, group in mandates.items():
        try:
            events.append(_mandate(number, group))
        except (TypeError, ValueError):
            skipped()
    return events


def _mandate(number: str, items: list[dict[str, Any]]) -> Event:
    first = items[0]
    lobbyists = tuple(dict.fromkeys(str(i["lobbyistName"]).strip() for i in items if i.get("lobbyistName")))
    enterprise = str(first.get("enterpriseName") or "").strip()
    consultant = first.get("lobbyType") == "LOC"
    published = _moment(first.get("publishedDate"))
    updated = max((m for m in (_moment(i.get("lastUpdate")) for i in items) if m), default=None)
    summary = str(first.get("mandateSummary") or "").strip()
    kind = "lobbyiste-conseil" if consultant else "lobbyiste d'entreprise ou d'organisation"
    return Event(
        id=f"clq:mandate:{number}", version=_version(updated or published), source="clq", kind="mandate",
        title=f"{enterprise or 'Mandat'} : mandat de {kind}" + (
            f" ({len(lobbyists)} lobbyistes)" if len(lobbyists) > 1 else ""),
        summary=summary[:1000], url=SEARCH_PAGE, language="fr", occurred_at=published,
        published_at=published, organization=enterprise, registrant=enterprise, lobbyists=lobbyists,
        status=str(first.get("status") or "").lower(),
    )


def _version(moment: datetime | None) -> str:
    """A mandate's version: its last update (a stable placeholder when the item carries no date at all)."""
    return moment.isoformat() if moment else "undated"


class ClqSource:
    name = "clq"

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.skipped = 0

    def _credentials(self) -> tuple[str, str]:
        key, secret = self.settings.clq_api_key, self.settings.clq_signing_secret
        if key is None or secret is None:
            missing = [name for name, value in (("LOBBYBOT_CLQ_API_KEY", key),
                                                ("LOBBYBOT_CLQ_SIGNING_SECRET", secret)) if value is None]
            raise NotConfiguredError(f"{' and '.join(missing)} not set",
                                     action="Set the Carrefour Lobby Québec API key and signing secret you obtained "
                                            f"({', '.join(missing)}); lobbybot ships none.")
        return key.get_secret_value(), secret.get_secret_value()

    def poll(self, state: SourceState, http: httpx.Client) -> PollResult:
        result = PollResult(state=state)
        endpoint = state.endpoint("mandates")
        try:
            key, secret = self._credentials()
        except NotConfiguredError as error:
            endpoint.status, endpoint.reason, endpoint.action = "not_configured", error.reason, error.action
            state.roll_up()
            return result
        if endpoint.status == "not_configured":  # the keys were added since
            endpoint.status = "pending"
        if not endpoint.due(utcnow()):
            return result
        today = utcnow().date()
        through = endpoint.memo.get("through")
        day = date.fromisoformat(through) if through else today - timedelta(days=FIRST_POLL_DAYS)
        started = time.monotonic()
        events: list[Event] = []
        skipped = 0

        def skip() -> None:
            nonlocal skipped
            skipped += 1

        try:
            while day <= today:
                if time.monotonic() - started > TIME_BUDGET_SECONDS:
                    result.more = True
                    break
                data = self._search(day, key, secret, http, result)
                events.extend(mandate_events(data["items"], skip))
                if isinstance(data.get("total"), int) and data["total"] > len(data["items"]):
                    endpoint.reason = f"{day}: {data['total']} mandates published, only {len(data['items'])} read"
                endpoint.memo["through"] = day.isoformat()
                day += timedelta(days=1)
        except SourceError as error:
            endpoint.failed(error, utcnow(), max_failures=self.settings.max_failures)
        else:
            if not result.more or endpoint.baseline_done:  # a first pass cut short is not the baseline yet
                reason = endpoint.reason if endpoint.reason.startswith(str(today)) else ""
                endpoint.succeeded(utcnow(), skipped=skipped, reason=reason)
        result.batches["mandates"] = events
        result.skipped += skipped
        state.roll_up()
        return result

    def _search(self, day: date, key: str, secret: str, http: httpx.Client, result: PollResult) -> dict[str, Any]:
        body = search_body(day)
        timestamp = str(int(self.clock() * 1000))
        headers = {"Content-Type": "application/json", "Ocp-Apim-Subscription-Key": key,
                   "X-Public-Timestamp": timestamp, "X-Public-Signature": sign(secret, timestamp, body),
                   "Origin": self.settings.clq_origin, "Referer": self.settings.clq_origin + "/"}
        try:
            response = http.post(self.settings.clq_url, content=body, headers=headers, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc) from None
        result.fetched += 1
        if response.status_code in (401, 403):
            raise TransientSourceError(f"the search API rejected our key or signature (HTTP {response.status_code})",
                                       status=response.status_code, action=KEY_ACTION)
        check_status(response, blocked_action=KEY_ACTION, gone_action="Check LOBBYBOT_CLQ_URL.")
        try:
            data = response.json()
        except ValueError:
            raise TransientSourceError("the search API answered with something that is not JSON (an HTML error "
                                       "page or a truncated reply)", action="lobbybot retries with backoff.") from None
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise TransientSourceError("the search API answered without a list of items",
                                       action="The backend may have changed; check LOBBYBOT_CLQ_URL.")
        return data

    def load(self, path: Path) -> Iterator[Event]:
        """A saved search response (`{"items": [...], "total": N}`) or a JSON list of items."""
        self.skipped = 0
        data = read_json(path, action="Save the search response exactly as the site sent it.")
        items = data.get("items") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise TransientSourceError(f"{path.name} holds no list of items",
                                       action="Save the search response exactly as the site sent it.")

        def skip() -> None:
            self.skipped += 1

        yield from mandate_events(items, skip)

"""The `clq` source: Carrefour Lobby Québec mandates from the signed search backend (registries.md §2.3), faked at
the wire by a stand-in on 127.0.0.1 that verifies every request's key, timestamp, origin and signature exactly as
the real backend would, and answers recorded, real-shaped search responses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import rq
from redis import Redis

from bot.cli import main
from tests import records
from tests.records import alerted_refs, load_saved, source_state
from tests.wire import payload
from workers.events import Event
from workers.health import SourceState, StateStore
from workers.jobs import poll_source
from workers.settings import Settings
from workers.sources import clq

MakeSettings = Callable[..., Settings]
SEARCH = "/api/clq/public-api/search"
ORIGIN = "https://www.carrefourlobby.quebec"
KEY = "test-subscription-key"  # made up, like the secret: lobbybot ships none
SECRET = "test-secret"
RECORDED = "clq_search_day.json"  # one day's response: a consultant mandate (3 lobbyists) and an in-house one
CONSULTANT, IN_HOUSE = "M-2026-048213", "M-2026-048377"
FRESHNESS_MS = 5 * 60 * 1000
APIM_DENIED = {"statusCode": 401, "message": "Access denied due to invalid subscription key. Make sure to provide a "
                                             "valid key for an active subscription."}


# --- a stand-in for the signed search backend -----------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes
    rejected: str  # why the backend refused it ("" when accepted)

    @property
    def body(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed


def expected_signature(secret: str, timestamp: str, raw: bytes) -> str:
    """The backend's own computation, over the bytes received: base64(HMAC-SHA256(secret,
    "<ts>:POST:search::" + base64(sha256(body))))."""
    body_hash = base64.b64encode(hashlib.sha256(raw).digest()).decode()
    mac = hmac.new(secret.encode(), f"{timestamp}:POST:search::{body_hash}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class ClqBackend:
    """`POST /api/clq/public-api/search` on 127.0.0.1. A request with the wrong `Ocp-Apim-Subscription-Key`, a
    missing or stale `X-Public-Timestamp` (more than 5 minutes off), another `Origin`, or an `X-Public-Signature`
    that does not match the raw body received is refused with 401. An accepted search answers the mandates
    published on its `fromDate` (`published[day]`), or the raw reply a test set for that day (`broken[day]`)."""

    def __init__(self, key: str = KEY, secret: str = SECRET) -> None:
        self.key, self.secret = key, secret
        self.published: dict[str, list[Any]] = {}
        self.broken: dict[str, tuple[int, str, bytes]] = {}
        self.requests: list[Received] = []
        self.delay = 0.0
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {key.lower(): value for key, value in self.headers.items()}
                rejected = backend.verify(headers, raw) if self.path == SEARCH else "path"
                backend.requests.append(Received(headers, raw, rejected))
                if backend.delay:
                    time.sleep(backend.delay)
                if rejected == "path":
                    status, content_type, body = 404, "application/json", b'{"statusCode": 404}'
                elif rejected:
                    status, content_type, body = 401, "application/json", json.dumps(APIM_DENIED).encode()
                else:
                    status, content_type, body = backend.answer(json.loads(raw))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{SEARCH}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def verify(self, headers: dict[str, str], raw: bytes) -> str:
        if headers.get("ocp-apim-subscription-key") != self.key:
            return "subscription key"
        timestamp = headers.get("x-public-timestamp", "")
        if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > FRESHNESS_MS:
            return "timestamp"
        if headers.get("origin") != ORIGIN:
            return "origin"
        if not hmac.compare_digest(headers.get("x-public-signature", ""),
                                   expected_signature(self.secret, timestamp, raw)):
            return "signature"
        return ""

    def answer(self, search: dict[str, Any]) -> tuple[int, str, bytes]:
        day = search["fromDate"]
        if day in self.broken:
            return self.broken[day]
        items = self.published.get(day, [])
        return 200, "application/json; charset=utf-8", json.dumps({"items": items, "total": len(items)}).encode()

    def publish(self, day: date, *items: Any) -> None:
        self.published.setdefault(day.isoformat(), []).extend(items)

    def days_asked(self) -> list[str]:
        return [received.body["fromDate"] for received in self.requests]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def backend() -> Iterator[ClqBackend]:
    server = ClqBackend()
    yield server
    server.close()


# --- real-shaped items -------------------------------------------------------------------------------------


def today() -> date:
    return datetime.now(UTC).date()


def stamp(day: date, clock: str = "21:03:50.041") -> str:
    """A `publishedDate`/`lastUpdate` as the backend writes it: ISO-8601 UTC with milliseconds and a Z."""
    return f"{day.isoformat()}T{clock}Z"


def item(number: str, lobbyist: str, day: date, *, enterprise: str = "Cabinet Boréal Stratégies inc.",
         lobby_type: str = "LOC", updated: str | None = None,
         summary: str = "Représentations auprès d'Hydro-Québec concernant un bloc d'électricité.") -> dict[str, Any]:
    return {"declarationNo": number, "lobbyType": lobby_type, "enterpriseName": enterprise, "lobbyistName": lobbyist,
            "mandateSummary": summary, "publishedDate": stamp(day), "lastUpdate": updated or stamp(day),
            "status": "active"}


def recorded_items(day: date) -> list[dict[str, Any]]:
    """The recorded day's items, re-dated to `day` (so they stay inside the retention window)."""
    items: list[dict[str, Any]] = json.loads(payload(RECORDED))["items"]
    for entry in items:
        for field in ("publishedDate", "lastUpdate"):
            entry[field] = day.isoformat() + entry[field][10:]
    return items


# --- helpers -----------------------------------------------------------------------------------------------


def clq_settings(make_settings: MakeSettings, backend: ClqBackend, **overrides: object) -> Settings:
    return make_settings(**{"sources": ["clq"], "clq_url": backend.url, "clq_api_key": KEY,
                            "clq_signing_secret": SECRET, **overrides})


def saved_state(redis: Redis, settings: Settings) -> SourceState:
    return source_state(redis, settings, "clq")


def stored(redis: Redis, settings: Settings, number: str) -> Event | None:
    return records.stored(redis, settings, f"clq:mandate:{number}")


def load(settings: Settings, tmp_path: Path, data: bytes) -> tuple[list[Event], int]:
    return load_saved(clq.ClqSource(settings), tmp_path, data, "search.json")


def sources_output(capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["sources"]) == 0
    return capsys.readouterr().out


# --- configuration -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("configured", [{}, {"clq_api_key": KEY}, {"clq_signing_secret": SECRET}])
def test_without_key_and_secret_the_source_is_not_configured_and_sends_nothing(
        redis: Redis, make_settings: MakeSettings, backend: ClqBackend, capsys: pytest.CaptureFixture[str],
        configured: dict[str, str]) -> None:
    """Without LOBBYBOT_CLQ_API_KEY and LOBBYBOT_CLQ_SIGNING_SECRET the source is `not_configured`, sends no
    request, and `lobbybot sources` names what is missing."""
    settings = make_settings(sources=["clq"], clq_url=backend.url, **configured)
    backend.publish(today(), *recorded_items(today()))

    summary = poll_source("clq")

    assert (summary["status"], summary["fetched"], summary["new"]) == ("not_configured", 0, 0)
    assert backend.requests == []
    endpoint = saved_state(redis, settings).endpoints["mandates"]
    missing = [name for name, field in (("LOBBYBOT_CLQ_API_KEY", "clq_api_key"),
                                        ("LOBBYBOT_CLQ_SIGNING_SECRET", "clq_signing_secret"))
               if field not in configured]
    assert all(name in endpoint.reason and name in endpoint.action for name in missing)
    out = sources_output(capsys)
    [line] = [line for line in out.splitlines() if line.startswith("clq ")]
    assert line.split()[1] == "not_configured"
    assert "action: Set the Carrefour Lobby Québec API key" in out and all(name in out for name in missing)


# --- signing -----------------------------------------------------------------------------------------------


def test_signed_searches_are_accepted_and_their_mandates_ingested(
        redis: Redis, make_settings: MakeSettings, backend: ClqBackend) -> None:
    """With the right key and secret every search passes the backend's signature check (key, fresh timestamp,
    origin, HMAC of the exact body) and the mandates found are recorded."""
    settings = clq_settings(make_settings, backend)
    backend.publish(today() - timedelta(days=3), *recorded_items(today() - timedelta(days=3)))

    summary = poll_source("clq")

    assert (summary["status"], summary["new"], summary["alerted"]) == ("ok", 2, 0)
    assert backend.requests and [received.rejected for received in backend.requests] == [""] * len(backend.requests)
    assert all(received.headers["content-type"] == "application/json" for received in backend.requests)
    assert stored(redis, settings, CONSULTANT) is not None and stored(redis, settings, IN_HOUSE) is not None


@pytest.mark.parametrize(("wrong", "refused_for"), [({"clq_signing_secret": "not-the-secret"}, "signature"),
                                                    ({"clq_api_key": "not-the-key"}, "subscription key")])
def test_a_wrong_secret_or_key_fails_with_what_to_check(
        redis: Redis, make_settings: MakeSettings, backend: ClqBackend, capsys: pytest.CaptureFixture[str],
        wrong: dict[str, str], refused_for: str) -> None:
    """A search the backend refuses (401: bad signature or key) makes the source `failing`, with a reason about
    the key or signature and an action naming both settings; the poll stops at the first refusal."""
    settings = clq_settings(make_settings, backend, **wrong)
    backend.publish(today(), *recorded_items(today()))

    summary = poll_source("clq")

    assert (summary["status"], summary["new"]) == ("failing", 0)
    assert [received.rejected for received in backend.requests] == [refused_for]
    endpoint = saved_state(redis, settings).endpoints["mandates"]
    assert "key or signature" in endpoint.reason and "401" in endpoint.reason
    assert "LOBBYBOT_CLQ_API_KEY" in endpoint.action and "LOBBYBOT_CLQ_SIGNING_SECRET" in endpoint.action
    assert endpoint.retry_at is not None and not endpoint.baseline_done
    out = sources_output(capsys)
    [line] = [line for line in out.splitlines() if line.startswith("clq ")]
    assert line.split()[1] == "failing" and "LOBBYBOT_CLQ_SIGNING_SECRET" in out


def test_the_signature_covers_the_exact_bytes_sent(make_settings: MakeSettings, backend: ClqBackend) -> None:
    """The body is compact UTF-8 JSON, and the signature the backend checks is over those very bytes."""
    clq_settings(make_settings, backend)
    poll_source("clq")

    received = backend.requests[0]
    assert received.raw == json.dumps(received.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    timestamp = received.headers["x-public-timestamp"]
    assert received.headers["x-public-signature"] == expected_signature(SECRET, timestamp, received.raw)
    assert received.headers["x-public-signature"] != expected_signature(SECRET, timestamp, received.raw + b" ")
    assert received.headers["referer"] == ORIGIN + "/"


# --- days and cursor ---------------------------------------------------------------------------------------


def test_one_search_per_publication_day_from_the_cursor_to_today(
        redis: Redis, make_settings: MakeSettings, backend: ClqBackend) -> None:
    """The first poll searches each publication day of the last two weeks, one day per request; the next poll
    re-reads from the last day read (today) and goes no further back."""
    settings = clq_settings(make_settings, backend)

    poll_source("clq")

    expected = [(today() - timedelta(days=back)).isoformat() for back in range(clq.FIRST_POLL_DAYS, -1, -1)]
    assert backend.days_asked() == expected
    for received in backend.requests:
        assert received.body["toDate"] == received.body["fromDate"]
        assert (received.body["dateType"], received.body["searchterms"]) == ("publication", "*")
    assert saved_state(redis, settings).endpoints["mandates"].memo["through"] == today().isoformat()

    backend.requests.clear()
    poll_source("clq")
    assert backend.days_asked() == [today().isoformat()]

    state = saved_state(redis, settings)
    state.endpoints["mandates"].memo["through"] = (today() - timedelta(days=3)).isoformat()
    StateStore(redis, settings.redis_prefix).save(state)
    backend.requests.clear()
    poll_source("clq")
    assert backend.days_asked() == [(today() - timedelta(days=back)).isoformat() for back in (3, 2, 1, 0)]


# --- mandates ----------------------------------------------------------------------------------------------


def test_the_items_of_one_mandate_merge_into_one_event_with_all_its_lobbyists(make_settings: MakeSettings,
                                                                              tmp_path: Path) -> None:
    """The backend's one item per lobbyist become one `clq:mandate:<declarationNo>` event listing every lobbyist,
    in French, versioned by its last update, dated in UTC; a LEO mandate reads as in-house lobbying."""
    events = {event.id: event for event in load(make_settings(), tmp_path, payload(RECORDED))[0]}

    assert sorted(events) == [f"clq:mandate:{CONSULTANT}", f"clq:mandate:{IN_HOUSE}"]
    mandate = events[f"clq:mandate:{CONSULTANT}"]
    assert mandate.lobbyists == ("Marie Tremblay", "Jean-François Côté", "Amélie Roy")
    assert (mandate.source, mandate.kind, mandate.language) == ("clq", "mandate", "fr")
    assert mandate.version == "2026-11-02T21:03:50.041000+00:00"
    assert mandate.published_at == datetime(2026, 11, 2, 21, 3, 50, 41000, tzinfo=UTC)
    assert mandate.organization == "Cabinet Boréal Stratégies inc."
    assert "lobbyiste-conseil" in mandate.title and "(3 lobbyistes)" in mandate.title
    assert mandate.summary.startswith("Représentations auprès du ministère de l'Économie")
    assert mandate.status == "active"
    in_house = events[f"clq:mandate:{IN_HOUSE}"]
    assert in_house.lobbyists == ("Luc Gagnon",)
    assert "lobbyiste d'entreprise ou d'organisation" in in_house.title


def test_a_later_last_update_is_an_update_alerted_once(
        redis: Redis, make_settings: MakeSettings, backend: ClqBackend) -> None:
    """A mandate seen again with a later `lastUpdate` is `updated` (alerted once, versioned by that time); seen
    again unchanged it is a duplicate."""
    settings = clq_settings(make_settings, backend)
    backend.publish(today(), item("M-2026-050001", "Marie Tremblay", today(), updated=stamp(today(), "09:00:00.000")))
    assert poll_source("clq")["new"] == 1  # baseline
    backend.published[today().isoformat()] = [
        item("M-2026-050001", "Marie Tremblay", today(), updated=stamp(today(), "15:30:12.250")),
        item("M-2026-050001", "Amélie Roy", today(), updated=stamp(today(), "15:30:12.250")),
    ]

    summary = poll_source("clq")
    again = poll_source("clq")

    version = f"{today().isoformat()}T15:30:12.250000+00:00"
    assert (summary["new"], summary["updated"], summary["alerted"]) == (0, 1, 1)
    assert alerted_refs(redis) == [["clq:mandate:M-2026-050001", version, "updated"]]
    assert (again["updated"], again["duplicate"], again["alerted"]) == (0, 1, 0)
    event = stored(redis, settings, "M-2026-050001")
    assert event is not None and event.lobbyists == ("Marie Tremblay", "Amélie Roy")


def test_the_first_poll_is_silent_and_a_new_mandate_alerts_once(
        redis: Redis, make_settings: MakeSettings, backend: ClqBackend) -> None:
    """The first poll records the last two weeks' mandates without alerting; a mandate published afterwards
    alerts once, and not again when its day is re-read."""
    settings = clq_settings(make_settings, backend)
    backend.publish(today() - timedelta(days=6), *recorded_items(today() - timedelta(days=6)))
    backend.publish(today() - timedelta(days=1), item("M-2026-049900", "Luc Gagnon", today() - timedelta(days=1)))

    first = poll_source("clq")
    backend.publish(today(), item("M-2026-050100", "Sophie Lavoie", today(), enterprise="Énergir"))
    second = poll_source("clq")
    third = poll_source("clq")

    assert (first["new"], first["alerted"], first["baseline"]) == (3, 0, 3)
    assert (second["new"], second["alerted"]) == (1, 1)
    assert alerted_refs(redis) == [["clq:mandate:M-2026-050100", stamp(today()).replace("Z", "000+00:00"), "new"]]
    assert (third["new"], third["duplicate"], third["alerted"]) == (0, 1, 0)
    event = stored(redis, settings, "M-2026-050100")
    assert event is not None and event.organization == "Énergir"


def test_a_backlog_cut_by_the_time_budget_stays_a_silent_baseline(
        redis: Redis, make_settings: MakeSettings, backend: ClqBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first poll that runs out of time asks for a follow-up, and the mandates its follow-ups read are still part
    of the silent baseline: adding the source never floods a channel."""
    monkeypatch.setattr(clq, "TIME_BUDGET_SECONDS", 0.5)
    backend.delay = 0.08  # ~6 days a poll: the two weeks take three polls
    settings = clq_settings(make_settings, backend)
    for back in range(clq.FIRST_POLL_DAYS + 1):
        day = today() - timedelta(days=back)
        backend.publish(day, item(f"M-2026-0{60000 + back}", "Marie Tremblay", day))

    summaries = [poll_source("clq")]
    assert rq.Queue("poll", connection=redis).job_ids == ["poll-clq-more"]
    assert not saved_state(redis, settings).endpoints["mandates"].baseline_done
    while saved_state(redis, settings).endpoints["mandates"].memo.get("through") != today().isoformat():
        assert len(summaries) < 15, summaries
        summaries.append(poll_source("clq"))

    assert sum(summary["new"] for summary in summaries) == clq.FIRST_POLL_DAYS + 1
    assert sum(summary["alerted"] for summary in summaries) == 0
    assert alerted_refs(redis) == []
    endpoint = saved_state(redis, settings).endpoints["mandates"]
    assert endpoint.baseline_done and endpoint.status == "ok"


# --- bad input ---------------------------------------------------------------------------------------------


BAD_ANSWERS = {
    "html error page": ((200, "text/html; charset=utf-8", b"<!DOCTYPE html><html><head><title>Erreur</title></head>"
                                                         b"<body><h1>Service indisponible</h1></body></html>"),
                        "not JSON"),
    "truncated json": ((200, "application/json", payload(RECORDED)[:700]), "not JSON"),
    "items not a list": ((200, "application/json", b'{"items": "oops", "total": 3}'), "without a list of items"),
}


@pytest.mark.parametrize("bad", list(BAD_ANSWERS))
def test_a_broken_answer_fails_the_source_with_a_clear_reason(
        redis: Redis, make_settings: MakeSettings, backend: ClqBackend, bad: str) -> None:
    """An HTML error page, truncated JSON, or `items` that is not a list makes the source `failing` with a clear
    reason, while the mandates of the days read before it are recorded and the next try resumes there."""
    settings = clq_settings(make_settings, backend)
    good_day, bad_day = today() - timedelta(days=5), today() - timedelta(days=4)
    backend.publish(good_day, *recorded_items(good_day))
    backend.broken[bad_day.isoformat()], reason = BAD_ANSWERS[bad]

    summary = poll_source("clq")

    assert (summary["status"], summary["new"]) == ("failing", 2)
    endpoint = saved_state(redis, settings).endpoints["mandates"]
    assert endpoint.status == "failing" and reason in endpoint.reason and endpoint.action
    assert endpoint.memo["through"] == good_day.isoformat()
    assert backend.days_asked()[-1] == bad_day.isoformat()
    assert stored(redis, settings, CONSULTANT) is not None


def test_an_item_without_a_declaration_number_is_skipped_and_counted(
        redis: Redis, make_settings: MakeSettings, backend: ClqBackend) -> None:
    """An item with no declarationNo (or one that is not an object) is skipped and counted in the health, and
    the other mandates of its day are recorded."""
    settings = clq_settings(make_settings, backend)
    day = today() - timedelta(days=2)
    nameless = item("", "Marie Tremblay", day)
    missing = item("M-2026-049999", "Luc Gagnon", day)
    del missing["declarationNo"]
    backend.publish(day, *recorded_items(day), nameless, missing, "oops")

    summary = poll_source("clq")

    assert (summary["status"], summary["skipped"], summary["new"]) == ("ok", 3, 2)
    endpoint = saved_state(redis, settings).endpoints["mandates"]
    assert (endpoint.skipped_last, endpoint.skipped_total) == (3, 3)
    assert stored(redis, settings, IN_HOUSE) is not None


# --- lobbybot import ---------------------------------------------------------------------------------------


def test_import_clq_loads_a_saved_search_response(redis: Redis, make_settings: MakeSettings, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot import clq FILE.json` records the mandates of a saved search response, silently, and says how
    many it read."""
    settings = make_settings(retention_days=36500)
    path = tmp_path / RECORDED
    path.write_bytes(payload(RECORDED))

    assert main(["import", "clq", str(path)]) == 0

    captured = capsys.readouterr()
    assert f"import clq: {RECORDED}: 2 records read, 0 skipped" in captured.err
    assert "2 new" in captured.out and "0 alerted" in captured.out
    event = stored(redis, settings, CONSULTANT)
    assert event is not None and len(event.lobbyists) == 3


def test_import_clq_of_a_non_json_file_prints_one_error_line(
        redis: Redis, make_settings: MakeSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot import clq` of a file that is not JSON exits non-zero with one clear line and records nothing."""
    settings = make_settings()
    path = tmp_path / "recherche-mandats.json"
    path.write_text("<!DOCTYPE html><html><body>Carrefour Lobby Québec</body></html>", encoding="utf-8")

    code = main(["import", "clq", str(path)])

    lines = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith("lobbybot import: ") and "not JSON" in lines[0]
    assert not redis.keys(f"{settings.redis_prefix}event:*")

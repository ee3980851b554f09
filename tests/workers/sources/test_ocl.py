"""The `ocl` source: the federal Registry of Lobbyists' weekly ZIPs and recent export, read from real-format
files and polled from a feed server on 127.0.0.1 (CKAN, the ZIP host and the recent export all faked there)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import rq
from redis import Redis

from bot.cli import main
from tests.ocl_exports import (
    COMM_DPOH,
    COMM_PRIMARY,
    REG_PRIMARY,
    communications_zip,
    days_ago,
    official,
    recent_csv,
    recent_rows,
    registration,
    registrations_zip,
    report,
    subject_new,
    subject_old,
)
from tests.records import alerted_refs, by_id, load_saved, source_state, stored
from tests.wire import FeedServer, payload
from workers.events import Event, Official
from workers.health import SourceState, StateStore
from workers.jobs import poll_source
from workers.settings import Settings
from workers.sources.ocl import OclSource

MakeSettings = Callable[..., Settings]

# open.canada.ca catalogue records (registries.md §1.1)
COMM_DATASET, COMM_RESOURCE = "a34eb330-7136-4f5e-9f5f-3ba41df58b06", "fb2843fb-f5a7-4e4c-92ea-004e65313fe9"
REG_DATASET, REG_RESOURCE = "70ef2117-1095-4d77-80eb-b87f2bada2a4", "ab35c449-ef35-40cf-bf96-0b0589c1eba5"
CKAN_PATH = "/data/en/api/3/action/package_show"
COMM_PATH = "/media/mqbbmaqk/communications_ocl_cal.zip"
REG_PATH = "/media/zwcjycef/registrations_enregistrements_ocl_cal.zip"
RECENT_PATH = "/app/secure/ocl/lrs/do/rcntCmLgs"
ZIP_TYPE = "application/zip"
CSV_TYPE = "text/csv; charset=utf-8"
CHALLENGE_HEADERS = {"cf-mitigated": "challenge", "server": "cloudflare"}


# --- helpers -----------------------------------------------------------------------------------------------


def ckan_package(resource_id: str, url: str) -> bytes:
    """A CKAN `package_show` answer whose resource `resource_id` points at `url` (beside an unrelated one)."""
    return json.dumps({"success": True, "result": {"resources": [
        {"id": "00000000-0000-0000-0000-000000000000", "format": "PDF", "url": "https://example.org/dictionary.pdf"},
        {"id": resource_id, "format": "ZIP", "url": url},
    ]}}).encode()


def serve_registry(feed_server: FeedServer, make_settings: MakeSettings, *, comms: bytes | None = None,
                   regs: bytes | None = None, recent: bytes | None = None, ckan: bool = True,
                   **overrides: object) -> Settings:
    """Serve the whole registry on the feed server (CKAN records pointing at both ZIPs, the ZIPs, the recent
    export; empty valid files unless given) and configure settings (the ocl source enabled) whose every OCL URL
    points there."""
    feed_server.serve(COMM_PATH, comms if comms is not None else communications_zip(), content_type=ZIP_TYPE)
    feed_server.serve(REG_PATH, regs if regs is not None else registrations_zip(), content_type=ZIP_TYPE)
    feed_server.serve(RECENT_PATH, recent if recent is not None else recent_csv([]), content_type=CSV_TYPE)
    if ckan:
        serve_ckan(feed_server, COMM_DATASET, COMM_RESOURCE, feed_server.url(COMM_PATH))
        serve_ckan(feed_server, REG_DATASET, REG_RESOURCE, feed_server.url(REG_PATH))
    urls: dict[str, object] = {
        "sources": ["ocl"], "ckan_url": feed_server.url(CKAN_PATH),
        "ocl_communications_url": feed_server.url(COMM_PATH), "ocl_registrations_url": feed_server.url(REG_PATH),
        "ocl_recent_url": feed_server.url(RECENT_PATH)}
    return make_settings(**{**urls, **overrides})


def serve_ckan(feed_server: FeedServer, dataset: str, resource: str, url: str) -> None:
    feed_server.serve(f"{CKAN_PATH}?id={dataset}", ckan_package(resource, url), content_type="application/json")


def load(settings: Settings, tmp_path: Path, data: bytes, name: str = "export.zip") -> tuple[list[Event], int]:
    """The events `lobbybot import ocl` reads from `data` saved as `name`, and the rows it skipped."""
    return load_saved(OclSource(settings), tmp_path, data, name)


def saved_state(redis: Redis, settings: Settings) -> SourceState:
    return source_state(redis, settings, "ocl")


def deliver_queue(redis: Redis) -> rq.Queue:
    return rq.Queue("deliver", connection=redis)



def methods(feed_server: FeedServer, path: str) -> list[str]:
    return [seen.method for seen in feed_server.hits(path)]


def utc(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def two_reports() -> bytes:
    """A communications ZIP with reports 698001 and 698002."""
    return communications_zip(
        reports=[report("698001"), report("698002", org_en="Northern Rail Corp.")],
        officials=[official("698001"), official("698002", last="Roy", first="Anne", title="Director",
                                                 institution="Transport Canada (TC)")])


# --- parsing the communications ZIP ------------------------------------------------------------------------


def test_a_communication_report_becomes_an_event_with_its_officials_subjects_and_link(
        make_settings: MakeSettings, tmp_path: Path) -> None:
    """A report is `ocl:comm:<COMLOG_ID>` with both organisation names, the registrant, the officials met, their
    institutions, subjects labelled in English, meeting and posting dates, and the public record's link."""
    data = communications_zip(
        reports=[report("698001", org_en="Example Energy Inc.", org_fr="Énergie Exemple inc.",
                        registrant_first="JULIE", registrant_last="TREMBLAY", comm_date="2026-05-12",
                        posted="2026-06-12")],
        officials=[official("698001", last="Doe", first="Pat", title="Member of Parliament",
                            institution="House of Commons"),
                   official("698001", last="Singh", first="Ravi", title="Senior Policy Advisor",
                            branch="Office of the Minister",
                            institution="Innovation, Science and Economic Development Canada (ISED)")],
        subjects_new=[subject_new("698001", ["SMT-8", "SMT-17"])])

    [event] = load(make_settings(), tmp_path, data)[0]

    assert event.id == "ocl:comm:698001"
    assert (event.source, event.kind, event.version) == ("ocl", "communication", "698001")
    assert event.organization == "Example Energy Inc."
    assert event.organization_fr == "Énergie Exemple inc."
    assert event.registrant == "Julie Tremblay"
    assert event.officials == (
        Official(name="Pat Doe", title="Member of Parliament", institution="House of Commons"),
        Official(name="Ravi Singh", title="Senior Policy Advisor",
                 institution="Innovation, Science and Economic Development Canada (ISED)"))
    assert event.institutions == ("House of Commons", "Innovation, Science and Economic Development Canada (ISED)")
    assert event.subjects == ("Energy", "Government Procurement")
    assert event.occurred_at == utc("2026-05-12")
    assert event.published_at == utc("2026-06-12")
    assert event.supersedes is None
    assert event.url == "https://lobbycanada.gc.ca/app/secure/ocl/lrs/do/cmmLgPblcVw?comlogId=698001"
    assert "Example Energy Inc." in event.title


def test_subjects_are_read_from_both_subject_files_without_repeats(make_settings: MakeSettings,
                                                                   tmp_path: Path) -> None:
    """Subjects come from the older per-code file and the newer comma-list file alike, each code once per report."""
    data = communications_zip(
        reports=[report("615000"), report("620000"), report("700000")],
        officials=[official("615000"), official("620000"), official("700000")],
        subjects_old=[subject_old("615000", "SMT-12", "Environment"), subject_old("620000", "SMT-8"),
                      subject_old("620000", "SMT-17")],
        subjects_new=[subject_new("620000", ["SMT-17", "SMT-20"]), subject_new("700000", ["SMT-8", "SMT-20"])])

    events = by_id(load(make_settings(), tmp_path, data)[0])

    assert events["ocl:comm:615000"].subjects == ("Environment",)  # older file only (before Oct 2024)
    assert events["ocl:comm:620000"].subjects == ("Energy", "Government Procurement", "Industry")  # overlap
    assert events["ocl:comm:700000"].subjects == ("Energy", "Industry")  # newer file only
    assert "Subjects: Energy, Industry." in events["ocl:comm:700000"].summary


def test_null_cells_are_empty_and_other_institution_stands_in(make_settings: MakeSettings, tmp_path: Path) -> None:
    """The literal `null` reads as empty, never as the word; an official with no INSTITUTION shows the free-text one."""
    data = communications_zip(
        reports=[report("698001", org_fr=None, previous=None)],
        officials=[official("698001", last="Côté", first="Luc", title=None, institution=None,
                            other_institution="Canada Infrastructure Bank")])

    [event] = load(make_settings(), tmp_path, data)[0]

    assert event.organization_fr == ""
    assert event.supersedes is None
    assert event.officials == (Official(name="Luc Côté", title="", institution="Canada Infrastructure Bank"),)
    assert "null" not in json.dumps(event.model_dump(mode="json", exclude_none=True)).lower()


# --- encodings ---------------------------------------------------------------------------------------------


def test_bom_prefixed_utf8_files_are_read_with_clean_headers(make_settings: MakeSettings, tmp_path: Path) -> None:
    """Files starting with a UTF-8 BOM read like any other: the first column is found and accents survive."""
    data = communications_zip(
        reports=[report("698001", org_en="Hydro-Québec", org_fr="Hydro-Québec")],
        officials=[official("698001", last="Bélanger", first="Hélène", title="Sous-ministre adjointe",
                            institution="Ressources naturelles Canada (RNCan)")],
        subjects_new=[subject_new("698001", ["SMT-8"])], bom=True)

    [event] = load(make_settings(), tmp_path, data)[0]

    assert event.id == "ocl:comm:698001"
    assert event.organization == "Hydro-Québec"
    assert event.officials[0].name == "Hélène Bélanger"
    assert event.subjects == ("Energy",)


def test_cp1252_files_are_read_correctly(make_settings: MakeSettings, tmp_path: Path) -> None:
    """A cp1252 registrations file ("Ltée"), even one behind a BOM, and a cp1252 communications file are decoded
    as cp1252, not mangled into replacement characters."""
    settings = make_settings()
    regs = registrations_zip(
        registrations=[registration("900001", "778218-6527-1", client="Les brasseries Sleeman Ltée",
                                    client_fr="Les brasseries Sleeman Ltée")],
        institutions=[("900001", "Santé Canada (SC)")],
        encoding={REG_PRIMARY: "cp1252"}, bom={REG_PRIMARY})
    comms = communications_zip(
        reports=[report("698001", org_en="Les brasseries Sleeman Ltée")],
        officials=[official("698001", title="Conseillère politique", institution="Santé Canada (SC)")],
        encoding="cp1252")

    [registration_event] = load(settings, tmp_path, regs, "regs.zip")[0]
    [communication] = load(settings, tmp_path, comms, "comms.zip")[0]

    assert registration_event.id == "ocl:reg:778218-6527"  # found through the cleaned "ï»¿REG_ID_ENR" header
    assert registration_event.organization == "Les brasseries Sleeman Ltée"
    assert registration_event.institutions == ("Santé Canada (SC)",)
    assert communication.organization == "Les brasseries Sleeman Ltée"
    assert communication.officials[0].title == "Conseillère politique"
    assert "\ufffd" not in registration_event.model_dump_json() + communication.model_dump_json()


# --- bad rows ----------------------------------------------------------------------------------------------


def malformed_communications() -> bytes:
    """Two good reports, then: a row with too few columns, a bad date, an unknown subject code, a short DPOH row."""
    return communications_zip(
        reports=[report("698001"), report("698002"), report("698003", comm_date="2026-13-45")],
        officials=[official("698001"), official("698002")],
        subjects_old=[subject_old("698001", "SMT-8"), subject_old("698001", "SMT-999")],
        extra_rows={COMM_PRIMARY: ['"698004","354912","Broken Row Inc."'], COMM_DPOH: ['"698002","Doe"']})


def test_malformed_rows_and_unknown_subject_codes_are_skipped_and_counted(make_settings: MakeSettings,
                                                                          tmp_path: Path) -> None:
    """A row with the wrong column count or a bad date is skipped, an unknown subject code dropped; each is
    counted, and the rest of the file is read."""
    events, skipped = load(make_settings(), tmp_path, malformed_communications())

    assert sorted(event.id for event in events) == ["ocl:comm:698001", "ocl:comm:698002"]
    assert by_id(events)["ocl:comm:698001"].subjects == ("Energy",)
    assert skipped == 4


def test_skipped_rows_show_in_the_endpoint_health_after_a_poll(
        redis: Redis, make_settings: MakeSettings, feed_server: FeedServer) -> None:
    """After a poll the skipped rows are counted in the communications endpoint's health, with the reasons, while
    the good rows are ingested."""
    settings = serve_registry(feed_server, make_settings, comms=malformed_communications())

    summary = poll_source("ocl")

    assert summary["status"] == "ok"
    assert summary["skipped"] == 4
    assert summary["new"] == 2
    endpoint = saved_state(redis, settings).endpoints["communications"]
    assert (endpoint.skipped_last, endpoint.skipped_total) == (4, 4)
    assert "bad date" in endpoint.reason and "unknown subject code" in endpoint.reason
    assert stored(redis, settings, "ocl:comm:698002") is not None


# --- amendments --------------------------------------------------------------------------------------------


def test_an_amendment_of_a_known_report_is_updated_not_a_second_new_report(
        redis: Redis, make_settings: MakeSettings, feed_server: FeedServer) -> None:
    """A report whose PREV_COMLOG_ID_PRECEDNT names a report already ingested is an update of it (alerted as such),
    not a second new report."""
    serve_registry(feed_server, make_settings, comms=two_reports())
    assert poll_source("ocl")["new"] == 2  # baseline
    amended = communications_zip(  # the export keeps current versions only: 698001 is replaced
        reports=[report("698002", org_en="Northern Rail Corp."), report("698050", previous="698001")],
        officials=[official("698002"), official("698050")])
    feed_server.serve(COMM_PATH, amended, content_type=ZIP_TYPE)

    summary = poll_source("ocl")

    assert (summary["new"], summary["updated"], summary["duplicate"]) == (0, 1, 1)
    assert summary["alerted"] == 1
    assert alerted_refs(redis) == [["ocl:comm:698050", "698050", "updated"]]


def test_an_amendment_whose_predecessor_is_unknown_is_new_and_names_it(
        redis: Redis, make_settings: MakeSettings, feed_server: FeedServer) -> None:
    """With the report it replaces never seen, an amendment is a new record that still says what it supersedes."""
    settings = serve_registry(feed_server, make_settings)
    poll_source("ocl")  # baseline of empty exports
    amended = communications_zip(reports=[report("698050", previous="698001")], officials=[official("698050")])
    feed_server.serve(COMM_PATH, amended, content_type=ZIP_TYPE)

    summary = poll_source("ocl")

    assert (summary["new"], summary["updated"], summary["alerted"]) == (1, 0, 1)
    event = stored(redis, settings, "ocl:comm:698050")
    assert event is not None and event.supersedes == "ocl:comm:698001"


# --- registrations -----------------------------------------------------------------------------------------


def test_each_registration_is_one_event_from_its_latest_version(make_settings: MakeSettings, tmp_path: Path) -> None:
    """A registration is `ocl:reg:<number without -N>`, read from its latest version by effective date (even when
    the suffix says otherwise), with that version's REG_ID_ENR as its version; in force means active."""
    data = registrations_zip(registrations=[
        registration("900001", "778218-6527-1", effective="2025-01-15"),
        registration("900003", "778218-6527-3", effective="2025-03-01", previous="900001"),
        registration("900002", "778218-6527-2", effective="2025-06-01", previous="900003",
                     client="Example Energy Inc. (renamed)"),
        registration("910001", "775615-4611-1", reg_type="1", client="Harris/SolaCom ATC Solutions",
                     firm="Waldrum & Associates", registrant_first="ALEXANDER", registrant_last="WALDRUM"),
    ], institutions=[("900002", "House of Commons")])

    events = by_id(load(make_settings(), tmp_path, data)[0])

    assert sorted(events) == ["ocl:reg:775615-4611", "ocl:reg:778218-6527"]
    chain = events["ocl:reg:778218-6527"]
    assert (chain.kind, chain.version, chain.status, chain.end_date) == ("registration", "900002", "active", None)
    assert chain.organization == "Example Energy Inc. (renamed)"
    assert chain.occurred_at == utc("2025-06-01")
    assert chain.registrant == "Marie Gagnon"
    assert chain.institutions == ("House of Commons",)
    assert chain.url == "https://lobbycanada.gc.ca/app/secure/ocl/lrs/do/vwRg?cno=6527&regId=900002"
    consultant = events["ocl:reg:775615-4611"]
    assert consultant.registrant == "Alexander Waldrum"
    assert "consultant" in consultant.title and "Waldrum & Associates" in consultant.title


def test_a_registration_with_an_end_date_is_terminated(make_settings: MakeSettings, tmp_path: Path) -> None:
    """A latest version with END_DATE_FIN is `terminated` on that date, and its summary says so."""
    data = registrations_zip(registrations=[
        registration("900001", "778218-6527-1", effective="2025-01-15"),
        registration("900002", "778218-6527-2", effective="2025-02-01", end="2025-09-30", previous="900001"),
    ])

    [event] = load(make_settings(), tmp_path, data)[0]

    assert (event.version, event.status, event.end_date) == ("900002", "terminated", utc("2025-09-30"))
    assert "terminated on 2025-09-30" in event.summary


def test_an_amended_registration_names_the_institutions_added_and_removed(make_settings: MakeSettings,
                                                                          tmp_path: Path) -> None:
    """When the latest version lobbies other institutions than the one before, the summary names those added and
    those removed."""
    data = registrations_zip(
        registrations=[registration("900001", "778218-6527-1", effective="2025-01-15"),
                       registration("900002", "778218-6527-2", effective="2025-06-01", previous="900001")],
        institutions=[("900001", "House of Commons"), ("900001", "Health Canada (HC)"),
                      ("900002", "House of Commons"), ("900002", "Finance Canada (FIN)")],
        subjects=[("900001", "SMT-8"), ("900002", "SMT-8"), ("900002", "SMT-17")])

    [event] = load(make_settings(), tmp_path, data)[0]

    assert "institutions added: Finance Canada (FIN)" in event.summary
    assert "institutions removed: Health Canada (HC)" in event.summary
    assert "subjects added: Government Procurement" in event.summary
    assert "amended" in event.title
    assert event.institutions == ("House of Commons", "Finance Canada (FIN)")


def test_a_new_registration_version_in_a_later_poll_is_updated(
        redis: Redis, make_settings: MakeSettings, feed_server: FeedServer) -> None:
    """A registration seen in one week's ZIP that has a new version in the next is an update, alerted once."""
    first = [registration("900001", "778218-6527-1", effective=days_ago(300))]
    settings = serve_registry(feed_server, make_settings, regs=registrations_zip(registrations=first))
    assert poll_source("ocl")["new"] == 1
    second = [*first, registration("900002", "778218-6527-2", effective=days_ago(3), previous="900001")]
    feed_server.serve(REG_PATH, registrations_zip(registrations=second), content_type=ZIP_TYPE)

    summary = poll_source("ocl")

    assert (summary["new"], summary["updated"], summary["alerted"]) == (0, 1, 1)
    assert alerted_refs(redis) == [["ocl:reg:778218-6527", "900002", "updated"]]
    event = stored(redis, settings, "ocl:reg:778218-6527")
    assert event is not None and event.version == "900002"


# --- retention ---------------------------------------------------------------------------------------------


def test_records_older_than_retention_are_expired_but_registrations_in_force_are_kept(
        redis: Redis, make_settings: MakeSettings, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """With LOBBYBOT_RETENTION_DAYS=730 a report posted three years ago is neither stored nor alerted, while a
    registration first posted five years ago but still in force is kept and alerted."""
    monkeypatch.setenv("LOBBYBOT_RETENTION_DAYS", "730")
    settings = serve_registry(feed_server, make_settings)
    assert settings.retention_days == 730
    poll_source("ocl")  # baseline of empty exports
    three_years = 3 * 365
    feed_server.serve(COMM_PATH, communications_zip(
        reports=[report("500001", comm_date=days_ago(three_years + 30), submitted=days_ago(three_years + 2),
                        posted=days_ago(three_years))],
        officials=[official("500001")]), content_type=ZIP_TYPE)
    feed_server.serve(REG_PATH, registrations_zip(registrations=[
        registration("800001", "770001-1111-1", effective=days_ago(5 * 365)),
        registration("800002", "770002-2222-1", effective=days_ago(5 * 365), end=days_ago(three_years)),
    ]), content_type=ZIP_TYPE)

    summary = poll_source("ocl")

    assert (summary["expired"], summary["new"], summary["alerted"]) == (2, 1, 1)
    assert stored(redis, settings, "ocl:comm:500001") is None
    assert stored(redis, settings, "ocl:reg:770002-2222") is None
    assert stored(redis, settings, "ocl:reg:770001-1111") is not None
    assert alerted_refs(redis) == [["ocl:reg:770001-1111", "800001", "new"]]


# --- polling over HTTP -------------------------------------------------------------------------------------


def test_zip_urls_are_resolved_through_ckan(redis: Redis, make_settings: MakeSettings,
                                           feed_server: FeedServer) -> None:
    """The download URLs come from open.canada.ca's package_show records (the media path rotates), not the
    hard-coded fallbacks."""
    comms_url = feed_server.serve("/media/rotated1/communications_ocl_cal.zip", two_reports(),
                                  content_type=ZIP_TYPE)
    regs_url = feed_server.serve("/media/rotated2/registrations_enregistrements_ocl_cal.zip",
                                 registrations_zip(registrations=[registration("900001", "778218-6527-1")]),
                                 content_type=ZIP_TYPE)
    serve_ckan(feed_server, COMM_DATASET, COMM_RESOURCE, comms_url)
    serve_ckan(feed_server, REG_DATASET, REG_RESOURCE, regs_url)
    feed_server.serve(RECENT_PATH, recent_csv([]), content_type=CSV_TYPE)
    make_settings(sources=["ocl"], ckan_url=feed_server.url(CKAN_PATH),
                  ocl_communications_url=feed_server.url("/old/comms.zip"),
                  ocl_registrations_url=feed_server.url("/old/regs.zip"), ocl_recent_url=feed_server.url(RECENT_PATH))

    summary = poll_source("ocl")

    assert summary["status"] == "ok"
    assert summary["new"] == 3
    assert [s.method for s in feed_server.hits(f"{CKAN_PATH}?id={COMM_DATASET}")] == ["GET"]
    assert [s.method for s in feed_server.hits(f"{CKAN_PATH}?id={REG_DATASET}")] == ["GET"]
    assert methods(feed_server, "/media/rotated1/communications_ocl_cal.zip") == ["HEAD", "GET"]
    assert methods(feed_server, "/media/rotated2/registrations_enregistrements_ocl_cal.zip") == ["HEAD", "GET"]
    assert feed_server.hits("/old/comms.zip") == [] and feed_server.hits("/old/regs.zip") == []


def test_when_ckan_fails_the_urls_of_the_settings_are_used(redis: Redis, make_settings: MakeSettings,
                                                           feed_server: FeedServer) -> None:
    """A CKAN that answers 404 does not stop the poll: the ZIPs are fetched from the configured fallback URLs."""
    serve_registry(feed_server, make_settings, comms=two_reports(), ckan=False)

    summary = poll_source("ocl")

    assert len(feed_server.hits(f"{CKAN_PATH}?id={COMM_DATASET}")) == 1  # asked, and answered 404
    assert summary["status"] == "ok"
    assert summary["new"] == 2
    assert methods(feed_server, COMM_PATH) == ["HEAD", "GET"]
    assert methods(feed_server, REG_PATH) == ["HEAD", "GET"]


def test_a_zip_url_gone_404_is_resolved_again_through_ckan(redis: Redis, make_settings: MakeSettings,
                                                           feed_server: FeedServer) -> None:
    """When the resolved ZIP URL answers 404 (the media path rotated), the endpoint fails and its next attempt
    asks CKAN again instead of reusing the cached URL for the rest of the week."""
    settings = serve_registry(feed_server, make_settings, comms=two_reports())
    poll_source("ocl")
    feed_server.serve(COMM_PATH, b"", status=404, content_type="text/html")
    next_week = communications_zip(reports=[report("698001"), report("698002"), report("698003")],
                                   officials=[official("698001"), official("698002"), official("698003")])
    moved = feed_server.serve("/media/moved/communications_ocl_cal.zip", next_week, content_type=ZIP_TYPE)
    serve_ckan(feed_server, COMM_DATASET, COMM_RESOURCE, moved)
    assert poll_source("ocl")["status"] == "failing"
    state = saved_state(redis, settings)
    state.endpoints["communications"].retry_at = datetime.now(UTC) - timedelta(seconds=1)  # the backoff passed
    StateStore(redis, settings.redis_prefix).save(state)

    summary = poll_source("ocl")

    assert summary["status"] == "ok"
    assert methods(feed_server, "/media/moved/communications_ocl_cal.zip") == ["HEAD", "GET"]
    assert (summary["new"], summary["duplicate"]) == (1, 2)


def test_the_first_poll_is_a_silent_baseline(redis: Redis, make_settings: MakeSettings,
                                             feed_server: FeedServer) -> None:
    """The first poll records every report and registration and alerts nothing."""
    settings = serve_registry(feed_server, make_settings, comms=two_reports(), regs=registrations_zip(
        registrations=[registration("900001", "778218-6527-1")]))

    summary = poll_source("ocl")

    assert (summary["new"], summary["alerted"], summary["baseline"]) == (3, 0, 3)
    assert deliver_queue(redis).count == 0
    assert stored(redis, settings, "ocl:comm:698001") is not None
    assert stored(redis, settings, "ocl:reg:778218-6527") is not None


def test_an_unchanged_week_costs_one_head_per_zip(redis: Redis, make_settings: MakeSettings,
                                                  feed_server: FeedServer) -> None:
    """When nothing changed, the next poll sends a conditional HEAD for each ZIP and downloads neither again."""
    serve_registry(feed_server, make_settings, comms=two_reports())
    poll_source("ocl")
    feed_server.requests.clear()

    summary = poll_source("ocl")

    assert methods(feed_server, COMM_PATH) == ["HEAD"]
    assert methods(feed_server, REG_PATH) == ["HEAD"]
    assert "if-none-match" in feed_server.hits(COMM_PATH)[0].headers
    assert not any(seen.path.startswith(CKAN_PATH) for seen in feed_server.requests)  # resolved URL cached
    assert (summary["status"], summary["not_modified"], summary["new"], summary["alerted"]) == ("ok", 2, 0, 0)


def test_a_host_without_etag_is_compared_by_last_modified_and_size(redis: Redis, make_settings: MakeSettings,
                                                                   feed_server: FeedServer) -> None:
    """Without an ETag, an unchanged Last-Modified and Content-Length also mean no second download."""
    serve_registry(feed_server, make_settings)
    stamp = {"Last-Modified": "Sun, 22 Nov 2026 06:00:00 GMT"}
    feed_server.serve(COMM_PATH, two_reports(), content_type=ZIP_TYPE, etag=False, headers=stamp)
    poll_source("ocl")
    feed_server.requests.clear()

    poll_source("ocl")

    assert methods(feed_server, COMM_PATH) == ["HEAD"]


def test_a_changed_zip_with_one_new_report_alerts_exactly_once(redis: Redis, make_settings: MakeSettings,
                                                               feed_server: FeedServer) -> None:
    """Next week's ZIP holding one more report is downloaded again and alerts that report alone."""
    serve_registry(feed_server, make_settings, comms=two_reports())
    poll_source("ocl")
    next_week = communications_zip(
        reports=[report("698001"), report("698002", org_en="Northern Rail Corp."), report("698003")],
        officials=[official("698001"), official("698002"), official("698003")])
    feed_server.serve(COMM_PATH, next_week, content_type=ZIP_TYPE)
    feed_server.requests.clear()

    summary = poll_source("ocl")

    assert methods(feed_server, COMM_PATH) == ["HEAD", "GET"]
    assert (summary["new"], summary["duplicate"], summary["alerted"]) == (1, 2, 1)
    assert deliver_queue(redis).count == 1
    assert alerted_refs(redis) == [["ocl:comm:698003", "698003", "new"]]


# --- blocked, broken and dropped files ---------------------------------------------------------------------


@pytest.mark.parametrize("blocked", ["403 challenge", "200 Just a moment page"])
def test_a_bot_challenge_makes_the_source_blocked_with_what_to_do(
        redis: Redis, make_settings: MakeSettings, feed_server: FeedServer, capsys: pytest.CaptureFixture[str],
        blocked: str) -> None:
    """A Cloudflare challenge (403 with cf-mitigated, or a 200 'Just a moment...' page) is `blocked`, with the
    action of importing or dropping a browser-downloaded ZIP; it is never shown as ok with no new records."""
    settings = serve_registry(feed_server, make_settings)
    for path in (COMM_PATH, REG_PATH):
        if blocked == "403 challenge":
            feed_server.serve(path, payload("cf_challenge.html"), status=403, content_type="text/html",
                              headers=CHALLENGE_HEADERS)
        else:
            feed_server.serve(path, payload("cf_challenge.html"), content_type="text/html; charset=UTF-8")

    summary = poll_source("ocl")

    assert summary["status"] == "blocked"
    assert summary["new"] == 0
    state = saved_state(redis, settings)
    for key in ("communications", "registrations"):
        endpoint = state.endpoints[key]
        assert endpoint.status == "blocked"
        assert not endpoint.baseline_done
        assert "lobbybot import ocl" in endpoint.action and "LOBBYBOT_OCL_DROP_DIR" in endpoint.action
    assert main(["sources"]) == 0
    out = capsys.readouterr().out
    [ocl_line] = [line for line in out.splitlines() if line.startswith("ocl ")]
    assert ocl_line.split()[1] == "blocked"
    assert "lobbybot import ocl" in out and "LOBBYBOT_OCL_DROP_DIR" in out
    assert "- blocked   communications" in out and "- blocked   registrations" in out


def test_a_challenged_recent_export_is_blocked_while_the_zips_stay_ok(
        redis: Redis, make_settings: MakeSettings, feed_server: FeedServer) -> None:
    """A bot challenge on the recent export makes that endpoint (and so the source) `blocked`, not an empty ok
    answer, while the weekly ZIPs are still read."""
    settings = serve_registry(feed_server, make_settings, comms=two_reports())
    feed_server.serve(RECENT_PATH, payload("cf_challenge.html"), status=403, content_type="text/html",
                      headers=CHALLENGE_HEADERS)

    summary = poll_source("ocl")

    assert (summary["status"], summary["new"]) == ("blocked", 2)
    endpoints = saved_state(redis, settings).endpoints
    assert endpoints["recent"].status == "blocked" and endpoints["recent"].action
    assert endpoints["communications"].status == endpoints["registrations"].status == "ok"


@pytest.mark.parametrize("what", ["html saved as zip", "truncated zip"])
def test_importing_a_broken_file_prints_one_error_line(
        redis: Redis, make_settings: MakeSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        what: str) -> None:
    """`lobbybot import ocl` of a challenge page saved as .zip, or of a ZIP cut in half, exits non-zero with one
    clear line on stderr and records nothing."""
    settings = make_settings()
    path = tmp_path / "communications_ocl_cal.zip"
    if what == "html saved as zip":
        path.write_bytes(payload("cf_challenge.html"))
    else:
        whole = communications_zip(reports=[report(str(698000 + i)) for i in range(40)],
                                   officials=[official(str(698000 + i)) for i in range(40)])
        path.write_bytes(whole[: len(whole) // 2])

    code = main(["import", "ocl", str(path)])

    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lobbybot import: ")
    assert ("HTML" in lines[0]) if what == "html saved as zip" else ("truncated" in lines[0])
    assert not redis.keys(f"{settings.redis_prefix}event:*")


def test_a_truncated_zip_over_http_leaves_the_endpoint_failing(
        redis: Redis, make_settings: MakeSettings, feed_server: FeedServer) -> None:
    """A ZIP cut short by the host makes the communications endpoint `failing` (the poll does not crash), and it
    stays failing when retried against the same broken file instead of turning ok with no new records."""
    whole = communications_zip(reports=[report(str(698000 + i)) for i in range(40)],
                               officials=[official(str(698000 + i)) for i in range(40)])
    settings = serve_registry(feed_server, make_settings, comms=whole[: len(whole) // 2])

    summary = poll_source("ocl")

    assert summary["status"] == "failing"
    state = saved_state(redis, settings)
    assert state.endpoints["communications"].status == "failing"
    assert "truncated" in state.endpoints["communications"].reason
    assert state.endpoints["registrations"].status == "ok"

    state.endpoints["communications"].retry_at = datetime.now(UTC) - timedelta(seconds=1)  # the backoff passed
    StateStore(redis, settings.redis_prefix).save(state)
    assert poll_source("ocl")["status"] == "failing"
    assert saved_state(redis, settings).endpoints["communications"].status == "failing"


def test_a_dropped_zip_is_ingested_once_even_while_the_download_is_blocked(
        redis: Redis, make_settings: MakeSettings, feed_server: FeedServer, tmp_path: Path) -> None:
    """A ZIP saved into LOBBYBOT_OCL_DROP_DIR is read by the next poll while the registry refuses us, and not again
    by the poll after."""
    drop = tmp_path / "drop"
    drop.mkdir()
    settings = serve_registry(feed_server, make_settings, ocl_drop_dir=drop)
    for path in (COMM_PATH, REG_PATH):
        feed_server.serve(path, payload("cf_challenge.html"), status=403, content_type="text/html",
                          headers=CHALLENGE_HEADERS)
    assert poll_source("ocl")["status"] == "blocked"
    (drop / "communications_ocl_cal (1).zip").write_bytes(two_reports())

    first = poll_source("ocl")
    second = poll_source("ocl")

    assert first["new"] == 2
    assert stored(redis, settings, "ocl:comm:698002") is not None
    assert (second["new"], second["duplicate"], second["updated"]) == (0, 0, 0)
    assert second["status"] == "blocked"


def test_two_dropped_zips_of_one_kind_are_both_ingested(
        redis: Redis, make_settings: MakeSettings, feed_server: FeedServer, tmp_path: Path) -> None:
    """Two communications ZIPs dropped together are read one per poll, the second by the following poll."""
    drop = tmp_path / "drop"
    drop.mkdir()
    settings = serve_registry(feed_server, make_settings, ocl_drop_dir=drop)
    (drop / "week1.zip").write_bytes(communications_zip(reports=[report("698001")], officials=[official("698001")]))
    (drop / "week2.zip").write_bytes(communications_zip(reports=[report("698002")], officials=[official("698002")]))

    poll_source("ocl")
    poll_source("ocl")
    poll_source("ocl")

    assert stored(redis, settings, "ocl:comm:698001") is not None
    assert stored(redis, settings, "ocl:comm:698002") is not None


# --- lobbybot import ---------------------------------------------------------------------------------------


def test_import_reads_both_kinds_of_zip_whatever_their_names(
        redis: Redis, make_settings: MakeSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot import ocl` recognises a communications and a registrations ZIP by their content, even under
    misleading names, and prints what it read of each and the totals."""
    settings = make_settings()
    comms = tmp_path / "registrations.zip"
    comms.write_bytes(two_reports())
    regs = tmp_path / "download (3)"
    regs.write_bytes(registrations_zip(registrations=[registration("900001", "778218-6527-1")]))

    assert main(["import", "ocl", str(comms), str(regs)]) == 0

    captured = capsys.readouterr()
    assert "import ocl: registrations.zip: 2 records read, 0 skipped" in captured.err
    assert "import ocl: download (3): 1 records read, 0 skipped" in captured.err
    assert "3 new" in captured.out and "0 alerted" in captured.out and "[console:" not in captured.out
    assert stored(redis, settings, "ocl:comm:698001") is not None
    assert stored(redis, settings, "ocl:reg:778218-6527") is not None


def test_import_alert_inline_posts_each_new_record_to_the_console(
        redis: Redis, make_settings: MakeSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot import ocl FILE --alert --inline` prints a console alert for each new record, and none on a
    second import of the same file."""
    make_settings()
    path = tmp_path / "communications_ocl_cal.zip"
    path.write_bytes(two_reports())

    assert main(["import", "ocl", str(path), "--alert", "--inline"]) == 0
    first = capsys.readouterr().out
    assert main(["import", "ocl", str(path), "--alert", "--inline"]) == 0
    second = capsys.readouterr().out

    heads = [line for line in first.splitlines() if line.startswith("[console:alerts] Communication report: ")]
    assert len(heads) == 2
    assert any("Northern Rail Corp." in line for line in heads)
    assert "cmmLgPblcVw?comlogId=698001" in first and "cmmLgPblcVw?comlogId=698002" in first
    assert "2 new" in first and "2 alerted" in first
    assert "[console:" not in second and "2 duplicate" in second


# --- the recent-communications export ----------------------------------------------------------------------


def test_recent_export_rows_are_grouped_into_one_event_per_communication(
        redis: Redis, make_settings: MakeSettings, feed_server: FeedServer) -> None:
    """The recent export's one-row-per-official CSV becomes one event per communication number, COMLOG_ID taken
    after the last '-', with its officials merged; it alerts on a poll after the baseline."""
    settings = serve_registry(feed_server, make_settings)
    poll_source("ocl")  # baseline, empty recent export
    first, second = report("698100", client_num="354912"), report("698101", client_num="10-8842",
                                                                     org_en="Northern Rail Corp.")
    rows = [
        *recent_rows(first, [official("698100"),
                             official("698100", last="Singh", first="Ravi", title="Senior Policy Advisor",
                                      institution="Innovation, Science and Economic Development Canada (ISED)")],
                     ["Energy", "Government Procurement"]),
        *recent_rows(second, [official("698101", last="Roy", first="Anne", title="Director",
                                       institution="Transport Canada (TC)")], ["Transportation"]),
    ]
    feed_server.serve(RECENT_PATH, recent_csv(rows), content_type=CSV_TYPE)

    summary = poll_source("ocl")

    assert (summary["new"], summary["alerted"]) == (2, 2)
    event = stored(redis, settings, "ocl:comm:698100")
    assert event is not None
    assert [o.name for o in event.officials] == ["Pat Doe", "Ravi Singh"]
    assert event.institutions == ("House of Commons", "Innovation, Science and Economic Development Canada (ISED)")
    assert event.subjects == ("Energy", "Government Procurement")
    assert event.registrant == "Julie Tremblay"
    assert event.occurred_at == utc(str(first["COMM_DATE"]))
    other = stored(redis, settings, "ocl:comm:698101")
    assert other is not None and other.organization == "Northern Rail Corp."
    last_request = [seen for seen in feed_server.requests if seen.path.startswith(RECENT_PATH + "?")][-1]
    assert "dateType=4" in last_request.path and "fromDate=" in last_request.path


def test_the_weekly_zip_after_the_recent_export_is_a_duplicate(
        redis: Redis, make_settings: MakeSettings, feed_server: FeedServer) -> None:
    """A report alerted from the recent export is a duplicate when the weekly ZIP brings the same COMLOG_ID."""
    serve_registry(feed_server, make_settings)
    poll_source("ocl")  # baseline
    rows = recent_rows(report("698100"), [official("698100")], ["Energy"])
    feed_server.serve(RECENT_PATH, recent_csv(rows), content_type=CSV_TYPE)
    assert poll_source("ocl")["alerted"] == 1
    feed_server.serve(RECENT_PATH, recent_csv([]), content_type=CSV_TYPE)  # the window moved on
    feed_server.serve(COMM_PATH, communications_zip(reports=[report("698100")], officials=[official("698100")],
                                                    subjects_new=[subject_new("698100", ["SMT-8"])]),
                      content_type=ZIP_TYPE)

    summary = poll_source("ocl")

    assert (summary["new"], summary["duplicate"], summary["alerted"]) == (0, 1, 0)
    assert deliver_queue(redis).count == 1  # the recent export's alert only

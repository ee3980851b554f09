"""The `ocl` source: Canada's federal Registry of Lobbyists (registries.md §1).

Endpoints, each with its own health and baseline:

    communications   the weekly communications ZIP (monthly communication reports, officials, subjects)
    registrations    the weekly registrations ZIP (one row per version; latest version per registration)
    recent           the "recent communications" CSV export, in 14-day chunks, filling the days between ZIPs
    drop             ZIPs a person downloaded by hand into LOBBYBOT_OCL_DROP_DIR

The download URLs are resolved through open.canada.ca's CKAN `package_show` (cached a week; the hard-coded
URLs of the settings are the fallback). An unchanged week costs one HEAD request: the ETag, Last-Modified and
Content-Length are compared with the last download. Downloads stream to a temporary file, never into memory,
and the archive is read row by row while the job ingests it.

Since mid-2026 the registry sits behind a Cloudflare challenge. A 403, a challenge page or an HTML body where a
ZIP was expected makes the endpoint `blocked`, with the action: download the ZIP in a browser, then
`lobbybot import ocl FILE.zip` or drop it into LOBBYBOT_OCL_DROP_DIR. With LOBBYBOT_OCL_IMPERSONATE=true (and
the `lobbybot[impersonate]` extra) downloads go through curl_cffi impersonating a browser.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx

from workers.errors import BlockedSourceError, NotConfiguredError, SourceError, TransientSourceError
from workers.events import Event
from workers.health import EndpointState, SourceState, utcnow
from workers.settings import Settings
from workers.sources import PollResult
from workers.sources.http import check_status, conditional_headers, is_challenge, transport_error
from workers.sources.ocl_files import CsvReader, OclArchive, communication_event, detect_encoding, parse_date

DATASETS = {  # CKAN dataset and resource ids (registries.md §1.1)
    "communications": ("a34eb330-7136-4f5e-9f5f-3ba41df58b06", "fb2843fb-f5a7-4e4c-92ea-004e65313fe9"),
    "registrations": ("70ef2117-1095-4d77-80eb-b87f2bada2a4", "ab35c449-ef35-40cf-bf96-0b0589c1eba5"),
}
RESOLVE_EVERY = timedelta(days=7)
RECENT_CHUNK_DAYS = 14
RECENT_FIRST_DAYS = 14
BLOCKED_ACTION = ("Download the ZIP in a browser from {url}, then run `lobbybot import ocl FILE.zip` "
                  "or drop it into LOBBYBOT_OCL_DROP_DIR.")


class OclSource:
    name = "ocl"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.skipped = 0  # rows skipped by the last `load()`

    # --- poll -------------------------------------------------------------------------------------------

    def poll(self, state: SourceState, http: httpx.Client) -> PollResult:
        result = PollResult(state=state)
        now = utcnow()
        self._poll_drop_dir(state, result)
        for key in DATASETS:
            endpoint = state.endpoint(key)
            if not endpoint.due(now) or key in result.batches:
                continue
            path = None
            try:
                download = self._download(key, endpoint, http, result)
                if download is None:
                    endpoint.succeeded(now)
                    continue
                path, validators = download
                archive = OclArchive(path)
            except SourceError as error:
                if path is not None:
                    path.unlink(missing_ok=True)
                endpoint.failed(error, now, max_failures=self.settings.max_failures)
                continue
            result.batches[key] = self._stream(archive, endpoint, result, cleanup=path, validators=validators)
        recent = state.endpoint("recent")
        if recent.due(now):
            try:
                result.batches["recent"] = list(self._recent(recent, http, result))
            except SourceError as error:
                recent.failed(error, now, max_failures=self.settings.max_failures)
        state.roll_up()
        return result

    def _stream(self, archive: OclArchive, endpoint: EndpointState, result: PollResult,
                cleanup: Path | None = None, validators: dict[str, str] | None = None) -> Iterator[Event]:
        """Yield the archive's events; on exhaustion record the endpoint's success and its skipped rows, and only
        then the download's validators (a file that failed half-way is downloaded again, not taken as unchanged)."""
        try:
            yield from archive.events()
        except SourceError as error:
            endpoint.failed(error, utcnow(), max_failures=self.settings.max_failures)
        else:
            skipped = sum(archive.skipped.values())
            result.skipped += skipped
            reasons = ", ".join(f"{n} {why}" for why, n in archive.skipped.most_common())
            reason = f"skipped: {reasons}" if skipped else ""
            endpoint.succeeded(utcnow(), skipped=skipped, reason=reason)
            if validators is not None:
                endpoint.etag = validators["etag"] or endpoint.etag
                endpoint.last_modified = validators["last_modified"] or endpoint.last_modified
                endpoint.memo["fingerprint"] = validators["fingerprint"]
        finally:
            archive.close()
            if cleanup is not None:
                cleanup.unlink(missing_ok=True)

    def _poll_drop_dir(self, state: SourceState, result: PollResult) -> None:
        """Ingest ZIPs dropped by hand, each once (by name, size and mtime), under the endpoint of its kind."""
        folder = self.settings.ocl_drop_dir
        if folder is None or not folder.is_dir():
            return
        drop = state.endpoint("drop")
        seen: list[str] = json.loads(drop.memo.get("seen", "[]"))  # oldest first
        for path in sorted(folder.glob("*.zip"), key=lambda p: p.stat().st_mtime):
            stat = path.stat()
            fingerprint = f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"
            if fingerprint in seen:
                continue
            seen.append(fingerprint)
            drop.memo["seen"] = json.dumps(seen[-200:])
            try:
                archive = OclArchive(path)
            except SourceError as error:
                drop.failed(error, utcnow(), max_failures=self.settings.max_failures)
                continue
            if archive.kind in result.batches:
                archive.close()
                seen.remove(fingerprint)  # the next poll takes it
                drop.memo["seen"] = json.dumps(seen[-200:])
                continue
            drop.succeeded(utcnow(), reason=f"read {path.name}")
            result.batches[archive.kind] = self._stream(archive, state.endpoint(archive.kind), result)

    def _url(self, key: str, endpoint: EndpointState, http: httpx.Client) -> str:
        """The dataset's current download URL from CKAN, cached a week; the settings' URL when CKAN fails."""
        fallback = getattr(self.settings, f"ocl_{key}_url")
        resolved_at = endpoint.memo.get("resolved_at")
        if resolved_at and utcnow() - datetime.fromisoformat(resolved_at) < RESOLVE_EVERY:
            return endpoint.memo.get("url", fallback)
        dataset, resource = DATASETS[key]
        try:
            response = http.get(self.settings.ckan_url, params={"id": dataset}, follow_redirects=True)
            resources = response.json()["result"]["resources"]
            url = next(r["url"] for r in resources if r.get("id") == resource and r.get("url"))
        except (httpx.HTTPError, ValueError, KeyError, TypeError, StopIteration):
            url = fallback
        endpoint.memo.update(url=url, resolved_at=utcnow().isoformat())
        return str(url)

    def _download(self, key: str, endpoint: EndpointState, http: httpx.Client,
                  result: PollResult) -> tuple[Path, dict[str, str] | None] | None:
        """Download the ZIP to a temporary file, or return None when it did not change since last time. The
        response's validators come with it, to be recorded once the file has been read."""
        url = self._url(key, endpoint, http)
        blocked = BLOCKED_ACTION.format(url=url)
        if self.settings.ocl_impersonate:
            return _impersonated_download(url, blocked), None
        try:
            head = http.head(url, headers=conditional_headers(endpoint.etag, endpoint.last_modified),
                             follow_redirects=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc) from None
        result.fetched += 1
        _refuse_challenge(head, b"", blocked)
        if head.status_code in (404, 410):  # before check_status raises: the next attempt asks CKAN again
            endpoint.memo.pop("resolved_at", None)
        check_status(head, blocked_action=blocked, gone_action="lobbybot re-resolves the URL through CKAN.")
        fingerprint = _fingerprint(head.headers)
        if head.status_code == 304 or (fingerprint and fingerprint == endpoint.memo.get("fingerprint")):
            result.not_modified += 1
            return None
        handle, name = tempfile.mkstemp(prefix=f"ocl-{key}-", suffix=".zip")
        path = Path(name)
        try:
            with os.fdopen(handle, "wb") as out, http.stream("GET", url, follow_redirects=True) as response:
                first = b""
                for chunk in response.iter_bytes(1 << 16):
                    if not first:
                        first = chunk[:4096]
                        _refuse_challenge(response, first, blocked)
                        check_status(response, blocked_action=blocked, gone_action="lobbybot re-resolves the URL.")
                    out.write(chunk)
                if not first:
                    _refuse_challenge(response, b"", blocked)
                    check_status(response, blocked_action=blocked, gone_action="lobbybot re-resolves the URL.")
        except httpx.HTTPError as exc:
            path.unlink(missing_ok=True)
            raise transport_error(exc) from None
        except SourceError:
            path.unlink(missing_ok=True)
            raise
        return path, {"etag": response.headers.get("etag", ""),
                      "last_modified": response.headers.get("last-modified", ""),
                      "fingerprint": _fingerprint(response.headers) or fingerprint}

    def _recent(self, endpoint: EndpointState, http: httpx.Client, result: PollResult) -> Iterator[Event]:
        """Communications posted since the last fetched day (overlapping one day), 14 days per request."""
        today = utcnow().date()
        through = endpoint.memo.get("through")
        start = date.fromisoformat(through) - timedelta(days=1) if through else today - timedelta(RECENT_FIRST_DAYS)
        skipped: Counter[str] = Counter()
        events: list[Event] = []
        while start <= today:
            end = min(start + timedelta(days=RECENT_CHUNK_DAYS - 1), today)
            query = urlencode({"dateType": 4, "fromDate": start.isoformat(), "toDate": end.isoformat(), "csv": ""})
            url = f"{self.settings.ocl_recent_url}?{query}"
            try:
                response = http.get(url, follow_redirects=True)
            except httpx.HTTPError as exc:
                raise transport_error(exc) from None
            result.fetched += 1
            blocked = "The recent export is behind a bot challenge; the weekly ZIPs (or a dropped ZIP) still work."
            _refuse_challenge(response, response.content[:4096], blocked)
            check_status(response, blocked_action=blocked, gone_action="Check LOBBYBOT_OCL_RECENT_URL.")
            if response.content.lstrip()[:1] == b"<":
                raise TransientSourceError("the recent export answered with an HTML page, not CSV",
                                           action="Check LOBBYBOT_OCL_RECENT_URL.")
            events.extend(recent_events(_decode(response.content), skipped))
            start = end + timedelta(days=1)
        count = sum(skipped.values())
        result.skipped += count
        endpoint.succeeded(utcnow(), skipped=count)
        endpoint.memo["through"] = today.isoformat()
        return iter(events)

    # --- import -----------------------------------------------------------------------------------------

    def load(self, path: Path) -> Iterator[Event]:
        """A communications or registrations ZIP (recognised by content), or a saved recent-export CSV."""
        with path.open("rb") as handle:
            head = handle.read(64)
        # A truncated ZIP fails is_zipfile() (no central directory) but still starts with a local file header.
        if zipfile.is_zipfile(path) or head.startswith(b"PK\x03\x04") or head.lstrip()[:1] == b"<":
            archive = OclArchive(path)
            try:
                yield from archive.events()
            finally:
                self.skipped = sum(archive.skipped.values())
            return
        skipped: Counter[str] = Counter()
        yield from recent_events(_decode(path.read_bytes()), skipped)
        self.skipped = sum(skipped.values())


def recent_events(text: str, skipped: Counter[str]) -> Iterator[Event]:
    """Events of the recent-communications CSV: a title line, then one row per official, grouped by report."""
    lines = io.StringIO(text)
    lines.readline()  # "Posted in the Last N Days"
    reports: dict[str, list[dict[str, str]]] = {}
    for row in CsvReader(skipped).rows(lines, label="recent"):
        number = row.get("COMMUNICATION NUMBER", "")
        comlog = number.rsplit("-", 1)[-1]
        if not comlog.isdigit():
            skipped["recent: bad communication number"] += 1
            continue
        reports.setdefault(comlog, []).append(row)
    for comlog, rows in reports.items():
        first = rows[0]
        try:
            met_on = parse_date(first.get("COMMUNICATION DATE", ""))
        except ValueError:
            skipped["recent: bad date"] += 1
            continue
        officials = [(row.get("DPOH NAME", "").title(), row.get("DPOH POSITION TITLE", ""),
                      row.get("DPOH GOVERNMENT INSTITUTION", "")) for row in rows if row.get("DPOH NAME")]
        subjects = [s.strip() for s in first.get("SUBJECT MATTERS", "").split(",") if s.strip()]
        yield communication_event(
            comlog=comlog, organization=first.get("ORGANIZATION, CORPORATION OR CLIENT NAME", ""),
            organization_fr="", registrant=first.get("REGISTRANT NAME", "").title(), met_on=met_on, posted=None,
            officials=officials, subjects=subjects)


def _decode(data: bytes) -> str:
    encoding = detect_encoding([data])
    return data.decode("utf-8-sig" if encoding == "utf-8" else "cp1252", errors="replace")


def _fingerprint(headers: httpx.Headers) -> str:
    parts = [headers.get("etag", ""), headers.get("last-modified", ""), headers.get("content-length", "")]
    return "|".join(parts) if any(parts) else ""


def _refuse_challenge(response: httpx.Response, first: bytes, action: str) -> None:
    if response.status_code in (200, 403, 503) and is_challenge(first, response.headers):
        raise BlockedSourceError("the registry answers with a Cloudflare bot challenge", status=response.status_code,
                                 action=action)
    content_type = response.headers.get("content-type", "")
    if response.status_code == 200 and first and ("text/html" in content_type or first.lstrip()[:1] == b"<"):
        raise BlockedSourceError("the registry sent an HTML page where a ZIP was expected", status=200, action=action)


def _impersonated_download(url: str, blocked: str) -> Path:
    """Download through curl_cffi impersonating Chrome (the `lobbybot[impersonate]` extra)."""
    try:
        from curl_cffi import requests as curl_requests
    except ImportError:
        raise NotConfiguredError("LOBBYBOT_OCL_IMPERSONATE is true but curl_cffi is not installed",
                                 action="pip install 'lobbybot[impersonate]', or set LOBBYBOT_OCL_IMPERSONATE=false."
                                 ) from None
    handle, name = tempfile.mkstemp(prefix="ocl-", suffix=".zip")
    with os.fdopen(handle, "wb") as out:
        response = curl_requests.get(url, impersonate="chrome", stream=True, timeout=120)
        if response.status_code in (401, 403):
            Path(name).unlink(missing_ok=True)
            raise BlockedSourceError(f"the registry refuses even a browser-like client (HTTP {response.status_code})",
                                     status=response.status_code, action=blocked)
        if response.status_code != 200:
            Path(name).unlink(missing_ok=True)
            raise TransientSourceError(f"the download failed (HTTP {response.status_code})",
                                       status=response.status_code, action="lobbybot retries with backoff.")
        for chunk in response.iter_content():
            out.write(chunk)
    return Path(name)


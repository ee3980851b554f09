"""HTTP politeness and failure mapping shared by the sources.

`check_status` turns a response into the `SourceError` a person can act on: 401/403 and bot challenge pages
→ `BlockedSourceError`; 429 → `TransientSourceError` carrying `Retry-After`; 404/410 and 5xx →
`TransientSourceError`. `transport_error` does the same for timeouts and connection failures. Conditional
GET headers come from the endpoint's saved validators.
"""

from __future__ import annotations

import httpx

from workers.errors import BlockedSourceError, SourceError, TransientSourceError

CHALLENGE_MARKERS = (b"cf-chl", b"challenge-platform", b"Just a moment...", b"Attention Required!")


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def is_challenge(first_bytes: bytes, headers: httpx.Headers | None = None) -> bool:
    """A Cloudflare-style bot challenge, by header or by body."""
    if headers is not None and headers.get("cf-mitigated") == "challenge":
        return True
    return any(marker in first_bytes for marker in CHALLENGE_MARKERS)


def transport_error(exc: httpx.HTTPError) -> SourceError:
    if isinstance(exc, httpx.TimeoutException):
        return TransientSourceError("timed out", action="Nothing to do if it passes; otherwise check the host.")
    return TransientSourceError(f"could not connect ({type(exc).__name__})",
                                action="Check the URL and the host's availability.")


def check_status(response: httpx.Response, *, blocked_action: str, gone_action: str) -> None:
    """Raise the `SourceError` that `response`'s status means; return for 2xx and 304."""
    status = response.status_code
    if status == 304 or 200 <= status < 300:
        return
    if status in (401, 403):
        raise BlockedSourceError(f"the site refuses us (HTTP {status})", status=status, action=blocked_action)
    if status == 429:
        raise TransientSourceError("rate limited (HTTP 429)", status=status,
                                   retry_after=retry_after(response.headers.get("retry-after")),
                                   action="lobbybot waits as asked; poll less often (LOBBYBOT_POLL_MINUTES).")
    if status in (404, 410):
        raise TransientSourceError(f"the URL is gone (HTTP {status})", status=status, action=gone_action)
    raise TransientSourceError(f"the site failed (HTTP {status})", status=status,
                               action="Nothing to do if it passes; lobbybot retries with backoff.")


def retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header given in seconds (the HTTP-date form is treated as absent)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None

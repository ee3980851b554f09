"""Per-source state and health: cursor, HTTP validators, failures, backoff, and what a person can do.

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}source:{name}      JSON of `SourceState` (no expiry)

Health states: `pending` (never polled), `ok`, `failing` (retried at `retry_at`, 5 min × 2ⁿ, capped at 6 h),
`blocked` (the site refuses us), `not_configured` (a setting is missing), `disabled` (after
`LOBBYBOT_MAX_FAILURES` consecutive failures; `lobbybot sources --reset NAME` re-enables it). Every state but
`ok`/`pending` carries a `reason` and an `action`. A source made of several endpoints (the feeds source polls
many URLs) keeps one `EndpointState` each; the source's own health is the worst of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from redis import Redis

from workers.errors import SourceError

Status = Literal["pending", "ok", "failing", "blocked", "not_configured", "disabled"]
_SEVERITY: dict[str, int] = {
    "pending": 0, "ok": 0, "failing": 1, "blocked": 2, "disabled": 3, "not_configured": 4,
}
BACKOFF_BASE = timedelta(minutes=5)
BACKOFF_CAP = timedelta(hours=6)


def utcnow() -> datetime:
    return datetime.now(UTC)


def backoff(failures: int) -> timedelta:
    """Delay before the next attempt after `failures` consecutive failures: 5 min × 2ⁿ⁻¹, capped at 6 h."""
    if failures <= 0:
        return timedelta(0)
    return min(BACKOFF_BASE * 2 ** min(failures - 1, 16), BACKOFF_CAP)


class EndpointState(BaseModel):
    """One URL of a source: its conditional-GET validators and its own health."""

    etag: str | None = None
    last_modified: str | None = None
    status: Status = "pending"
    reason: str = ""
    action: str = ""
    failures: int = 0
    retry_at: datetime | None = None
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    skipped_last: int = 0
    skipped_total: int = 0
    memo: dict[str, str] = Field(default_factory=dict)  # source-specific: resolved URL, size, cursor date…

    @property
    def baseline_done(self) -> bool:
        """True once one poll succeeded: later polls alert, the first one only records."""
        return self.last_success is not None

    def due(self, now: datetime) -> bool:
        if self.status in ("disabled", "not_configured"):
            return False
        return self.retry_at is None or self.retry_at <= now

    def succeeded(self, now: datetime, *, skipped: int = 0, etag: str | None = None,
                  last_modified: str | None = None, reason: str = "") -> None:
        self.etag = etag if etag is not None else self.etag
        self.last_modified = last_modified if last_modified is not None else self.last_modified
        self.status, self.reason, self.action = "ok", reason, ""
        self.failures, self.retry_at = 0, None
        self.last_attempt = self.last_success = now
        self.skipped_last = skipped
        self.skipped_total += skipped

    def failed(self, error: SourceError, now: datetime, *, max_failures: int) -> None:
        self.failures += 1
        self.last_attempt = now
        self.reason, self.action = error.reason, error.action
        delay = backoff(self.failures)
        if error.retry_after is not None:
            delay = max(delay, timedelta(seconds=error.retry_after))
        self.retry_at = now + delay
        if error.health == "not_configured":
            self.status = "not_configured"
        elif self.failures >= max_failures:
            self.status = "disabled"
            self.action = (f"{error.action} Then re-enable it with `lobbybot sources --reset`."
                           if error.action else "Fix the cause, then run `lobbybot sources --reset`.")
        else:
            self.status = "blocked" if error.health == "blocked" else "failing"


class SourceState(BaseModel):
    """Everything a source remembers between polls, and the health shown by `lobbybot sources`."""

    name: str
    cursor: str | None = None
    endpoints: dict[str, EndpointState] = Field(default_factory=dict)
    status: Status = "pending"
    reason: str = ""
    action: str = ""
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_poll: datetime | None = None
    last_counts: dict[str, int] = Field(default_factory=dict)
    events_total: int = 0
    skipped_total: int = 0

    def endpoint(self, key: str) -> EndpointState:
        return self.endpoints.setdefault(key, EndpointState())

    def roll_up(self) -> None:
        """Set the source's own health from its endpoints: the worst one speaks for all."""
        if not self.endpoints:
            return
        worst_key, worst = max(self.endpoints.items(), key=lambda item: _SEVERITY[item[1].status])
        self.skipped_total = sum(e.skipped_total for e in self.endpoints.values())
        successes = [e.last_success for e in self.endpoints.values() if e.last_success]
        self.last_success = max(successes) if successes else self.last_success
        attempts = [e.last_attempt for e in self.endpoints.values() if e.last_attempt]
        self.last_attempt = max(attempts) if attempts else self.last_attempt
        if _SEVERITY[worst.status] == 0:
            every_pending = all(e.status == "pending" for e in self.endpoints.values())
            self.status, self.reason, self.action = ("pending" if every_pending else "ok"), "", ""
            return
        bad = sum(1 for e in self.endpoints.values() if _SEVERITY[e.status] > 0)
        prefix = f"{bad} of {len(self.endpoints)} endpoints not ok; " if len(self.endpoints) > 1 else ""
        self.status = worst.status
        self.reason = f"{prefix}{worst_key}: {worst.reason}" if len(self.endpoints) > 1 else worst.reason
        self.action = worst.action

    def reset(self) -> None:
        """Forget failures and disabled states (validators and baselines are kept)."""
        for endpoint in self.endpoints.values():
            if endpoint.status != "ok":
                endpoint.status = "ok" if endpoint.last_success else "pending"
                endpoint.failures, endpoint.retry_at, endpoint.reason, endpoint.action = 0, None, "", ""
        self.status, self.reason, self.action = "pending", "", ""
        self.roll_up()


class StateStore:
    """Loads and saves `SourceState` in Redis."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}source:{name}"

    def load(self, name: str) -> SourceState:
        raw = self.redis.get(self.key(name))
        if raw is None:
            return SourceState(name=name)
        return SourceState.model_validate_json(raw)

    def save(self, state: SourceState) -> None:
        self.redis.set(self.key(state.name), state.model_dump_json())

"""lobbybot's error hierarchy.

    LobbybotError
    ├── SourceError                 a source could not be read; carries the health it implies
    │   ├── TransientSourceError    timeouts, 5xx, 429 (with `retry_after`), a malformed whole payload
    │   ├── BlockedSourceError      the site refuses us (403, a Cloudflare challenge page)
    │   └── NotConfiguredError      a key or setting is missing; `action` says which
    └── DeliveryError               a message could not be posted
        ├── TransientDeliveryError  retry later (`retry_after` seconds when the platform says)
        └── PermanentDeliveryError  channel gone, bot removed, permission missing: pause, never retry

Errors carry what retry logic needs (`status`, `retry_after`) and the text a person sees (`reason`, `action`).
Only transient errors lead to an RQ `Retry`.
"""

from __future__ import annotations


class LobbybotError(Exception):
    """Base of every error lobbybot raises on purpose."""


class SourceError(LobbybotError):
    health = "failing"

    def __init__(self, reason: str, *, action: str = "", status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.action = action
        self.status = status
        self.retry_after = retry_after


class TransientSourceError(SourceError):
    health = "failing"


class BlockedSourceError(SourceError):
    health = "blocked"


class NotConfiguredError(SourceError):
    health = "not_configured"


class DeliveryError(LobbybotError):
    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class TransientDeliveryError(DeliveryError):
    pass


class PermanentDeliveryError(DeliveryError):
    pass

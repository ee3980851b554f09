"""Sources: one module per registry or feed family, behind the small `Source` protocol (DESIGN §4).

A source fetches and parses; it never talks to Redis. `poll()` receives the state of the previous poll and
returns a `PollResult`: the events grouped by endpoint, and the new state (validators, cursor, health). The
job around it (`workers.jobs.poll_source`) does dedupe, indexing and fan-out, so every source gets the same
guarantees, including the silent baseline of an endpoint's first successful poll.

Adding a source is one module plus one line in `SOURCES`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from workers.errors import TransientSourceError
from workers.events import Event
from workers.health import SourceState
from workers.settings import Settings


@dataclass
class PollResult:
    """What one poll found. `batches` maps an endpoint key of `state.endpoints` to the events read there.

    A batch may be a lazy iterator (a registry export of 300,000 rows is streamed, never held in memory); the
    source updates that endpoint's state (health, skipped rows) when the iterator is exhausted, so the job
    saves the state only after consuming every batch."""

    state: SourceState
    batches: dict[str, Iterable[Event]] = field(default_factory=dict)
    fetched: int = 0
    not_modified: int = 0
    skipped: int = 0
    more: bool = False  # the poll stopped early (time budget); a follow-up poll should run now

    @property
    def events(self) -> list[Event]:
        """Every event of every batch (consumes lazy batches: for tests and small sources)."""
        return [event for batch in self.batches.values() for event in batch]


class Source(Protocol):
    name: str

    def poll(self, state: SourceState, http: httpx.Client) -> PollResult:
        """Fetch what is new since `state`; never raises for a bad endpoint (its health says so)."""
        ...

    def load(self, path: Path) -> Iterator[Event]:
        """Parse a saved file (`lobbybot import`); raises `SourceError` when the whole file is unreadable."""
        ...


def read_json(path: Path, *, action: str) -> Any:
    """The JSON saved in `path` (`lobbybot import`); a `TransientSourceError` naming the file when it is not."""
    try:
        return json.loads(path.read_bytes())
    except ValueError as exc:
        raise TransientSourceError(f"{path.name} is not JSON ({exc})", action=action) from None


def _feeds(settings: Settings) -> Source:
    from workers.sources.feeds import FeedsSource

    return FeedsSource(settings)


def _ocl(settings: Settings) -> Source:
    from workers.sources.ocl import OclSource

    return OclSource(settings)


def _lda(settings: Settings) -> Source:
    from workers.sources.lda import LdaSource

    return LdaSource(settings)


def _clq(settings: Settings) -> Source:
    from workers.sources.clq import ClqSource

    return ClqSource(settings)


SOURCES: dict[str, Callable[[Settings], Source]] = {
    "feeds": _feeds,
    "ocl": _ocl,
    "lda": _lda,
    "clq": _clq,
}


class UnknownSourceError(KeyError):
    def __str__(self) -> str:
        return f"unknown source {self.args[0]!r}; known sources: {', '.join(sorted(SOURCES))}"


def build_source(name: str, settings: Settings) -> Source:
    try:
        factory = SOURCES[name]
    except KeyError:
        raise UnknownSourceError(name) from None
    return factory(settings)

"""What the source tests read back after a poll or an import: saved state, stored events, queued alerts."""

from __future__ import annotations

from pathlib import Path

import rq
from redis import Redis

from workers.events import Event
from workers.health import SourceState, StateStore
from workers.settings import Settings
from workers.sources import Source
from workers.store import EventStore


def source_state(redis: Redis, settings: Settings, name: str) -> SourceState:
    return StateStore(redis, settings.redis_prefix).load(name)


def stored(redis: Redis, settings: Settings, event_id: str) -> Event | None:
    return EventStore(redis, settings.redis_prefix).get(event_id)


def by_id(events: list[Event]) -> dict[str, Event]:
    return {event.id: event for event in events}


def alerted_refs(redis: Redis) -> list[list[str]]:
    """[event id, version, verdict] of every alert waiting on the deliver queue."""
    return [ref[:3] for job in rq.Queue("deliver", connection=redis).get_jobs() for ref in job.args[1]]


def load_saved(source: Source, tmp_path: Path, data: bytes, name: str) -> tuple[list[Event], int]:
    """The events `lobbybot import` reads from `data` saved as `name`, and how many rows it skipped."""
    path = tmp_path / name
    path.write_bytes(data)
    events = list(source.load(path))
    return events, int(getattr(source, "skipped", 0))

"""Records the tests share, and what tests read back: a source's saved state, stored events, queued alerts,
what the console poster printed for a channel.

`sample_records` are the records the search and `/lobby` tests index; `report` and `subscribe` make the
communication reports and subscriptions of the delivery tests (fan-out, journal).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import rq
from redis import Redis
from rq import Queue, SimpleWorker

from workers.events import Event, Official
from workers.health import SourceState, StateStore
from workers.jobs import QUEUES
from workers.settings import Settings
from workers.sources import Source
from workers.store import EventStore
from workers.subscriptions import Subscription, SubscriptionStore

PREFIX = "lobbybot:"
TREASURY = "Treasury Board of Canada Secretariat"
RECENT = datetime.now(UTC) - timedelta(days=2)


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


def sample_records(now: datetime | None = None) -> list[Event]:
    """Three federal communication reports of Amazon Web Services with Hydro-Québec and others, one Quebec
    mandate, and an unrelated one."""
    now = now or datetime.now(UTC)

    def comm(n: int, days: int, institutions: tuple[str, ...], official: str) -> Event:
        when = now - timedelta(days=days)
        return Event(id=f"ocl:comm:{n}", version="1", source="ocl", kind="communication",
                     title=f"Communication: Amazon Web Services Canada, Inc. with {institutions[0]}",
                     url=f"https://lobbycanada.gc.ca/app/secure/ocl/lrs/do/cmmLgPblcVw?comlogId={n}",
                     occurred_at=when, published_at=when, organization="Amazon Web Services Canada, Inc.",
                     registrant="Jane Roe", lobbyists=("Jane Roe", "Sam Poe"), institutions=institutions,
                     officials=(Official(name=official, title="Director"),), subjects=("Energy", "Industry"))

    when = now - timedelta(days=3)
    return [
        comm(712345, 10, ("Hydro-Québec", "Natural Resources Canada"), "Marie Tremblay"),
        comm(712346, 40, ("Hydro-Québec",), "Marie Tremblay"),
        comm(712347, 90, ("Finance Canada", "Hydro-Québec"), "Paul Martin"),
        Event(id="clq:mandate:9001", version="1", source="clq", kind="mandate", language="fr",
              title="Mandat : Amazon Web Services auprès d'Hydro-Québec", occurred_at=when, published_at=when,
              organization="Amazon Web Services Canada, Inc.", registrant="Jean Dupont", lobbyists=("Jean Dupont",),
              institutions=("Hydro-Québec",), status="active", url="https://www.carrefourlobby.quebec/mandat/9001"),
        Event(id="ocl:comm:800000", version="1", source="ocl", kind="communication", title="Communication: Bell",
              occurred_at=when, published_at=when, organization="BCE Inc.", institutions=("Finance Canada",)),
    ]


def report(n: int, organization: str = "Amazon Web Services Canada", *, institutions: tuple[str, ...] = (TREASURY,),
           version: str = "1") -> Event:
    return Event(id=f"ocl:communication:{n}", version=version, source="ocl", kind="communication",
                 title=f"{organization} met officials (report {n})", organization=organization,
                 institutions=institutions, published_at=RECENT, url=f"https://lobbycanada.gc.ca/comm/{n}")


def subscribe(redis: Redis, channel: str, *terms: str, **options: Any) -> Subscription:
    return SubscriptionStore(redis, PREFIX).add(Subscription(channel=channel, terms=list(terms), **options),
                                                actor="test")


def run_jobs(redis: Redis) -> None:
    SimpleWorker([Queue(name, connection=redis) for name in QUEUES], connection=redis).work(burst=True)


def lines_of(out: str, channel: str) -> list[str]:
    """What the console poster printed for `channel`, without the `[console:<name>] ` prefix."""
    prefix = f"[{channel}] "
    return [line[len(prefix):] for line in out.splitlines() if line.startswith(prefix)]


def posted(capsys: pytest.CaptureFixture[str], redis: Redis) -> str:
    """Run the queued jobs; return what they printed."""
    capsys.readouterr()
    run_jobs(redis)
    return capsys.readouterr().out

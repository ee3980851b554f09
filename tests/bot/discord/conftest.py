"""Discord test fixtures: the mock Discord REST API on 127.0.0.1 and records in the shapes sources produce."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.discord_api import DiscordAPI

# discord.py 2.7 imports the stdlib `audioop` (voice), deprecated on Python 3.11-3.12; the suite turns warnings
# into errors, so import it once here with that one warning silenced (lobbybot uses no voice).
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="'audioop' is deprecated", category=DeprecationWarning)
    import discord  # noqa: F401
from workers.events import Event, Official


@pytest.fixture
def discord_api() -> Iterator[DiscordAPI]:
    api = DiscordAPI()
    yield api
    api.close()


def communication(n: int = 1, *, version: str = "v1", title: str = "") -> Event:
    return Event(id=f"ocl:comm:{712345 + n}", version=version, source="ocl", kind="communication",
                 title=title or f"Amazon Web Services Canada met Treasury Board officials ({n})",
                 url=f"https://lobbycanada.gc.ca/app/secure/ocl/lrs/do/clntSmmry?comlogId={712345 + n}",
                 organization="Amazon Web Services Canada, Inc.", registrant="Jane Doe",
                 lobbyists=("Jane Doe", "John Roe"), institutions=("Treasury Board Secretariat (TBS)",
                                                                   "Shared Services Canada (SSC)"),
                 officials=(Official(name="Catherine Luelo", title="Chief Information Officer"),),
                 subjects=("Government Procurement", "Science and Technology"),
                 occurred_at=datetime(2026, 11, 3, tzinfo=UTC), published_at=datetime(2026, 11, 20, tzinfo=UTC))


def article(n: int = 1) -> Event:
    return Event(id=f"news:{n:04x}", version="v1", source="news", kind="article", language="fr",
                 title=f"Hydro-Québec et le lobbying *des* [géants] du nuage ({n})",
                 url=f"https://www.ledevoir.com/economie/{n}/hydro-quebec", publisher="Le Devoir",
                 published_at=datetime(2026, 11, 21, tzinfo=UTC))

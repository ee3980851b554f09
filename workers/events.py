"""The one neutral record everything alerts on: `Event` (DESIGN §3).

An event's `id` is stable across versions (`"{source}:{kind}:{native id}"`); its `version` changes when the
record is amended. Events are frozen: an amendment is a new `Event` with the same id and another version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

Language = Literal["fr", "en"]


class Official(BaseModel):
    """A designated public office holder met during a communication."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str = ""
    institution: str = ""


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    version: str
    source: str
    kind: str
    title: str
    summary: str = ""
    url: str = ""
    language: Language = "en"
    occurred_at: datetime | None = None
    published_at: datetime | None = None
    organization: str = ""
    organization_fr: str = ""
    registrant: str = ""
    lobbyists: tuple[str, ...] = ()
    institutions: tuple[str, ...] = ()
    officials: tuple[Official, ...] = ()
    subjects: tuple[str, ...] = ()
    supersedes: str | None = None
    status: str = ""
    end_date: datetime | None = None
    publisher: str = ""

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if value.count(":") < 1 or not value.split(":", 1)[1]:
            raise ValueError(f"event id {value!r} is not '<source>:<kind>:<native id>'")
        return value

    @property
    def latest_date(self) -> datetime | None:
        """The date retention is measured from: the end date, else when it became public, else occurred."""
        return self.end_date or self.published_at or self.occurred_at

    def to_json(self) -> str:
        return self.model_dump_json(exclude_defaults=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        return cls.model_validate_json(raw)


_COMPARED = ("title", "status", "organization", "registrant", "lobbyists", "institutions", "officials", "subjects",
             "end_date", "summary")


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(item.name if isinstance(item, Official) else str(item) for item in value) or "none"
    if isinstance(value, datetime):
        return value.date().isoformat()
    return str(value) if value not in (None, "") else "none"


def changes(before: Event, after: Event) -> list[str]:
    """What an amendment changed, one line per field: 'institutions: A → A, B' (added/removed for lists)."""
    lines = []
    for name in _COMPARED:
        old, new = getattr(before, name), getattr(after, name)
        if old == new:
            continue
        if isinstance(old, tuple) and isinstance(new, tuple):
            added = [_shown((item,)) for item in new if item not in old]
            removed = [_shown((item,)) for item in old if item not in new]
            parts = ([f"added {', '.join(added)}"] if added else []) + (
                [f"removed {', '.join(removed)}"] if removed else [])
            lines.append(f"{name}: {'; '.join(parts)}")
        elif name == "summary":
            lines.append("summary: changed")
        else:
            lines.append(f"{name}: {_shown(old)} → {_shown(new)}")
    return lines

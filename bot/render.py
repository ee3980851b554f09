"""The neutral plain-text rendering of alerts: what the console prints and what Slack and Discord mirror.

A `Message` is a list of lines; platform renderers (Block Kit, embeds) take the same facts from the `Event`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workers.events import Event

_KIND_LABELS = {
    "article": "News",
    "communication": "Communication report",
    "registration": "Registration",
    "filing": "LDA filing",
    "mandate": "Mandate",
}
SUMMARY_CHARS = 280


@dataclass(frozen=True)
class Message:
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def alert(event: Event, *, amended: bool = False) -> Message:
    """One alert: what it is, who, to whom, when, and the link to the public record."""
    label = _KIND_LABELS.get(event.kind, event.kind.capitalize())
    head = f"{label}{' (amended)' if amended else ''}: {event.title}"
    lines = [head]
    facts = []
    if event.organization:
        facts.append(event.organization)
    if event.publisher:
        facts.append(event.publisher)
    when = event.published_at or event.occurred_at
    if when:
        facts.append(when.strftime("%Y-%m-%d"))
    if facts:
        lines.append(" · ".join(facts))
    if event.institutions:
        lines.append("Institutions: " + ", ".join(event.institutions[:5]))
    if event.summary and event.summary != event.title:
        lines.append(_short(event.summary, SUMMARY_CHARS))
    if event.url:
        lines.append(event.url)
    return Message(lines)

"""The neutral plain-text rendering of alerts and search answers: what the console prints and what Slack and
Discord mirror.

A `Message` is a list of lines; platform renderers (Block Kit, embeds) take the same facts from the `Event`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from workers.events import Event
from workers.query import Summary
from workers.terms import quoted

_KIND_LABELS = {
    "article": "News",
    "communication": "Communication report",
    "registration": "Registration",
    "filing": "LDA filing",
    "mandate": "Mandate",
}
_KIND_LABELS_FR = {
    "article": "Nouvelle",
    "communication": "Rapport de communication",
    "registration": "Enregistrement",
    "filing": "Déclaration LDA",
    "mandate": "Mandat",
}
# The phrases of alerts, summaries, digests and notices, per subscription language (`--lang fr|en`).
_PHRASES = {
    "en": {"amended": "amended", "amended_head": "Amended {label}", "unchanged": "(no field we show changed)",
           "batch": "{n} {verb} records", "most": "most for {org}", "with": "With", "more": "… and {n} more "
           "(`lobbybot search` has them all)", "record": "record", "records": "records",
           "recovered": "Source {source} recovered: alerts from it flow again.",
           "broken": "Source {source} is {status}: {reason}",
           "silent": "Until it recovers, no alert from it can reach this channel.", "todo": "What to do: {action}"},
    "fr": {"amended": "modifié", "amended_head": "Modification — {label}", "unchanged": "(aucun champ affiché n'a "
           "changé)", "batch": "{n} nouveaux dossiers", "most": "surtout {org}", "with": "Avec",
           "more": "… et {n} autres (`lobbybot search` les a tous)", "record": "dossier", "records": "dossiers",
           "recovered": "La source {source} est rétablie : ses alertes reprennent.",
           "broken": "La source {source} est en état {status} : {reason}",
           "silent": "Tant qu'elle n'est pas rétablie, aucune de ses alertes ne peut arriver ici.",
           "todo": "Que faire : {action}"},
}


def kind_label(kind: str, language: str) -> str:
    """A record kind as readers call it ("communication" → "Communication report" / "Rapport de communication")."""
    labels = _KIND_LABELS_FR if language == "fr" else _KIND_LABELS
    return labels.get(kind, kind.capitalize())


def say(language: str, key: str, **values: object) -> str:
    """One phrase of alerts, summaries, digests and notices in `language` (English when unknown)."""
    return _PHRASES.get(language, _PHRASES["en"])[key].format(**values)


# The phrases of the summary card (`/lobby TERM…`, `lobbybot search`): Slack, Discord and the text card share them.
_CARD = {
    "en": {"lobbying": "Lobbying: {query}", "since": "since {d}", "in": "in {source}", "records": "Records",
           "lobbyists": "Lobbyists", "comms": "Federal communication reports, last 12 months",
           "active": "Active registrations", "institutions": "Institutions", "officials": "Officials met",
           "subjects": "Subjects", "months": "Last 12 months", "peak": "peak {n} in a month", "latest": "Latest",
           "news": "News mentions", "none": "No matching records.",
           "sample": "Names from the {sample} most recent of {total} records."},
    "fr": {"lobbying": "Lobbying : {query}", "since": "depuis le {d}", "in": "dans {source}", "records": "Dossiers",
           "lobbyists": "Lobbyistes", "comms": "Rapports de communication fédéraux, 12 derniers mois",
           "active": "Enregistrements actifs", "institutions": "Institutions", "officials": "Titulaires rencontrés",
           "subjects": "Sujets", "months": "12 derniers mois", "peak": "au plus {n} par mois",
           "latest": "Derniers dossiers", "news": "Mentions dans les nouvelles", "none": "Aucun dossier ne correspond.",
           "sample": "Noms tirés des {sample} dossiers les plus récents sur {total}."},
}


def card_phrase(language: str, key: str, **values: object) -> str:
    """One phrase of the summary card in `language` (English when unknown)."""
    return _CARD.get(language, _CARD["en"])[key].format(**values)


SUMMARY_CHARS = 280
BATCH_LINES = 10
DIGEST_LINES = 40


@dataclass(frozen=True)
class Message:
    """What to post. `lines` is the complete plain text (the console prints it, platforms use it as the
    notification text and fallback); the other fields keep the facts it was made from, so a platform renderer
    (Block Kit, embeds) can lay them out its own way without parsing text:

    kind      alert | amendment | batch | digest | notice | card
    events    the events shown (alert, amendment: one; batch, digest: the ones in this message)
    changes   amendment: what changed, one line per field
    title     digest: its label ("Daily digest"); notice: the source name
    part      digest: (n, total) when it is split over several messages
    status    notice: the source's status, with `reason` and `action`
    """

    lines: list[str] = field(default_factory=list)
    kind: str = ""
    events: tuple[Event, ...] = ()
    changes: tuple[str, ...] = ()
    language: str = "en"
    title: str = ""
    part: tuple[int, int] = (1, 1)
    status: str = ""
    reason: str = ""
    action: str = ""

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def short(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending with "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(counts: Sequence[int]) -> str:
    """One bar per count, its height proportional to the count: ▁ for zero, █ for the busiest; any count above
    zero shows at least ▂, so a quiet month with records never looks empty."""
    top = max(counts, default=0)
    if not top:
        return SPARK[0] * len(counts)
    return "".join(SPARK[0] if n == 0 else SPARK[max(1, round(n * (len(SPARK) - 1) / top))] for n in counts)


def alert(event: Event, *, amended: bool = False, language: str = "en") -> Message:
    """One alert: what it is, who, to whom, when, and the link to the public record."""
    label = kind_label(event.kind, language)
    head = f"{label}{' (' + say(language, 'amended') + ')' if amended else ''}: {event.title}"
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
        lines.append(short(event.summary, SUMMARY_CHARS))
    if event.url:
        lines.append(event.url)
    return Message(lines, kind="alert", events=(event,), language=language,
                   changes=("amended",) if amended else ())


def amendment(event: Event, changes: list[str], *, language: str = "en") -> Message:
    """A thread reply under the original alert: what the amendment changed, field by field."""
    lines = [f"{say(language, 'amended_head', label=kind_label(event.kind, language).lower())}: {event.title}"]
    if changes:
        lines.extend(f"  {change}" for change in changes[:12])
    else:
        lines.append(f"  {say(language, 'unchanged')}")
    if event.url:
        lines.append(event.url)
    return Message(lines, kind="amendment", events=(event,), changes=tuple(changes), language=language)


def batch(events: list[Event], *, verb: str = "new", language: str = "en") -> Message:
    """One message for a burst: '12 new records: 12 communication reports — most for Amazon Web Services Canada'."""
    kinds = Counter(kind_label(e.kind, language).lower() for e in events)
    if language == "fr":  # French plurals do not end in an "s" one can append ("rapports de communication")
        what = ", ".join(f"{n} × {label}" for label, n in kinds.items())
    else:
        what = ", ".join(f"{n} {label}{'s' if n > 1 and not label.endswith('s') else ''}" for label, n in kinds.items())
    organizations = Counter(e.organization or e.publisher for e in events if e.organization or e.publisher)
    top = organizations.most_common(1)
    head = f"{say(language, 'batch', n=len(events), verb=verb)}: {what}" + (
        f" — {say(language, 'most', org=top[0][0])}" if top else "")
    lines = [head]
    institutions = Counter(i for e in events for i in e.institutions)
    if institutions:
        lines.append(say(language, "with") + " " + ", ".join(f"{name} ({n})" for name, n in
                                                             institutions.most_common(5)))
    for event in events[:BATCH_LINES]:
        lines.append(f"• {short(event.title, 120)}" + (f" {event.url}" if event.url else ""))
    if len(events) > BATCH_LINES:
        lines.append(say(language, "more", n=len(events) - BATCH_LINES))
    return Message(lines, kind="batch", events=tuple(events), language=language)


def group_by_organization(events: Iterable[Event]) -> list[tuple[str, list[Event]]]:
    """Events per organisation (or publisher, else "Other"), the busiest organisation first, then by name; each
    group keeps the events' order."""
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(event.organization or event.publisher or "Other", []).append(event)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def digest(title: str, events: list[Event], *, max_lines: int = DIGEST_LINES, language: str = "en",
           ) -> list[Message]:
    """A digest grouped by organisation, split into messages of at most `max_lines` lines each."""
    return [message for message, _ in digest_parts(title, events, max_lines=max_lines, language=language)]


def digest_parts(title: str, events: list[Event], *, max_lines: int = DIGEST_LINES, language: str = "en",
                 ) -> list[tuple[Message, list[Event]]]:
    """`digest`, with the events each message shows (so each part can be recorded as delivered on its own)."""
    body: list[tuple[str, Event | None]] = []
    for organization, items in group_by_organization(events):
        body.append((f"{organization} ({len(items)})", None))
        body.extend((f"  • {short(e.title, 120)}" + (f" {e.url}" if e.url else ""), e) for e in items)
    chunks = [body[i:i + max_lines - 1] for i in range(0, len(body), max_lines - 1)] or [[]]
    total = len(chunks)
    count = f"{len(events)} {say(language, 'record' if len(events) == 1 else 'records')}"
    parts = []
    for n, chunk in enumerate(chunks, 1):
        shown = [event for _, event in chunk if event is not None]
        head = f"{title} — {count}" + (f" ({n}/{total})" if total > 1 else "")
        parts.append((Message([head, *(line for line, _ in chunk)], kind="digest", events=tuple(shown),
                              language=language, title=title, part=(n, total)), shown))
    return parts


def notice(source: str, status: str, reason: str, action: str, *, language: str = "en") -> Message:
    """A source-health notice: broken (with what to do) or recovered."""
    if status == "ok":
        lines = [say(language, "recovered", source=source)]
    else:
        lines = [say(language, "broken", source=source, status=status, reason=reason), say(language, "silent")]
        if action:
            lines.append(say(language, "todo", action=action))
    return Message(lines, kind="notice", language=language, title=source, status=status, reason=reason,
                   action=action)


def summary_card(summary: Summary) -> Message:
    """The answer to `/lobby TERM…` / `lobbybot search` as a text card: counts first, then names, then links."""
    def w(key: str, **values: object) -> str:
        return card_phrase("en", key, **values)

    filters = "".join([f" {w('since', d=summary.since)}" if summary.since else "",
                       f" {w('in', source=summary.source)}" if summary.source else ""])
    title = w("lobbying", query=quoted(summary.query)) + filters
    if not summary.total:
        return Message([title, w("none")], kind="card")
    sources = ", ".join(f"{n} {name}" for name, n in summary.by_source.items())
    lines = [title, f"{summary.total} records ({sources})"]
    lobbyists = summary.lobbyists
    per_source = ", ".join(f"{n} {name}" for name, n in lobbyists.by_source.items())
    lines.append(f"{w('lobbyists')}: {lobbyists.total}" + (f" ({per_source})" if per_source else ""))
    lines.append(f"{w('comms')}: {summary.communications_last_12_months}")
    lines.append(f"{w('active')}: {summary.active_registrations}")
    for key, counts in (("institutions", summary.institutions), ("officials", summary.officials),
                        ("subjects", summary.subjects)):
        if counts:
            lines.append(f"{w(key)}: " + ", ".join(f"{c.name} ({c.count})" for c in counts[:5]))
    if summary.sample < summary.total:
        lines.append(w("sample", sample=summary.sample, total=summary.total))
    per_month = [month.count for month in summary.monthly]
    lines.append(f"{w('months')}: {sparkline(per_month)}  " + " ".join(str(n) for n in per_month)
                 + f"  ({summary.monthly[0].month} → {summary.monthly[-1].month})")
    lines.append(f"{w('latest')}:")
    lines.extend(f"  {item.date} [{item.source}] {short(item.title, 100)}" + (f" {item.url}" if item.url else "")
                 for item in summary.latest)
    if summary.news.total:
        lines.append(f"{w('news')}: {summary.news.total}")
        lines.extend(f"  {item.date} {short(item.title, 100)}" + (f" {item.url}" if item.url else "")
                     for item in summary.news.latest)
    return Message(lines, kind="card")

"""Discord rendering: neutral messages, search summaries and command answers → embeds, within Discord's limits.

Every function returns a list of Discord messages, each a list of embed dicts (`bot/discord/embeds.py`): the
REST poster posts them in order (amendments reply to the first), the gateway client sends the first as the
interaction response and the rest as follow-ups. A message that does not fit one Discord message is split,
never silently shortened; the cuts that exist are the neutral renderer's on purpose (a batch lists its first
`BATCH_ITEMS` records and says "… and N more").

Phrases exist in French and English (the subscription's language, `Message.language`); the text of a record
(titles, organisation names) is shown as the source wrote it.
"""

from __future__ import annotations

from collections import Counter

from bot.commands import Answer
from bot.discord.embeds import AMBER, BLUE, GREEN, GREY, RED, Embed, Layout, escape, link, pack
from bot.render import Message, card_phrase, group_by_organization, short, sparkline
from workers.events import Event
from workers.query import Summary
from workers.terms import quoted

BATCH_ITEMS = 25
TOP_NAMES = 5

# Discord's own phrases; the card's (and the field names it shares with alerts) are `bot.render.card_phrase`.
_WORDS = {
    "en": {"organization": "Organisation", "registrant": "Registrant", "date": "Date", "source": "Source",
           "changes": "What changed", "todo": "What to do", "continued": "continued", "more": "… and {n} more",
           "problem": "Problem"},
    "fr": {"organization": "Organisation", "registrant": "Déclarant", "date": "Date", "source": "Source",
           "changes": "Ce qui a changé", "todo": "Que faire", "continued": "suite", "more": "… et {n} autres",
           "problem": "Problème"},
}


def _word(language: str, key: str, **values: object) -> str:
    return _WORDS.get(language, _WORDS["en"])[key].format(**values)


def _continued(title: str, language: str) -> str:
    return f"{title} ({_word(language, 'continued')})"


def _when(event: Event) -> str:
    moment = event.published_at or event.occurred_at
    return moment.isoformat() if moment else ""


def _item(event: Event) -> str:
    return "• " + link(event.title, event.url, 120)


# --- neutral messages -----------------------------------------------------------------------------------------


def message_embeds(message: Message) -> list[list[Embed]]:
    """A neutral `Message` (alert, amendment, batch, digest part, notice, card) as Discord messages."""
    render = {"alert": _alert, "amendment": _amendment, "batch": _batch, "digest": _digest,
              "notice": _notice}.get(message.kind)
    if render is not None and (message.events or message.kind == "notice"):
        return render(message)
    return _plain(message.lines, language=message.language)


def _alert(message: Message) -> list[list[Embed]]:
    event, language = message.events[0], message.language
    layout = Layout(message.lines[0], color=AMBER if message.changes else BLUE, url=event.url,
                    footer=f"{event.source} · {event.id}", timestamp=_when(event))
    if event.summary and event.summary != event.title:
        layout.line(escape(short(event.summary, 600)))
    if event.organization:
        layout.field(_word(language, "organization"), [escape(event.organization)], inline=True)
    if event.registrant and event.registrant != event.organization:
        layout.field(_word(language, "registrant"), [escape(event.registrant)], inline=True)
    if event.publisher:
        layout.field(_word(language, "source"), [escape(event.publisher)], inline=True)
    moment = event.published_at or event.occurred_at
    if moment:
        layout.field(_word(language, "date"), [moment.strftime("%Y-%m-%d")], inline=True)
    for key, names in (("institutions", list(event.institutions)),
                       ("officials", [", ".join(p for p in (o.name, o.title) if p) for o in event.officials]),
                       ("subjects", list(event.subjects)), ("lobbyists", list(event.lobbyists))):
        if names:
            shown = [escape(name) for name in names[:TOP_NAMES]]
            if len(names) > TOP_NAMES:
                shown.append(_word(language, "more", n=len(names) - TOP_NAMES))
            layout.field(card_phrase(language, key), shown)
    return pack(layout.embeds(), _continued(message.lines[0], language))


def _amendment(message: Message) -> list[list[Embed]]:
    event, language = message.events[0], message.language
    layout = Layout(message.lines[0], color=AMBER, url=event.url, footer=f"{event.source} · {event.id}",
                    timestamp=_when(event))
    # every change is shown (the neutral text keeps 12); the rest of `lines` is the change list and the link
    changes = [f"• {escape(change)}" for change in message.changes] or [escape(message.lines[1])]
    layout.lines([f"**{_word(language, 'changes')}**", *changes])
    return pack(layout.embeds(), _continued(message.lines[0], language))


def _batch(message: Message) -> list[list[Embed]]:
    language, events = message.language, list(message.events)
    layout = Layout(message.lines[0], color=BLUE)
    institutions = Counter(i for e in events for i in e.institutions)
    if institutions:
        layout.field(card_phrase(language, "institutions"),
                     [f"{escape(name)} ({n})" for name, n in institutions.most_common(TOP_NAMES)])
    layout.lines([_item(event) for event in events[:BATCH_ITEMS]])
    if len(events) > BATCH_ITEMS:
        layout.line(_word(language, "more", n=len(events) - BATCH_ITEMS))
    return pack(layout.embeds(), _continued(message.lines[0], language))


def _digest(message: Message) -> list[list[Embed]]:
    """A digest part: one field per organisation with its records as links (all of them: every record of the
    part is recorded as delivered, so none may be dropped)."""
    language = message.language
    layout = Layout(message.lines[0], color=GREY)
    for organization, items in group_by_organization(message.events):
        name = f"{organization} ({len(items)})"
        layout.field(name, [_item(event) for event in items], more=_continued(organization, language))
    return pack(layout.embeds(), _continued(message.lines[0], language))


def _notice(message: Message) -> list[list[Embed]]:
    language = message.language
    if message.status == "ok":
        layout = Layout("✅ " + message.lines[0], color=GREEN)
        return pack(layout.embeds())
    layout = Layout("⚠️ " + message.lines[0], color=RED)
    layout.lines([escape(line) for line in message.lines[1:2]])
    if message.action:
        layout.field(_word(language, "todo"), [escape(message.action)])
    return pack(layout.embeds(), _continued(message.title, language))


def _plain(lines: list[str], *, title: str = "", language: str = "en", color: int = BLUE) -> list[list[Embed]]:
    """Lines as embeds: `title` (or the first line) as the title, the rest as the description."""
    if not title:
        title, lines = (lines[0] if lines else "lobbybot"), lines[1:]
    layout = Layout(title, color=color)
    layout.lines(lines)
    return pack(layout.embeds(), _continued(title, language))


# --- search answers -------------------------------------------------------------------------------------------


def summary_embeds(summary: Summary, *, language: str = "en") -> list[list[Embed]]:
    """The summary card: counts as fields, then top names, the 12-month sparkline, the latest records and news
    mentions as links."""
    def w(key: str, **values: object) -> str:
        return card_phrase(language, key, **values)

    filters = "".join([f" {w('since', d=summary.since)}" if summary.since else "",
                       f" {w('in', source=summary.source)}" if summary.source else ""])
    title = w("lobbying", query=quoted(summary.query)) + filters
    footer = w("sample", sample=summary.sample, total=summary.total) if summary.sample < summary.total else ""
    layout = Layout(title, color=BLUE if summary.total else GREY, footer=footer)
    if not summary.total:
        layout.line(w("none"))
        return pack(layout.embeds())
    by_source = " · ".join(f"{name} {n}" for name, n in summary.by_source.items())
    lobbyists = " · ".join(f"{name} {n}" for name, n in summary.lobbyists.by_source.items())
    layout.field(w("records"), [f"**{summary.total}**", by_source], inline=True)
    layout.field(w("lobbyists"), [f"**{summary.lobbyists.total}**", *([lobbyists] if lobbyists else [])],
                 inline=True)
    layout.field(w("comms"), [f"**{summary.communications_last_12_months}**"], inline=True)
    layout.field(w("active"), [f"**{summary.active_registrations}**"], inline=True)
    for key, counts in (("institutions", summary.institutions), ("officials", summary.officials),
                        ("subjects", summary.subjects)):
        if counts:
            layout.field(w(key), [f"{escape(c.name)} ({c.count})" for c in counts[:TOP_NAMES]], inline=True)
    if summary.monthly:
        per_month = [month.count for month in summary.monthly]
        layout.field(w("months"), [f"`{sparkline(per_month)}` {summary.monthly[0].month} → "
                                   f"{summary.monthly[-1].month} · {w('peak', n=max(per_month))}"])
    if summary.latest:
        layout.field(w("latest"), [f"{item.date} · {item.source} · {link(item.title, item.url, 100)}"
                                   for item in summary.latest], more=_continued(w("latest"), language))
    if summary.news.total:
        layout.field(f"{w('news')}: {summary.news.total}",
                     [f"{item.date} · {link(item.title, item.url, 100)}" for item in summary.news.latest]
                     or ["—"])
    return pack(layout.embeds(), _continued(title, language))


def answer_embeds(answer: Answer, *, language: str = "en") -> list[list[Embed]]:
    """A `/lobby` answer: the summary card, or its lines (errors in red, titled as a problem)."""
    if answer.summary is not None:
        return summary_embeds(answer.summary, language=language)
    if answer.error:
        return _plain(answer.lines, title="⚠️ " + (answer.title or _word(language, "problem")), language=language,
                      color=RED)
    if answer.title:
        return _plain(answer.lines, title=answer.title, language=language)
    return _plain(answer.lines, language=language)


__all__ = ["answer_embeds", "message_embeds", "summary_embeds"]

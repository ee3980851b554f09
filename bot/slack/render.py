"""Block Kit from the neutral layer: the summary card (`workers.query.Summary`), `/lobby` answers
(`bot.commands.Answer`) and delivered messages (`bot.render.Message`, by its `kind`), in French and English.

Every function that makes messages returns a list of payloads `[(text, blocks), …]`: `text` is the notification
and accessibility fallback (always set), `blocks` one message's blocks. Slack's limits hold for each payload
(research/stack.md §1.7): at most 50 blocks, section text ≤ 3,000 characters, a field ≤ 2,000 and ≤ 10 fields
per section, header ≤ 150, and ≤ `MESSAGE_CHARS` characters of blocks in all (Slack refuses ~13k with
`msg_blocks_too_long` even when each block fits). What does not fit in one message goes into the next one
("(2/3)" in the fallback text); long lists are cut with a visible "… and N more" line, never silently.

Text from records is escaped for mrkdwn (`&`, `<`, `>`), so a title cannot ping `<!channel>` or break a link;
links are `<url|title>` with the URL's `|`, `<`, `>` percent-encoded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from bot.commands import Answer
from bot.render import (
    BATCH_LINES,
    Message,
    card_phrase,
    group_by_organization,
    kind_label,
    say,
    short,
    sparkline,
)
from workers.events import Event
from workers.query import Summary
from workers.terms import quoted

Block = dict[str, Any]
Payload = tuple[str, list[Block]]

MAX_BLOCKS = 50
SECTION_CHARS = 3000
FIELD_CHARS = 2000
HEADER_CHARS = 150
MESSAGE_CHARS = 12_000  # below the ~13k at which Slack answers msg_blocks_too_long
TEXT_CHARS = 500  # the fallback text is a notification line, not the whole message
LINE_CHARS = 1000  # one list line (a title and its link) never fills a section by itself
ANSWER_LINES = 150  # more lines than this, or more characters than the next, in a /lobby answer are cut
ANSWER_CHARS = 30_000  # with "… and N more": a response_url takes at most 5 messages, this makes at most 3

# Slack's own phrases; the card's are `bot.render.card_phrase`, the alerts' `bot.render.say`.
_WORDS = {
    "en": {"organization": "Organisation", "date": "Date", "more_items": "… and {n} more", "continued": "(continued)",
           "why": "why this alert", "error": "Sorry:", "lobbyists_field": "Lobbyists", "officials_field": "Officials"},
    "fr": {"organization": "Organisation", "date": "Date", "more_items": "… et {n} autres", "continued": "(suite)",
           "why": "pourquoi cette alerte", "error": "Désolé :", "lobbyists_field": "Lobbyistes",
           "officials_field": "Titulaires"},
}
_SOURCES = {
    "en": {"ocl": "Federal registry (OCL)", "clq": "Quebec registry (CLQ)", "lda": "U.S. LDA", "news": "News"},
    "fr": {"ocl": "Registre fédéral (CAL)", "clq": "Registre du Québec (CLQ)", "lda": "LDA (États-Unis)",
           "news": "Nouvelles"},
}


def _w(language: str, key: str, **values: object) -> str:
    return _WORDS.get(language, _WORDS["en"])[key].format(**values)


def _source(name: str, language: str) -> str:
    return _SOURCES.get(language, _SOURCES["en"]).get(name, name.upper())


# -- mrkdwn and blocks -----------------------------------------------------------------------------------------
def escape(text: str) -> str:
    """mrkdwn-safe text: Slack's three control characters as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, title: str, limit: int = 200) -> str:
    """`<url|title>`, or the escaped title alone when there is no URL."""
    label = escape(short(title.replace("\n", " "), limit)) or escape(url)
    if not url:
        return label
    safe = url.replace("&", "&amp;").replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return f"<{safe}|{label}>"


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": short(text, HEADER_CHARS), "emoji": True}}


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": short(text, SECTION_CHARS)}}


def fields(pairs: Sequence[tuple[str, str]]) -> list[Block]:
    """Sections of at most 10 `*label*\\nvalue` fields (values already mrkdwn)."""
    items = [{"type": "mrkdwn", "text": short(f"*{escape(label)}*\n{value}", FIELD_CHARS)} for label, value in pairs]
    return [{"type": "section", "fields": items[i:i + 10]} for i in range(0, len(items), 10)]


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": short(text, SECTION_CHARS)}]}


def sections(lines: Iterable[str], *, title: str = "") -> list[Block]:
    """Pack mrkdwn lines into as few sections as fit (≤ 3,000 characters each); `title` heads the first."""
    blocks: list[Block] = []
    current = [f"*{escape(title)}*"] if title else []
    size = len(current[0]) if current else 0
    for line in lines:
        line = short(line, LINE_CHARS)
        if current and size + 1 + len(line) > SECTION_CHARS:
            blocks.append(section("\n".join(current)))
            current, size = [], 0
        current.append(line)
        size += len(line) + (1 if size else 0)
    if current:
        blocks.append(section("\n".join(current)))
    return blocks


def _size(block: Block) -> int:
    return len(json.dumps(block, ensure_ascii=False))


def paginate(text: str, blocks: list[Block], *, language: str = "en") -> list[Payload]:
    """Split `blocks` into messages within Slack's block-count and total-size limits. A message after the first
    starts with a context line saying it continues the previous one."""
    pages: list[list[Block]] = [[]]
    size = 0
    for block in blocks:
        page = pages[-1]
        if page and (len(page) >= MAX_BLOCKS or size + _size(block) > MESSAGE_CHARS):
            pages.append([context(f"_{_w(language, 'continued')}_")])
            size = _size(pages[-1][0])
        pages[-1].append(block)
        size += _size(block)
    fallback = short(escape(text.strip() or "lobbybot"), TEXT_CHARS)
    if len(pages) == 1:
        return [(fallback, pages[0])]
    return [(f"{fallback} ({n}/{len(pages)})", page) for n, page in enumerate(pages, 1)]


def _more(language: str, n: int) -> str:
    return f"_{_w(language, 'more_items', n=n)}_"


def _names(counts: Sequence[Any], limit: int = 5) -> str:
    return ", ".join(f"{escape(short(c.name, 120))} ({c.count})" for c in counts[:limit])


# -- the summary card --------------------------------------------------------------------------------------------
def card_blocks(summary: Summary, language: str = "en") -> list[Block]:
    """The `/lobby TERM…` card: counts as fields, top names, a 12-month sparkline, latest items and news.
    Bounded by construction (top 5 names, the summary's latest items): it always fits one message."""
    def w(key: str, **values: object) -> str:
        return card_phrase(language, key, **values)

    blocks = [header(w("lobbying", query=quoted(summary.query)))]
    filters = [w("since", d=summary.since) if summary.since else "",
               w("in", source=_source(summary.source, language)) if summary.source else ""]
    if any(filters):
        blocks.append(context(escape(" · ".join(f for f in filters if f))))
    if not summary.total:
        blocks.append(section(w("none")))
        return blocks
    counts = [(w("records"), f"{summary.total:,}".replace(",", " "))]
    counts += [(_source(name, language), str(n)) for name, n in list(summary.by_source.items())[:6]]
    per_source = ", ".join(f"{n} {name.upper()}" for name, n in summary.lobbyists.by_source.items())
    counts.append((w("lobbyists"), f"{summary.lobbyists.total}" + (f" ({per_source})" if per_source else "")))
    counts.append((w("comms"), str(summary.communications_last_12_months)))
    counts.append((w("active"), str(summary.active_registrations)))
    blocks.extend(fields(counts[:10]))
    names = [f"*{w(key)}:* {_names(values)}" for key, values in
             (("institutions", summary.institutions), ("officials", summary.officials),
              ("subjects", summary.subjects)) if values]
    if names:
        blocks.extend(sections(names))
    if summary.sample < summary.total:
        blocks.append(context(w("sample", sample=summary.sample, total=summary.total)))
    if summary.monthly:
        months = [m.count for m in summary.monthly]
        blocks.append(section(f"*{w('months')}:* `{sparkline(months)}`  "
                              f"{summary.monthly[0].month} → {summary.monthly[-1].month} · "
                              f"{w('peak', n=max(months))}"))
    if summary.latest:
        blocks.append({"type": "divider"})
        blocks.extend(sections((f"`{item.date}` {item.source.upper()} · {link(item.url, item.title, 150)}"
                                for item in summary.latest), title=w("latest")))
    if summary.news.total:
        lines = [f"`{item.date}` {link(item.url, item.title, 150)}" for item in summary.news.latest]
        if summary.news.total > len(summary.news.latest):
            lines.append(_more(language, summary.news.total - len(summary.news.latest)))
        blocks.extend(sections(lines, title=f"{w('news')} ({summary.news.total})"))
    return blocks


def card_text(summary: Summary, language: str = "en") -> str:
    query = " ".join(summary.query)
    records = card_phrase(language, "records").lower()
    return f"{card_phrase(language, 'lobbying', query=query)} — {summary.total} {records}"


# -- /lobby answers ----------------------------------------------------------------------------------------------
def answer_blocks(answer: Answer, language: str = "en") -> list[Payload]:
    """A `/lobby` answer: the summary card, or its text lines (errors start with a warning sign). A slash
    command may be answered with up to five messages through `response_url`; a longer list is cut visibly."""
    if answer.summary is not None:
        return paginate(card_text(answer.summary, language), card_blocks(answer.summary, language),
                        language=language)
    lines: list[str] = []
    size = 0
    for line in answer.lines[:ANSWER_LINES]:
        line = short(escape(line), LINE_CHARS)
        if size + len(line) > ANSWER_CHARS:
            break
        lines.append(line)
        size += len(line) + 1
    if len(lines) < len(answer.lines):
        lines.append(_more(language, len(answer.lines) - len(lines)))
    blocks: list[Block] = [header(answer.title)] if answer.title and not answer.error else []
    if answer.error:
        lines[:1] = [f":warning: *{_w(language, 'error')}* {lines[0] if lines else ''}"]
    blocks.extend(sections(lines))
    text = (f"⚠️ {answer.lines[0]}" if answer.error and answer.lines else answer.title or
            (answer.lines[0] if answer.lines else "lobbybot"))
    return paginate(text, blocks, language=language)


# -- delivered messages ------------------------------------------------------------------------------------------
def message_blocks(message: Message) -> list[Payload]:
    """Block Kit for a delivered `Message`, by its kind; an unknown kind shows its text lines."""
    language = message.language
    build = {"alert": _alert, "amendment": _amendment, "batch": _batch, "digest": _digest,
             "notice": _notice}.get(message.kind)
    blocks = build(message) if build else sections(escape(line) for line in message.lines)
    return paginate(message.lines[0] if message.lines else "lobbybot", blocks, language=language)


def _facts(event: Event, language: str) -> list[tuple[str, str]]:
    when = event.occurred_at or event.published_at
    pairs = [(_w(language, "organization"), escape(event.organization or event.publisher))]
    pairs.append((_w(language, "date"), when.strftime("%Y-%m-%d") if when else ""))
    pairs.append((card_phrase(language, "institutions"), _joined(event.institutions)))
    pairs.append((_w(language, "officials_field"), _joined(
        [f"{o.name} ({o.title})" if o.title else o.name for o in event.officials])))
    pairs.append((_w(language, "lobbyists_field"), _joined(event.lobbyists)))
    pairs.append((card_phrase(language, "subjects"), _joined(event.subjects)))
    return [(label, value) for label, value in pairs if value]


def _joined(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(escape(short(name, 100)) for name in names[:limit])
    return shown + (f" (+{len(names) - limit})" if len(names) > limit else "")


def _alert(message: Message) -> list[Block]:
    event, language = message.events[0], message.language
    amended = f" ({say(language, 'amended')})" if "amended" in message.changes else ""
    blocks = [section(f"*{escape(kind_label(event.kind, language))}{amended}*\n{link(event.url, event.title, 300)}")]
    blocks.extend(fields(_facts(event, language)))
    if event.summary and event.summary != event.title:
        blocks.append(section(escape(short(event.summary, 280))))
    blocks.append(context(f"{_source(event.source, language)} · `{escape(event.id)}` · "
                          f"{_w(language, 'why')}: `/lobby why {escape(event.id)}`"))
    return blocks


def _amendment(message: Message) -> list[Block]:
    event, language = message.events[0], message.language
    head = say(language, "amended_head", label=kind_label(event.kind, language).lower())
    changes = [f"• {escape(change.strip())}" for change in message.changes[:40]]
    if len(message.changes) > 40:
        changes.append(_more(language, len(message.changes) - 40))
    return [section(f"*{escape(head)}*: {link(event.url, event.title, 300)}"),
            *sections(changes or [f"_{escape(say(language, 'unchanged'))}_"])]


def _event_line(event: Event, with_org: bool = True) -> str:
    org = event.organization or event.publisher
    return f"• {link(event.url, event.title, 150)}" + (f" — {escape(short(org, 80))}" if org and with_org else "")


def _batch(message: Message) -> list[Block]:
    language, events = message.language, message.events
    blocks = [section(f"*{escape(message.lines[0])}*")]
    if len(message.lines) > 1 and message.lines[1].startswith(say(language, "with")):
        blocks.append(context(escape(message.lines[1])))
    lines = [_event_line(event) for event in events[:BATCH_LINES]]
    if len(events) > BATCH_LINES:
        lines.append(f"_{escape(say(language, 'more', n=len(events) - BATCH_LINES))}_")
    return blocks + sections(lines)


def _digest(message: Message) -> list[Block]:
    blocks = [header(message.lines[0] if message.lines else message.title)]
    for organization, items in group_by_organization(message.events):
        blocks.extend(sections([_event_line(event, with_org=False) for event in items],
                               title=f"{short(organization, 200)} ({len(items)})"))
    return blocks


def _notice(message: Message) -> list[Block]:
    language = message.language
    if message.status == "ok":
        return [section(f":white_check_mark: {escape(say(language, 'recovered', source=message.title))}")]
    broken = say(language, "broken", source=message.title, status=message.status, reason=message.reason)
    blocks = [section(f":warning: *{escape(broken)}*"), context(escape(say(language, "silent")))]
    if message.action:
        blocks.append(section(escape(say(language, "todo", action=message.action))))
    return blocks

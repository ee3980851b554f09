"""Discord embeds as plain dicts in Discord's JSON shape, laid out within Discord's limits.

An embed is `{"title", "description", "url", "color", "fields": [{"name", "value", "inline"}], "footer":
{"text"}, "timestamp"}`: the REST poster sends it as is, the gateway client turns it into
`discord.Embed.from_dict`. Limits (discord-api-docs `resources/message.mdx`, "Embed Limits"; over them Discord
answers 400 and nothing is posted):

    title 256 · description 4,096 · 25 fields · field name 256 · field value 1,024 · footer 2,048
    10 embeds per message · 6,000 characters over all the embeds of one message

`Layout` fills embeds line by line and field by field and opens a new embed when the next line or field would
break a limit; `pack` then groups embeds into as many messages as the 10-embed and 6,000-character limits need.
Content is therefore split, not lost; the only cuts are single lines longer than a whole description or field
value (a title of several thousand characters), shortened with "…".
"""

from __future__ import annotations

import re
from typing import Any

from bot.render import short

Embed = dict[str, Any]

TITLE = 256
DESCRIPTION = 4096
FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
EMBEDS = 10
TOTAL = 6000

BLUE, AMBER, GREEN, RED, GREY = 0x2B6CB0, 0xD69E2E, 0x38A169, 0xE53E3E, 0x718096
_MARKDOWN = re.compile(r"([\\*_`~|\[\]<>#])")


def _fit(text: str, limit: int) -> str:
    """`text` without surrounding whitespace, cut to `limit` as `bot.render.short` cuts. Discord refuses a blank
    field name or value, so a blank one must come out empty (callers then put a zero-width space)."""
    return short(text.strip(), limit)


def escape(text: str) -> str:
    """Text shown as is: Discord markdown characters escaped (a title with `*` or `[` stays a title)."""
    return _MARKDOWN.sub(r"\\\1", text)


def link(text: str, url: str, limit: int = 150) -> str:
    """A markdown link `[text](url)` (plain escaped text without a usable URL)."""
    shown = escape(_fit(text, limit))
    if not url.startswith(("http://", "https://")):
        return shown
    return f"[{shown}]({url.replace('(', '%28').replace(')', '%29').replace(' ', '%20')})"


def length(embed: Embed) -> int:
    """The characters Discord counts toward the 6,000 of a message: title, description, field names and
    values, footer text and author name."""
    fields = embed.get("fields", [])
    return (len(embed.get("title", "")) + len(embed.get("description", ""))
            + sum(len(f["name"]) + len(f["value"]) for f in fields)
            + len(embed.get("footer", {}).get("text", "")) + len(embed.get("author", {}).get("name", "")))


class Layout:
    """Builds a run of embeds: the first carries `title` and `url`, the last the `footer`; descriptions and
    fields overflow into further embeds of the same colour."""

    def __init__(self, title: str, *, color: int = BLUE, url: str = "", footer: str = "",
                 timestamp: str = "") -> None:
        self.color, self.footer = color, _fit(footer, FOOTER)
        first: Embed = {"title": _fit(title, TITLE), "color": color}
        if url.startswith(("http://", "https://")):
            first["url"] = url
        if timestamp:
            first["timestamp"] = timestamp
        self._embeds: list[Embed] = [first]
        self._lines: list[str] = []  # description lines of the current (last) embed

    @property
    def _current(self) -> Embed:
        return self._embeds[-1]

    def _room(self) -> int:
        # keep room for the footer, which the last embed gets
        return TOTAL - length(self._current) - len(self.footer)

    def _next(self) -> None:
        self._flush()
        self._embeds.append({"color": self.color})

    def _flush(self) -> None:
        if self._lines:
            self._current["description"] = "\n".join(self._lines)
            self._lines = []

    def line(self, text: str) -> None:
        """One description line (a line too long for any description is shortened)."""
        text = _fit(text, DESCRIPTION) or "\u200b"
        if self._current.get("fields"):  # fields come after the description: continue in a new embed
            self._next()
        now = len("\n".join(self._lines))
        added = len(text) + (1 if self._lines else 0)
        if now + added > DESCRIPTION or added > self._room() - now:
            self._next()
        self._lines.append(text)

    def lines(self, texts: list[str]) -> None:
        for text in texts:
            self.line(text)

    def field(self, name: str, values: list[str], *, inline: bool = False, more: str = "") -> None:
        """A field of `values` (one per line); values that do not fit in 1,024 characters continue in further
        fields named `more` (or the same name)."""
        name = _fit(name, FIELD_NAME) or "\u200b"
        chunk: list[str] = []
        chunks = []
        for value in (_fit(v, FIELD_VALUE) for v in values):
            if chunk and len("\n".join([*chunk, value])) > FIELD_VALUE:
                chunks.append(chunk)
                chunk = []
            chunk.append(value)
        chunks.append(chunk or ["\u200b"])
        for n, chunk in enumerate(chunks):
            self._add_field(name if n == 0 else _fit(more or name, FIELD_NAME), "\n".join(chunk), inline)

    def _add_field(self, name: str, value: str, inline: bool) -> None:
        self._flush()
        if len(self._current.get("fields", [])) >= FIELDS or len(name) + len(value) > self._room():
            self._next()
        self._current.setdefault("fields", []).append({"name": name, "value": value, "inline": inline})

    def embeds(self) -> list[Embed]:
        self._flush()
        if self.footer:
            self._current["footer"] = {"text": self.footer}
        return [embed for embed in self._embeds if length(embed) or embed is self._embeds[0]]


def pack(embeds: list[Embed], continued: str = "") -> list[list[Embed]]:
    """Group embeds into messages of at most 10 embeds and 6,000 characters. A message after the first that
    starts with an untitled embed gets the title `continued`, so each message says what it continues."""
    messages: list[list[Embed]] = []
    current: list[Embed] = []
    total = 0
    for embed in embeds:
        size = length(embed)
        if current and (len(current) >= EMBEDS or total + size > TOTAL):
            messages.append(current)
            current, total = [], 0
        if not current and messages and continued and not embed.get("title"):
            title = _fit(continued, TITLE)
            if size + len(title) <= TOTAL:
                embed = {"title": title, **embed}
                size += len(title)
        current.append(embed)
        total += size
    if current:
        messages.append(current)
    return messages


def within_limits(message: list[Embed]) -> bool:
    """Whether one message's embeds respect every Discord limit (what a 400 would reject)."""
    return (len(message) <= EMBEDS and sum(length(e) for e in message) <= TOTAL and all(
        len(e.get("title", "")) <= TITLE and len(e.get("description", "")) <= DESCRIPTION
        and len(e.get("fields", [])) <= FIELDS and len(e.get("footer", {}).get("text", "")) <= FOOTER
        and all(len(f["name"]) <= FIELD_NAME and len(f["value"]) <= FIELD_VALUE and f["name"] and f["value"]
                for f in e.get("fields", []))
        for e in message))

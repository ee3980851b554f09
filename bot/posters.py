"""Posters: one per platform behind the `Poster` protocol (DESIGN §8). The console poster lives here; Slack
and Discord posters live in `bot/slack/` and `bot/discord/`.

Channel addresses: `console:<name>`, `slack:<team>/<channel>`, `discord:<guild>/<channel>`.
"""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

from bot.render import Message


class Poster(Protocol):
    def post(self, channel: str, message: Message) -> str:
        """Post `message`; return the platform's message id. Raises `DeliveryError` subclasses."""
        ...


class ConsolePoster:
    """Prints each message as lines starting with `[console:<channel>]`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.posted = 0

    def post(self, channel: str, message: Message) -> str:
        stream = self.stream or sys.stdout
        name = channel.removeprefix("console:")
        for line in message.lines:
            stream.write(f"[console:{name}] {line}\n")
        stream.flush()
        self.posted += 1
        return str(self.posted)


def poster_for(channel: str) -> Poster:
    platform = channel.partition(":")[0]
    if platform == "console":
        return ConsolePoster()
    raise ValueError(f"no poster for {platform!r} channels yet (channel {channel!r})")

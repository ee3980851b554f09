"""Posters: one per platform behind the `Poster` protocol (DESIGN §8). The console poster lives here; Slack
and Discord posters live in `bot/slack/` and `bot/discord/`.

Channel addresses: `console:<name>`, `slack:<team>/<channel>`, `discord:<guild>/<channel>`.
"""

from __future__ import annotations

import sys
import uuid
from typing import Protocol, TextIO

from bot.render import Message
from workers.settings import Settings, current


class Poster(Protocol):
    min_interval: float  # seconds between two posts to one channel

    def post(self, channel: str, message: Message, *, thread: str | None = None) -> str:
        """Post `message` (as a reply in `thread`, a message id, where the platform has threads); return the
        new message's id. Raises `TransientDeliveryError` or `PermanentDeliveryError`."""
        ...


class ConsolePoster:
    """Prints each message as lines starting with `[console:<channel>]`; a reply names the message it answers."""

    min_interval = 0.0

    def __init__(self, stream: TextIO | None = None, *, min_interval: float = 0.0) -> None:
        self.stream = stream
        self.min_interval = min_interval  # LOBBYBOT_CONSOLE_INTERVAL: pace posts like a real platform

    def post(self, channel: str, message: Message, *, thread: str | None = None) -> str:
        stream = self.stream or sys.stdout
        name = channel.removeprefix("console:")
        message_id = uuid.uuid4().hex[:8]
        prefix = f"[console:{name}]"
        lines = message.lines or [""]
        first = f"{prefix} ↳ reply to {thread}: {lines[0]}" if thread else f"{prefix} {lines[0]}"
        stream.write("\n".join([first, *(f"{prefix} {line}" for line in lines[1:])]) + "\n")
        stream.flush()
        return message_id


def poster_for(channel: str, settings: Settings | None = None) -> Poster:
    platform = channel.partition(":")[0]
    if platform == "console":
        return ConsolePoster(min_interval=settings.console_interval if settings else 0.0)
    if platform == "discord":
        from bot.discord.poster import DiscordPoster  # only bot/discord imports discord-specific code

        return DiscordPoster.from_settings(settings or current())
    if platform == "slack":
        from bot.slack.poster import SlackPoster  # only bot/slack imports slack_sdk

        return SlackPoster(settings or current())
    raise ValueError(f"no poster for {platform!r} channels yet (channel {channel!r})")

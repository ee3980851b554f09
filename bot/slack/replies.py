"""How a `/lobby` answer goes back to Slack: the JSON of an `ack(...)` body or of a POST to `response_url`.

Who sees it: a summary card and a change (subscribe, unsubscribe, alias add) are posted `in_channel`, so the
channel sees what was looked up and who changed its alerts; everything else (help, list, sources, why, errors,
refusals) is `ephemeral`, shown to the asker only.

A `response_url` takes at most five messages in 30 minutes; the renderer cuts long answers well before that.

How it fails: never; the blocks are built by `bot.slack.render.answer_blocks`, which keeps to Slack's limits.
"""

from __future__ import annotations

from typing import Any

from redis import Redis

from bot.commands import Answer, Command
from bot.slack.render import answer_blocks
from workers.subscriptions import SubscriptionStore

WORKING = "Working on it… the answer will follow here in a moment."


def visibility(reply: Answer, command: Command | Answer | None = None) -> str:
    if reply.error:
        return "ephemeral"
    if reply.summary is not None or (isinstance(command, Command) and command.changes_state):
        return "in_channel"
    return "ephemeral"


def payloads(reply: Answer, command: Command | Answer | None = None, language: str = "en") -> list[dict[str, Any]]:
    """One JSON body per message (`text`, `blocks`, `response_type`) for `ack(**first)` or `response_url` POSTs.
    Almost every answer is one message; a very long list is split by the renderer into a few."""
    kind = visibility(reply, command)
    return [{"text": text, "blocks": blocks, "response_type": kind}
            for text, blocks in answer_blocks(reply, language)]


def channel_language(redis: Redis, prefix: str, channel: str) -> str:
    """The language a channel's answers are drawn in: French when every subscription of the channel is in
    French (Slack's slash-command payload carries no locale), else English."""
    subs = SubscriptionStore(redis, prefix).for_channel(channel)
    return "fr" if subs and all(sub.language == "fr" for sub in subs) else "en"

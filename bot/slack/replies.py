"""How a `/lobby` answer goes back to Slack: the JSON of an `ack(...)` body or of a POST to `response_url`.

Who sees it: a summary card and a change (subscribe, unsubscribe, alias add) are posted `in_channel`, so the
channel sees what was looked up and who changed its alerts; everything else (help, list, sources, why, errors,
refusals) is `ephemeral`, shown to the asker only.

How it fails: never; the blocks are built by `bot.slack.render.answer_blocks`, which keeps to Slack's limits.
"""

from __future__ import annotations

from typing import Any

from bot.commands import Answer, Command

WORKING = "Working on it… the answer will follow here in a moment."


def visibility(reply: Answer, command: Command | Answer | None = None) -> str:
    if reply.error:
        return "ephemeral"
    if reply.summary is not None or (isinstance(command, Command) and command.changes_state):
        return "in_channel"
    return "ephemeral"


def fallback_text(reply: Answer) -> str:
    """The plain text Slack shows in notifications and where blocks cannot be shown."""
    if reply.summary is not None:
        summary = reply.summary
        return f"Lobbying: {' '.join(summary.query)} — {summary.total} records"
    text = reply.text
    return f"{reply.title}\n{text}" if reply.title and text else (text or reply.title)


def payload(reply: Answer, command: Command | Answer | None = None) -> dict[str, Any]:
    """`text`, `blocks` and `response_type` for `ack(**payload)` or a `response_url` POST."""
    return {"text": fallback_text(reply)[:3000], "blocks": _blocks(reply), "response_type": visibility(reply, command)}


def _blocks(reply: Answer) -> list[dict[str, Any]]:  # TEMPORARY until bot.slack.render lands
    from bot.render import summary_card

    text = summary_card(reply.summary).text if reply.summary is not None else fallback_text(reply)
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]

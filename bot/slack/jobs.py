"""RQ jobs of the Slack app (module-level functions, primitive arguments, enqueued by dotted path).

    answer_later(response_url, team, channel, user, text)   run `/lobby text` and POST the answer to response_url
    post_pages(response_url, pages_json)                     POST the later parts of a long answer, in order

`bot.slack.commands` enqueues `answer_later` when a search is not done in time for Slack's 3 s deadline. The
job answers as the same caller would have been answered (same channel, same admin rule), renders the reply
with `bot.slack.replies.payloads` and POSTs each message as JSON with httpx.

How it fails: a network error, a 5xx or a 429 raises `ResponseUrlError` so RQ retries the job (the enqueuer
gives it two retries; a retry re-posts the parts already taken, so a rare multi-part answer may repeat one);
any other 4xx (Slack answers 404 `expired_url` after 30 minutes, or the URL was used five times) is logged and
dropped, since retrying cannot help. Running twice posts twice: the enqueuer keeps one job per command
(`slack:later:{trigger_id}`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from bot.commands import answer, parse
from bot.slack.commands import caller_of
from bot.slack.replies import channel_language, payloads
from workers.jobs import job_redis
from workers.settings import Settings, current

log = logging.getLogger("lobbybot.slack.jobs")


class ResponseUrlError(Exception):
    """Slack did not take the answer now but may later (network error, 5xx, 429): retry the job."""


def answer_later(response_url: str, team: str, channel: str, user: str, text: str) -> list[int]:
    """Answer `/lobby text` for this caller at `response_url`; returns the HTTP statuses Slack gave."""
    settings = current()
    redis = job_redis(settings)
    parsed = parse(text)
    caller = caller_of(settings, team, channel, user)
    reply = answer(redis, settings, caller, parsed)
    language = channel_language(redis, settings.redis_prefix, caller.channel)
    return [_post(response_url, page, settings) for page in payloads(reply, parsed, language)]


def post_pages(response_url: str, pages_json: str) -> list[int]:
    """POST each body of the JSON list `pages_json` to `response_url`, in order."""
    settings = current()
    return [_post(response_url, page, settings) for page in json.loads(pages_json)]


def _post(response_url: str, body: dict[str, Any], settings: Settings) -> int:
    try:
        response = httpx.post(response_url, json=body, timeout=settings.http_timeout,
                              headers={"User-Agent": settings.user_agent})
    except httpx.HTTPError as exc:
        raise ResponseUrlError(f"response_url unreachable: {type(exc).__name__}") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise ResponseUrlError(f"response_url answered {response.status_code}")
    if response.status_code >= 400:
        log.warning("response_url refused the answer (%s %s); not retried", response.status_code,
                    response.text[:100])
    return response.status_code

"""`/lobby` in Slack: translate the slash command into `bot.commands` and the `Answer` back into Block Kit.

    register(app, redis, settings, answer_within=2.0)   adds the `/lobby` listener to a bolt App

Who: the caller is `slack:{team}/{channel}` / `slack:{user}`; changes need the user in `LOBBYBOT_SLACK_ADMINS`
when that list is set (everyone may change otherwise), and are audited as `slack:U…`. The request id passed to
`bot.commands.answer` is the command's `trigger_id`, which a retried delivery (`X-Slack-Retry-Num`) repeats, so
a retry or duplicate gets the first answer back and never subscribes twice.

When: Slack waits 3 s for the HTTP answer, which bolt sends when this listener returns (the app runs it in the
request's thread: `process_before_response`). Everything but a search is answered inside `ack(...)` at once. A
search is run in a thread and answered in the ack when it is done within `answer_within` seconds (default 2; 0
sends every search the slow way); otherwise the ack says "working…" and an RQ job
(`bot.slack.jobs.answer_later`, queue `default`) posts the card to the command's `response_url`, which Slack
accepts for 30 minutes. A thread of a search that ran out of time finishes unused: the job does not depend on
this process surviving (a web dyno restarts daily). An answer too long for one message (a very long list) is
acked with its first part; `bot.slack.jobs.post_pages` posts the rest to `response_url`.

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}slack:later:{trigger_id}   "1" for an hour: this command's slow answer is already queued (a retried
                                       delivery does not queue a second one)

How it fails: never raises into bolt for user input (bad text is a usage answer). A Redis error while answering
propagates; bolt logs it and Slack shows its own "failed with the error" note to the asker.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from redis import Redis
from rq import Queue, Retry
from slack_bolt import Ack, App

from bot.commands import Answer, Caller, Command, answer, parse
from bot.slack.replies import WORKING, channel_language, payloads
from workers.settings import Settings

log = logging.getLogger("lobbybot.slack.commands")
SLOW_QUEUE = "default"
SEARCH_THREADS = 4
LATER_SECONDS = 3600
JOB = "bot.slack.jobs.answer_later"
PAGES_JOB = "bot.slack.jobs.post_pages"


def caller_of(settings: Settings, team: str, channel: str, user: str) -> Caller:
    return Caller(channel=f"slack:{team}/{channel}", user=f"slack:{user}",
                  can_manage=not settings.slack_admins or user in settings.slack_admins)


def register(app: App, redis: Redis, settings: Settings, *, answer_within: float = 2.0) -> None:
    """Add the `/lobby` listener to `app`; searches slower than `answer_within` seconds are answered later."""
    searches = _SearchPool(SEARCH_THREADS)
    queue = Queue(SLOW_QUEUE, connection=redis)

    def lobby(ack: Ack, command: dict[str, Any]) -> None:
        team, channel, user = command.get("team_id", ""), command.get("channel_id", ""), command.get("user_id", "")
        text = command.get("text") or ""
        request_id = command.get("trigger_id") or ""
        caller = caller_of(settings, team, channel, user)
        parsed = parse(text)
        if isinstance(parsed, Command) and parsed.name == "search":
            reply = _search_within(searches, redis, settings, caller, parsed, answer_within)
            if reply is None:
                _answer_later(redis, settings, queue, command, request_id)
                ack(text=WORKING, response_type="ephemeral")
                return
        else:
            reply = answer(redis, settings, caller, parsed, request_id=request_id)
        pages = payloads(reply, parsed, channel_language(redis, settings.redis_prefix, caller.channel))
        ack(**pages[0])
        if len(pages) > 1:  # an ack is one message: the rest follow through response_url, in order
            queue.enqueue(PAGES_JOB, command.get("response_url", ""), json.dumps(pages[1:]),
                          description="post the rest of a /lobby answer",  # not the response_url: it is a secret
                          retry=Retry(max=2, interval=[5, 30]))

    app.command("/lobby")(lobby)


def _search_within(pool: _SearchPool, redis: Redis, settings: Settings, caller: Caller, command: Command,
                   seconds: float) -> Answer | None:
    """The search's answer when it is ready within `seconds`, else None (the caller answers later). When every
    search thread is still busy with a search that ran out of time, this one goes straight to the job instead
    of queuing behind them and timing out too."""
    if seconds <= 0 or not pool.slots.acquire(blocking=False):
        return None
    future = pool.executor.submit(answer, redis, settings, caller, command)
    future.add_done_callback(lambda _: pool.slots.release())
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        return None


class _SearchPool:
    """The threads that run searches for acks, and how many of them are free."""

    def __init__(self, threads: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lobby-search")
        self.slots = threading.BoundedSemaphore(threads)


def _answer_later(redis: Redis, settings: Settings, queue: Queue, command: dict[str, Any], request_id: str) -> None:
    if request_id and not redis.set(f"{settings.redis_prefix}slack:later:{request_id}", "1", nx=True,
                                    ex=LATER_SECONDS):
        log.info("slow /lobby answer already queued for this command (a retried delivery)")
        return
    # Slack refuses a response_url after 30 minutes: retry soon or not at all.
    queue.enqueue(JOB, command.get("response_url", ""), command.get("team_id", ""), command.get("channel_id", ""),
                  command.get("user_id", ""), command.get("text") or "", retry=Retry(max=2, interval=[5, 30]),
                  description="answer a slow /lobby search",  # RQ logs descriptions; response_url must not show
                  job_timeout=120)

"""`SlackPoster`: posts delivered messages to Slack with `chat.postMessage` (the `Poster` protocol of
`bot.posters`), for channel addresses `slack:<team>/<channel>`.

The token is `SLACK_BOT_TOKEN`, or the workspace's installed bot token (`bot.slack.installations.bot_token`).
Each team gets one `WebClient(base_url=LOBBYBOT_SLACK_API_URL)` with two retry handlers: connection errors
(twice) and HTTP 429 (`RateLimitErrorRetryHandler`, `RATE_LIMIT_RETRIES` times, waiting `Retry-After` plus
jitter, but never longer than `MAX_RETRY_WAIT` seconds in-process: a longer wait goes back to RQ). The delivery
core paces posts `min_interval` = 1 s apart per channel, Slack's "one message per second per channel".
An amendment is a thread reply (`thread_ts`); a message Slack's limits split into several payloads
(`bot.slack.render`) is posted in order and its first `ts` returned.

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`), only for a message split into several payloads:

    {prefix}slack:parts:{channel}:{sha1 of the payloads}   hash page number → ts of the page posted, 1 day;
                                                          a retry after page 2 of 3 failed posts only page 3

How it fails (the delivery core's rules, DESIGN §8):
- `TransientDeliveryError` (retry later; `retry_after` when Slack said): `ratelimited` after the retries above,
  HTTP 5xx, connection errors and timeouts, and any error not listed below.
- `PermanentDeliveryError` (the channel's subscriptions are paused with the reason and what to do):
  `channel_not_found`, `not_in_channel`, `is_archived`, `account_inactive`, `token_revoked`, `token_expired`,
  `invalid_auth`, `not_authed`, `missing_scope`, `restricted_action`, `team_access_not_granted`, a malformed
  address, and no token for the team.
- Blocks Slack refuses (`invalid_blocks`, `msg_blocks_too_long`, …) are posted again as plain text once.
The token is never logged nor put in a reason (slack_sdk redacts the Authorization header in its debug log).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

from redis import Redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.render import Message
from bot.slack import web_api_url
from bot.slack.installations import bot_token
from bot.slack.render import Payload, escape, message_blocks
from workers.errors import PermanentDeliveryError, TransientDeliveryError
from workers.jobs import job_redis
from workers.settings import Settings
from workers.sources.http import retry_after

log = logging.getLogger("lobbybot.slack.poster")

RATE_LIMIT_RETRIES = 2
MAX_RETRY_WAIT = 10  # seconds; the delivery lock lasts 120 s, and other channels wait for this worker
PARTS_TTL = 86400
TEXT_ONLY_CHARS = 39_000  # Slack truncates `text` beyond 40,000 characters
_BLOCK_ERRORS = {"invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long", "msg_too_long"}


def _resume(channel: str) -> str:
    return f"then `lobbybot resume {channel}`"


# error → (reason, what to do); {channel}, {team}, {resume} are filled in.
PERMANENT = {
    "channel_not_found": ("Slack channel {id} does not exist in workspace {team}, or it is private and lobbybot "
                          "is not in it", "invite @lobbybot to the channel (or subscribe an existing one), {resume}"),
    "not_in_channel": ("lobbybot is not a member of Slack channel {id}",
                       "invite @lobbybot to the channel (`/invite @lobbybot`), {resume}"),
    "is_archived": ("Slack channel {id} is archived", "unarchive it (or subscribe another channel), {resume}"),
    "account_inactive": ("lobbybot's Slack bot user in workspace {team} is deactivated",
                         "reinstall lobbybot in the workspace, {resume}"),
    "token_revoked": ("workspace {team} revoked lobbybot's token (the app was uninstalled)",
                      "reinstall lobbybot (/slack/install), {resume}"),
    "token_expired": ("lobbybot's token for workspace {team} expired and could not be refreshed",
                      "check SLACK_CLIENT_ID/SLACK_CLIENT_SECRET, or reinstall lobbybot (/slack/install), {resume}"),
    "invalid_auth": ("Slack rejected lobbybot's token for workspace {team}",
                     "check SLACK_BOT_TOKEN, or reinstall lobbybot (/slack/install), {resume}"),
    "not_authed": ("no Slack token was sent for workspace {team}",
                   "set SLACK_BOT_TOKEN or install lobbybot (/slack/install), {resume}"),
    "missing_scope": ("lobbybot lacks the Slack permission {needed}",
                      "add the scope to the app (slack-manifest.yml) and reinstall it, {resume}"),
    "restricted_action": ("the workspace does not let lobbybot post in Slack channel {id}",
                          "ask a workspace admin to allow apps to post there, {resume}"),
    "team_access_not_granted": ("lobbybot's token has no access to workspace {team}",
                                "grant the app access to the workspace (Enterprise Grid admin), {resume}"),
    "no_token": ("lobbybot is not installed in Slack workspace {team}",
                 "install it (/slack/install) or set SLACK_BOT_TOKEN, {resume}"),
}


class PatientRateLimitHandler(RateLimitErrorRetryHandler):
    """`RateLimitErrorRetryHandler` that waits in-process only when Slack asks for at most `max_wait` seconds;
    a longer `Retry-After` ends the call, so the job is retried by RQ instead of holding the worker."""

    def __init__(self, max_retry_count: int = RATE_LIMIT_RETRIES, max_wait: float = MAX_RETRY_WAIT) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        return _retry_after(response.headers if response is not None else {}) <= self.max_wait


def _retry_after(headers: Any) -> float:
    """Seconds from the `Retry-After` header (1 s when absent or unreadable). slack_sdk hands headers as a dict
    whose keys keep Slack's case and whose values may be lists, so the header is looked up by hand."""
    for key, value in dict(headers or {}).items():
        if key.lower() == "retry-after":
            wait = retry_after(str(value[0] if isinstance(value, list | tuple) else value))
            return 1.0 if wait is None else wait
    return 1.0


class SlackPoster:
    """Posts to `slack:<team>/<channel>` with the team's bot token."""

    min_interval = 1.0

    def __init__(self, settings: Settings, redis: Redis | None = None, *, min_interval: float = 1.0,
                 rate_limit_retries: int = RATE_LIMIT_RETRIES, max_retry_wait: float = MAX_RETRY_WAIT) -> None:
        self.settings = settings
        self._redis = redis
        self.min_interval = min_interval
        self.rate_limit_retries = rate_limit_retries
        self.max_retry_wait = max_retry_wait
        self._clients: dict[str, WebClient] = {}

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = job_redis(self.settings)
        return self._redis

    def client(self, channel: str, team: str) -> WebClient:
        if team not in self._clients:
            token = bot_token(self.redis, self.settings, team)
            if not token:
                raise _permanent("no_token", channel, team, {})
            base_url = web_api_url(self.settings.slack_api_url)
            self._clients[team] = WebClient(
                token=token, base_url=base_url, timeout=int(self.settings.http_timeout),
                retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2),
                                PatientRateLimitHandler(self.rate_limit_retries, self.max_retry_wait)])
        return self._clients[team]

    def post(self, channel: str, message: Message, *, thread: str | None = None) -> str:
        team, channel_id = parse_address(channel)
        client = self.client(channel, team)
        payloads = message_blocks(message)
        if len(payloads) == 1:
            return self._send(client, channel, team, channel_id, payloads[0], message, thread)
        # Several messages: remember each page posted, so a retry after a failure mid-way sends only the rest.
        digest = hashlib.sha1(json.dumps(payloads, sort_keys=True).encode()).hexdigest()
        key = f"{self.settings.redis_prefix}slack:parts:{channel}:{digest}"
        done = {int(k): (v.decode() if isinstance(v, bytes) else v) for k, v in self.redis.hgetall(key).items()}
        for page, payload in enumerate(payloads, 1):
            if page in done:
                continue
            if done and self.min_interval:
                time.sleep(self.min_interval)
            done[page] = self._send(client, channel, team, channel_id, payload, message, thread)
            with self.redis.pipeline() as pipe:
                pipe.hset(key, str(page), done[page])
                pipe.expire(key, PARTS_TTL)
                pipe.execute()
        return done[1]

    def _send(self, client: WebClient, channel: str, team: str, channel_id: str, payload: Payload,
              message: Message, thread: str | None) -> str:
        text, blocks = payload
        try:
            try:
                response = client.chat_postMessage(channel=channel_id, text=text, blocks=blocks, thread_ts=thread,
                                                   unfurl_links=False, unfurl_media=False)
            except SlackApiError as exc:
                if exc.response.get("error") not in _BLOCK_ERRORS:
                    raise
                log.warning("Slack refused the blocks for %s (%s): posting plain text", channel,
                            exc.response.get("error"))
                response = client.chat_postMessage(channel=channel_id, text=escape(message.text)[:TEXT_ONLY_CHARS],
                                                   thread_ts=thread, unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            raise _mapped(exc, channel, team) from None
        except (OSError, TimeoutError) as exc:  # URLError, connection refused/reset after the retries
            raise TransientDeliveryError(f"cannot reach Slack for {channel}: {type(exc).__name__}") from None
        ts = str(response.get("ts") or "")
        log.debug("posted to %s ts=%s%s", channel, ts, f" in thread {thread}" if thread else "")
        return ts


def parse_address(channel: str) -> tuple[str, str]:
    """`slack:T123/C456` → ("T123", "C456"); anything else is a permanent error (it will never work)."""
    platform, _, rest = channel.partition(":")
    team, _, channel_id = rest.partition("/")
    if platform != "slack" or not team or not channel_id or "/" in channel_id:
        raise PermanentDeliveryError(f"{channel!r} is not a Slack channel address; what to do: subscribe "
                                     "slack:<team id>/<channel id>, e.g. slack:T0123/C0456")
    return team, channel_id


def _permanent(error: str, channel: str, team: str, response: Any) -> PermanentDeliveryError:
    reason, action = PERMANENT[error]
    values = {"id": channel.rpartition("/")[2], "team": team, "needed": response.get("needed") or "chat:write",
              "resume": _resume(channel)}
    said = "" if error == "no_token" else f" (Slack: {error})"
    return PermanentDeliveryError(f"{reason.format(**values)}{said}; what to do: {action.format(**values)}")


def _mapped(exc: SlackApiError, channel: str, team: str) -> TransientDeliveryError | PermanentDeliveryError:
    response = exc.response
    error = str(response.get("error") or "")
    status = response.status_code
    if status == 429 or error == "ratelimited":
        wait = _retry_after(response.headers)
        return TransientDeliveryError(f"Slack rate-limited posts to {channel}; retry in {wait:g} s",
                                      retry_after=wait)
    if error in PERMANENT:
        return _permanent(error, channel, team, response)
    if status >= 500:
        return TransientDeliveryError(f"Slack answered HTTP {status} for {channel}")
    return TransientDeliveryError(f"Slack refused the post to {channel}: {error or f'HTTP {status}'}")

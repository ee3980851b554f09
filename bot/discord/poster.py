"""`DiscordPoster`: posts alerts to Discord channels over REST (httpx), from RQ workers, with no gateway.

    POST {LOBBYBOT_DISCORD_API_URL}/channels/{channel id}/messages
    Authorization: Bot <DISCORD_TOKEN>        User-Agent: DiscordBot (<url>, <version>)
    {"embeds": [...], "nonce": "<24 hex>", "enforce_nonce": true, "allowed_mentions": {"parse": []},
     "message_reference": {"message_id", "channel_id", "fail_if_not_exists": false}}   (replies only)

Channel addresses are `discord:<guild id>/<channel id>`. A neutral message that needs more than one Discord
message (10 embeds, 6,000 characters) is posted as several, in order; its id is the first one's.

Idempotency: the nonce is derived from the channel, the message's kind, the (event id, version) pairs it shows
(or its text, for a notice) and the part number, so a retry sends the same nonce and, with `enforce_nonce`,
Discord returns the message it already created instead of creating another ("for the past few minutes",
discord-api-docs `resources/message.mdx`). A lost response (timeout, dropped connection) is retried here at
once with the same nonce; an RQ retry minutes later is covered while Discord still remembers the nonce.
Two notices with the same text within those minutes would collapse into one: harmless.

Amendments reply to the original alert (`thread` is its message id) with `fail_if_not_exists: false`, so a
deleted original makes a plain message instead of an error. Mentions are never parsed: a record titled
"@everyone" pings nobody.

How it fails (`workers/errors.py`):
- 429: waits `retry_after` (JSON body, float seconds; `Retry-After` header as a fallback), global
  (`X-RateLimit-Global`) or not, up to `max_attempts` tries and `max_wait` seconds per wait, then
  `TransientDeliveryError(retry_after=…)`. A bucket emptied by a success (`X-RateLimit-Remaining: 0`) is waited
  out (`X-RateLimit-Reset-After`) before the next post, so a burst does not provoke 429s.
- 5xx, timeouts and transport errors (after the in-place retries), unexpected 4xx → `TransientDeliveryError`.
- 404 code 10003 Unknown Channel, 403 code 50001 Missing Access, 403 code 50013 Missing Permissions (and any
  other 403), 401, no `DISCORD_TOKEN`, a malformed address → `PermanentDeliveryError` whose reason says what
  happened and what to do; the delivery core pauses the channel's subscriptions with it.
The token is never logged nor put in an error (only its `SecretStr` is kept).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx
from pydantic import SecretStr

from bot.discord.embeds import Embed
from bot.discord.render import message_embeds
from bot.render import Message
from workers.errors import PermanentDeliveryError, TransientDeliveryError
from workers.settings import Settings
from workers.sources.http import retry_after

log = logging.getLogger("lobbybot.discord")

try:
    VERSION = version("lobbybot")
except PackageNotFoundError:  # running from a source tree that was not installed
    VERSION = "0.1"


def channel_id(channel: str) -> str:
    """`discord:<guild>/<channel>` → the channel id. Raises `PermanentDeliveryError` for another shape."""
    platform, _, rest = channel.partition(":")
    _, _, cid = rest.rpartition("/")
    if platform != "discord" or not cid.isdigit():
        raise PermanentDeliveryError(f"{channel!r} is not a Discord channel address (discord:<guild id>/<channel "
                                     "id>); subscribe again with /lobby subscribe in the channel")
    return cid


def nonce(channel: str, message: Message, part: int = 0) -> str:
    """The same 24 characters for every attempt at posting part `part` of `message` to `channel`."""
    events = " ".join(f"{event.id}@{event.version}" for event in message.events)
    what = events or message.text  # a notice has no event: its text says which one it is
    seed = "\n".join([channel, message.kind, what, f"{message.part[0]}/{message.part[1]}", str(part)])
    return hashlib.blake2b(seed.encode(), digest_size=12).hexdigest()


def _permanent(status: int, code: int, channel: str) -> str | None:
    """The reason (with what to do) for an answer that no retry can fix; None when a retry may help."""
    resume = f"then run `lobbybot resume {channel}`"
    if status == 401:
        return ("Discord rejected DISCORD_TOKEN (401 Unauthorized): the token is wrong or was reset. Set "
                f"DISCORD_TOKEN on the workers to the bot's current token (Developer Portal → Bot), {resume}")
    if status == 404 and code == 10003:
        return ("Unknown Channel (Discord 10003): the channel was deleted or is not one the bot can reach. "
                f"Subscribe again with /lobby subscribe in a channel that exists, or {resume} if it comes back")
    if status == 403 and code == 50001:
        return ("Missing Access (Discord 50001): the bot cannot see this channel. Give the lobbybot role View "
                f"Channel there, or invite the bot to the server again, {resume}")
    if status == 403 and code == 50013:
        return ("Missing Permissions (Discord 50013): the bot cannot post here. Give the lobbybot role Send "
                f"Messages, Embed Links and Read Message History in this channel, {resume}")
    if status == 403:
        return f"Discord refused the post (403, code {code}); check the bot's permissions in the channel, {resume}"
    return None


class DiscordPoster:
    """The `Poster` for `discord:` channels (see the module docstring for what it sends and how it fails)."""

    min_interval = 0.5  # Discord's own per-channel bucket is paced from its headers; this only spreads bursts

    def __init__(self, token: SecretStr | None, *, api_url: str = "https://discord.com/api/v10",
                 timeout: float = 10.0, max_attempts: int = 5, max_wait: float = 30.0, backoff: float = 1.0,
                 min_interval: float | None = None, contact: str = "") -> None:
        self.token = token
        self.api_url = api_url.rstrip("/")
        self.timeout, self.max_attempts, self.max_wait, self.backoff = timeout, max_attempts, max_wait, backoff
        if min_interval is not None:
            self.min_interval = min_interval
        url = contact if contact.startswith(("http://", "https://")) else "lobbybot"
        self.user_agent = f"DiscordBot ({url}, {VERSION})"
        self._resume_at: dict[str, float] = {}  # channel id → monotonic time its bucket refills

    @classmethod
    def from_settings(cls, settings: Settings) -> DiscordPoster:
        return cls(settings.discord_token, api_url=settings.discord_api_url,
                   timeout=min(settings.http_timeout, 15.0), contact=settings.contact)

    def post(self, channel: str, message: Message, *, thread: str | None = None) -> str:
        """Post `message` (replying to message `thread` when given); return the (first) Discord message id."""
        cid = channel_id(channel)
        if self.token is None:
            raise PermanentDeliveryError("DISCORD_TOKEN is not set on the workers, so nothing can be posted to "
                                         f"Discord; set it, then run `lobbybot resume {channel}`")
        headers = {"Authorization": f"Bot {self.token.get_secret_value()}", "User-Agent": self.user_agent}
        ids = []
        with httpx.Client(base_url=self.api_url, headers=headers, timeout=self.timeout) as http:
            for part, embeds in enumerate(message_embeds(message)):
                body: dict[str, Any] = self.body(embeds, nonce(channel, message, part))
                if thread and part == 0:
                    body["message_reference"] = {"message_id": thread, "channel_id": cid,
                                                 "fail_if_not_exists": False}
                ids.append(self._send(http, channel, cid, body))
        return ids[0]

    @staticmethod
    def body(embeds: list[Embed], nonce: str) -> dict[str, Any]:
        return {"embeds": embeds, "nonce": nonce, "enforce_nonce": True, "allowed_mentions": {"parse": []}}

    def _send(self, http: httpx.Client, channel: str, cid: str, body: dict[str, Any]) -> str:
        for attempt in range(1, self.max_attempts + 1):
            self._wait_for_bucket(cid)
            try:
                response = http.post(f"/channels/{cid}/messages", json=body)
            except httpx.TransportError as exc:  # timeout, refused, dropped: the same nonce makes a retry safe
                if attempt == self.max_attempts:
                    raise TransientDeliveryError(f"Discord did not answer ({type(exc).__name__}) after "
                                                 f"{attempt} attempts") from None
                log.info("discord %s: %s, retrying with the same nonce", channel, type(exc).__name__)
                time.sleep(self.backoff * attempt)
                continue
            if response.is_success:
                self._note_bucket(cid, response.headers)
                return str(response.json()["id"])
            payload = _json(response)
            if response.status_code == 429:
                wait = _retry_after(response, payload)
                scope = "global" if _is_global(response, payload) else response.headers.get("X-RateLimit-Scope",
                                                                                             "user")
                if attempt == self.max_attempts or wait > self.max_wait:
                    raise TransientDeliveryError(f"Discord rate limit ({scope}) for {wait:.2f} s", retry_after=wait)
                log.info("discord %s: rate limited (%s), waiting %.2f s", channel, scope, wait)
                time.sleep(wait)
                continue
            code = int(payload.get("code") or 0) if isinstance(payload.get("code"), int | str) else 0
            reason = _permanent(response.status_code, code, channel)
            if reason is not None:
                raise PermanentDeliveryError(reason)
            detail = str(payload.get("message") or response.reason_phrase)
            if response.status_code < 500:  # our request was refused (a rendering bug): loud, and retried later
                log.error("discord %s: %s %s (code %s)", channel, response.status_code, detail, code)
            raise TransientDeliveryError(f"Discord answered {response.status_code}: {detail}")
        raise AssertionError("unreachable")  # the loop returns or raises

    def _wait_for_bucket(self, cid: str) -> None:
        resume_at = self._resume_at.pop(cid, 0.0)
        delay = resume_at - time.monotonic()
        if delay > 0:
            time.sleep(min(delay, self.max_wait))

    def _note_bucket(self, cid: str, headers: httpx.Headers) -> None:
        if headers.get("X-RateLimit-Remaining") == "0":
            with contextlib.suppress(ValueError):  # a malformed header: just do not wait
                self._resume_at[cid] = time.monotonic() + float(headers.get("X-RateLimit-Reset-After", "0"))


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(response: httpx.Response, payload: dict[str, Any]) -> float:
    """Discord's JSON `retry_after` (fractional seconds, finer than the header), else the `Retry-After` header,
    else 1 s."""
    wait = retry_after(str(payload["retry_after"])) if "retry_after" in payload else None
    if wait is None:
        wait = retry_after(response.headers.get("Retry-After"))
    return 1.0 if wait is None else wait


def _is_global(response: httpx.Response, payload: dict[str, Any]) -> bool:
    return (response.headers.get("X-RateLimit-Global", "").lower() == "true" or payload.get("global") is True
            or response.headers.get("X-RateLimit-Scope") == "global")

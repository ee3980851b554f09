"""`lobbybot discord`: the gateway client that serves `/lobby` (posting alerts happens in the workers).

Redis key (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}discord:commands_hash   sha256 of the application id and the command tree's JSON payload, as last
                                    pushed to Discord

Commands are pushed only when their definition changed: on start (`setup_hook`, which runs once per process,
after login, never on a gateway reconnect as `on_ready` does), the payload `tree.get_commands()` →
`to_dict(tree)` is hashed and compared with the stored hash; only a difference sends the bulk overwrite
`PUT {LOBBYBOT_DISCORD_API_URL}/applications/{application id}/commands`, and only a success stores the new hash.
A restart, a deploy that does not touch the commands, or a reconnect costs no command write (Discord allows 200
creates per day per guild and rejects more with error 30034). A failed push is logged and retried on the next
start; the commands Discord already has keep working meanwhile.

SIGTERM (a Heroku dyno restart) and SIGINT close the client cleanly. A token Discord rejects ends the process
with one line naming DISCORD_TOKEN (exit 2).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import signal
import sys
from typing import Any

import discord
import httpx
from discord import app_commands
from redis import Redis

from bot.discord.commands import lobby_group
from bot.discord.poster import VERSION
from workers.settings import Settings

log = logging.getLogger("lobbybot.discord")


def commands_payload(tree: app_commands.CommandTree[Any]) -> list[dict[str, Any]]:
    """The JSON Discord receives for the tree's global commands (what `tree.sync()` would send)."""
    return [command.to_dict(tree) for command in tree.get_commands()]


def commands_hash(payload: list[dict[str, Any]], application_id: int | str) -> str:
    blob = json.dumps({"application_id": str(application_id), "commands": payload}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


async def sync_commands(redis: Redis, settings: Settings, tree: app_commands.CommandTree[Any],
                        application_id: int | str, http: httpx.AsyncClient) -> bool:
    """Push the tree's commands when they differ from the last push; True when they were pushed."""
    payload = commands_payload(tree)
    digest = commands_hash(payload, application_id)
    key = f"{settings.redis_prefix}discord:commands_hash"
    stored = redis.get(key)
    if isinstance(stored, bytes) and stored.decode() == digest:
        log.info("discord: /lobby commands unchanged, not synced")
        return False
    for _ in range(3):
        response = await http.put(f"/applications/{application_id}/commands", json=payload)
        if response.status_code == 429:  # honour the wait once or twice; the next start tries again otherwise
            wait = float(response.json().get("retry_after", 1.0))
            if wait > 30:
                break
            await asyncio.sleep(wait)
            continue
        if response.is_success:
            redis.set(key, digest)
            log.info("discord: /lobby commands synced (%d top-level commands)", len(payload))
            return True
        break
    log.warning("discord: could not sync /lobby commands (%s %s); will try again on the next start",
                response.status_code, response.text[:200])
    return False


def api_client(settings: Settings) -> httpx.AsyncClient:
    """An httpx client for Discord's REST API with the bot token (built where it is used, closed after)."""
    token = settings.discord_token.get_secret_value() if settings.discord_token else ""
    return httpx.AsyncClient(base_url=settings.discord_api_url.rstrip("/"), timeout=15.0,
                             headers={"Authorization": f"Bot {token}",
                                      "User-Agent": f"DiscordBot (lobbybot, {VERSION})"})


class LobbyClient(discord.Client):
    """A discord.py client with the `/lobby` tree. No privileged intent: interactions need none."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        super().__init__(intents=discord.Intents(guilds=True))
        self.redis, self.settings = redis, settings
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(lobby_group(redis, settings))
        self.tree.error(self._on_command_error)

    async def setup_hook(self) -> None:
        if self.application_id is None:  # login sets it; without it nothing can be synced
            log.warning("discord: no application id after login; commands not synced")
            return
        try:
            async with api_client(self.settings) as http:
                await sync_commands(self.redis, self.settings, self.tree, self.application_id, http)
        except httpx.HTTPError as exc:  # not stored as synced: the next start tries again
            log.warning("discord: command sync failed (%s: %s); /lobby keeps its last registered definition",
                        type(exc).__name__, exc)

    async def on_ready(self) -> None:
        log.info("discord: connected as %s to %d servers", self.user, len(self.guilds))

    async def _on_command_error(self, interaction: discord.Interaction,
                                error: app_commands.AppCommandError) -> None:
        log.exception("discord: /lobby failed", exc_info=error)
        text = "Something went wrong on our side; try again in a minute."
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)


def run(settings: Settings, redis: Redis) -> int:
    """Run the gateway client until SIGTERM/SIGINT; the exit status for the CLI."""
    if settings.discord_token is None:
        raise ValueError("DISCORD_TOKEN is not set")
    token = settings.discord_token.get_secret_value()

    async def main() -> int:
        client = LobbyClient(redis, settings)
        loop = asyncio.get_running_loop()
        closing: set[asyncio.Task[None]] = set()  # keep a reference so the task is not collected mid-close

        def close() -> None:
            log.info("discord: closing")
            closing.add(loop.create_task(client.close()))

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, close)
        try:
            async with client:
                await client.start(token)
        except discord.LoginFailure:
            print("lobbybot discord: Discord rejected DISCORD_TOKEN (improper token); copy the bot's token from "
                  "the Developer Portal → Bot", file=sys.stderr)
            return 2
        except discord.PrivilegedIntentsRequired:  # not expected: no privileged intent is asked for
            print("lobbybot discord: Discord refused the gateway intents", file=sys.stderr)
            return 1
        except (OSError, discord.GatewayNotFound, discord.HTTPException) as exc:  # DNS, refused, Discord down
            print(f"lobbybot discord: cannot reach Discord ({type(exc).__name__}: {exc}); the host restarts the "
                  "process, or check the network", file=sys.stderr)
            return 1
        return 0

    return asyncio.run(main())

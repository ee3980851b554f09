"""`lobbybot discord`: commands are pushed to Discord only when their definition changed, and the process refuses
to start without DISCORD_TOKEN."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands
from redis import Redis

from bot.discord.client import LobbyClient, api_client, sync_commands
from bot.discord.commands import lobby_group
from tests.discord_api import DiscordAPI, Limit, Status
from tests.processes import clean_env, run
from workers.settings import Settings

APP = "987654321098765432"


@pytest.fixture
def settings(make_settings: Any, discord_api: DiscordAPI) -> Settings:
    return make_settings(discord_token=discord_api.token, discord_api_url=discord_api.base_url)  # type: ignore[no-any-return]


def start(redis: Redis, settings: Settings, *, extra: app_commands.Command[Any, Any, Any] | None = None,
          application_id: str = APP) -> bool:
    """What `setup_hook` does when the process starts: build the tree, sync it if it changed."""
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents(guilds=True)))
    tree.add_command(lobby_group(redis, settings))
    if extra is not None:
        tree.add_command(extra)

    async def sync() -> bool:
        async with api_client(settings) as http:
            return await sync_commands(redis, settings, tree, application_id, http)

    return asyncio.run(sync())


def puts(api: DiscordAPI) -> list[Any]:
    return [r for r in api.requests if r.method == "PUT"]


async def _ping(interaction: discord.Interaction) -> None:
    """A command added by a later release."""


def test_commands_sync_on_first_start_only_until_they_change(redis: Redis, settings: Settings,
                                                             discord_api: DiscordAPI) -> None:
    """The first start pushes /lobby; an unchanged restart pushes nothing; a changed definition pushes again."""
    assert start(redis, settings) is True
    [first] = puts(discord_api)
    assert first.path == f"/api/v10/applications/{APP}/commands"
    assert first.headers["authorization"] == "Bot test-token"
    assert [command["name"] for command in first.body] == ["lobby"]
    assert [c["name"] for c in discord_api.commands[APP]] == ["lobby"]

    assert start(redis, settings) is False
    assert len(puts(discord_api)) == 1

    ping = app_commands.Command(name="ping", description="Is the bot there?", callback=_ping)
    assert start(redis, settings, extra=ping) is True
    assert [command["name"] for command in puts(discord_api)[-1].body] == ["lobby", "ping"]
    assert start(redis, settings, extra=ping) is False
    assert len(puts(discord_api)) == 2


def test_another_application_gets_its_commands(redis: Redis, settings: Settings, discord_api: DiscordAPI) -> None:
    """A new bot token for another application syncs even though the commands did not change."""
    assert start(redis, settings) is True
    assert start(redis, settings, application_id="111111111111111111") is True
    assert len(puts(discord_api)) == 2


def test_a_failed_sync_is_tried_again_on_the_next_start(redis: Redis, settings: Settings,
                                                        discord_api: DiscordAPI) -> None:
    """A push Discord refuses is not remembered as done: the next start pushes again."""
    discord_api.plan = [Status(500)]
    assert start(redis, settings) is False
    assert start(redis, settings) is True
    assert len(puts(discord_api)) == 2


def test_a_rate_limited_sync_waits_and_pushes_once(redis: Redis, settings: Settings, discord_api: DiscordAPI) -> None:
    """A 429 on the push is waited out (its `retry_after`), then the commands are pushed."""
    discord_api.plan = [Limit(0.05)]
    assert start(redis, settings) is True
    assert len(puts(discord_api)) == 2 and len(discord_api.commands[APP]) == 1


def test_the_invite_asks_for_exactly_the_permissions_alerts_need(redis: Redis, settings: Settings) -> None:
    """The README's invite URL carries View Channel + Send Messages + Embed Links + Read Message History, and
    the client built by `lobbybot discord` holds the /lobby group."""
    needed = discord.Permissions(view_channel=True, send_messages=True, embed_links=True, read_message_history=True)
    assert needed.value == 84992
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    assert "scope=bot%20applications.commands&permissions=84992" in readme
    client = LobbyClient(redis, settings)
    assert [command.name for command in client.tree.get_commands()] == ["lobby"]


@pytest.mark.processes
def test_lobbybot_discord_without_a_token_says_so(redis_url: str) -> None:
    """`lobbybot discord` without DISCORD_TOKEN prints one line naming it and exits 2."""
    result = run("discord", env=clean_env(REDIS_URL=redis_url), timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lobbybot discord: DISCORD_TOKEN: not set"), result.stderr

"""The `/lobby` app-command group: typed Discord options → `bot.commands.Command` → `answer` → embeds.

    /lobby search terms                         the summary card (deferred: searching may take over 3 s)
    /lobby subscribe terms [digest] [language]  digest realtime|daily|weekly; language fr|en (default: the
                                                server's locale)
    /lobby unsubscribe number · /lobby list · /lobby sources · /lobby why event_id · /lobby help
    /lobby alias [name] [aliases]               no name: list; aliases separated by "=" (AWS = Amazon)

Each callback only translates: the `Caller` is `discord:<guild>/<channel>` and `discord:<user id>`, and
`can_manage` is whether the member has Manage Channels in that channel (the resolved permissions Discord sends
with the interaction, overwrites included). The neutral layer refuses changes (subscribe, unsubscribe, alias
add) to anyone else. Discord's `default_member_permissions` cannot do this part: it applies only to a top-level
command, never to one subcommand, and `/lobby search` must stay open to every member; a server can still narrow
the whole `/lobby` command in Server Settings → Integrations.

Timing: Discord needs a first response within 3 s, after which the interaction token lasts 15 min. A search
defers at once (after a cheap check of its terms, so a mistake is answered privately rather than in the
deferred public message) and follows up; any other command answers directly unless it takes more than
`DEFER_AFTER` seconds, then defers too. The blocking Redis work runs in a thread, off the gateway's event loop.

Errors (`Answer.error`) are ephemeral: only the asker sees them. The interaction id is the request id, so an
interaction Discord delivers twice changes nothing twice (`bot.commands.answer`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

import discord
from discord import app_commands
from redis import Redis

from bot.commands import USAGE, Answer, Caller, Command, answer, parse_terms
from bot.discord.render import answer_embeds
from workers.query import QueryError, check_terms
from workers.settings import Settings

DEFER_AFTER = 2.0
Answerer = Callable[..., Answer]  # `bot.commands.answer`'s signature
HELP = [
    '`/lobby search terms` — who is lobbying whom: a summary card. Every term must match; quotes group words: '
    'amazon "hydro quebec"',
    "`/lobby subscribe terms [digest] [language]` — alert this channel about new records matching every term "
    "(realtime, daily or weekly; French or English). Needs Manage Channels",
    "`/lobby unsubscribe number` — remove subscription `number` (see `/lobby list`). Needs Manage Channels",
    "`/lobby list` — this channel's subscriptions (paused ones say why)",
    "`/lobby sources` — each source's health and last successful poll",
    "`/lobby alias name aliases` — names that mean the same organisation: name `Amazon Web Services`, aliases "
    "`AWS`. Without a name: the list. Needs Manage Channels",
    "`/lobby why event_id` — why a record was, or was not, posted here (the id is in each alert's footer)",
]


def language_of(interaction: discord.Interaction) -> Literal["fr", "en"]:
    """French when the server's (else the member's) locale is French."""
    locale = interaction.guild_locale or interaction.locale
    return "fr" if str(getattr(locale, "value", locale) or "").startswith("fr") else "en"


def caller_of(interaction: discord.Interaction) -> Caller | None:
    """Who asks and where; None outside a server channel (no channel address there)."""
    if interaction.guild_id is None or interaction.channel_id is None:
        return None
    return Caller(channel=f"discord:{interaction.guild_id}/{interaction.channel_id}",
                  user=f"discord:{interaction.user.id}", can_manage=interaction.permissions.manage_channels)


async def send(interaction: discord.Interaction, reply: Answer, *, deferred: bool) -> None:
    """Respond with `reply` as embeds: the first Discord message as the response (or the deferred response's
    follow-up), any further ones as follow-ups. Errors are ephemeral."""
    for n, embeds in enumerate(answer_embeds(reply, language=language_of(interaction))):
        objects = [discord.Embed.from_dict(embed) for embed in embeds]
        if n == 0 and not deferred:
            await interaction.response.send_message(embeds=objects, ephemeral=reply.error)
        else:
            await interaction.followup.send(embeds=objects, ephemeral=reply.error)


async def run(interaction: discord.Interaction, redis: Redis, settings: Settings, command: Command | Answer, *,
              slow: bool = False, answer_with: Answerer = answer, defer_after: float = DEFER_AFTER) -> Answer:
    """Answer `command` for the interaction's caller and respond; returns the answer (for logs and tests)."""
    caller = caller_of(interaction)
    if caller is None:
        reply = Answer(["/lobby works in a server channel (alerts and subscriptions belong to a channel)."],
                       error=True)
        await send(interaction, reply, deferred=False)
        return reply
    if isinstance(command, Command) and command.name == "search":
        try:
            check_terms(command.terms)
        except QueryError as exc:  # before deferring: a deferred response can no longer become private
            reply = Answer([str(exc), USAGE["search"]], error=True)
            await send(interaction, reply, deferred=False)
            return reply
    work = asyncio.ensure_future(asyncio.to_thread(answer_with, redis, settings, caller, command,
                                                   request_id=str(interaction.id)))
    deferred = False
    if slow or not (await asyncio.wait({work}, timeout=defer_after))[0]:
        await interaction.response.defer(thinking=True)
        deferred = True
    reply = await work
    if isinstance(command, Command) and command.name == "help" and not reply.error:
        reply = Answer(HELP, title=reply.title or "lobbybot")  # Discord's typed options, not Slack's free text
    await send(interaction, reply, deferred=deferred)
    return reply


def alias_command(name: str | None, aliases: str | None) -> Command | Answer:
    """`/lobby alias`'s options → a Command: no name lists; a name needs at least one alias."""
    if not name:
        return Command("alias")
    others = [part.strip() for part in (aliases or "").replace(";", "=").split("=") if part.strip()]
    if not others:
        return Answer([USAGE["alias"].replace("/lobby alias add NAME = ALIAS", "/lobby alias name aliases"),
                       "Give the other names in `aliases`, separated by =."], error=True)
    return Command("alias", [name.strip()], aliases=others)


def lobby_group(redis: Redis, settings: Settings, *, answer_with: Answerer = answer,
                defer_after: float = DEFER_AFTER) -> app_commands.Group:
    """The `/lobby` group, bound to a Redis client and settings built by the entry point."""

    async def reply(interaction: discord.Interaction, command: Command | Answer, *, slow: bool = False) -> None:
        await run(interaction, redis, settings, command, slow=slow, answer_with=answer_with, defer_after=defer_after)

    group = app_commands.Group(name="lobby", description="Who is lobbying whom: search the registries, get alerts "
                               "in this channel", guild_only=True)

    @group.command(name="search", description="Summary card: who lobbies whom about what (every term must match)")
    @app_commands.describe(terms='Names or words; quotes group words, e.g. amazon "hydro quebec"')
    async def search(interaction: discord.Interaction, terms: str) -> None:
        await reply(interaction, Command("search", parse_terms(terms)), slow=True)

    @group.command(name="subscribe", description="Alert this channel about new records matching every term")
    @app_commands.describe(terms='Names or words; quotes group words, e.g. amazon "hydro quebec"',
                           digest="realtime (default), or one daily/weekly digest",
                           language="Language of the alerts (default: the server's)")
    async def subscribe(interaction: discord.Interaction, terms: str,
                        digest: Literal["realtime", "daily", "weekly"] = "realtime",
                        language: Literal["fr", "en"] | None = None) -> None:
        command = Command("subscribe", parse_terms(terms), digest=digest,
                          language=language or language_of(interaction))
        await reply(interaction, command)

    @group.command(name="unsubscribe", description="Remove one of this channel's subscriptions")
    @app_commands.describe(number="The subscription's number, as /lobby list shows it")
    async def unsubscribe(interaction: discord.Interaction, number: app_commands.Range[int, 1]) -> None:
        await reply(interaction, Command("unsubscribe", number=number))

    @group.command(name="list", description="This channel's subscriptions")
    async def list_(interaction: discord.Interaction) -> None:
        await reply(interaction, Command("list"))

    @group.command(name="sources", description="Each source's health and last successful poll")
    async def sources(interaction: discord.Interaction) -> None:
        await reply(interaction, Command("sources"))

    @group.command(name="alias", description="Names that mean the same organisation (without a name: the list)")
    @app_commands.describe(name="An organisation, e.g. Amazon Web Services",
                           aliases="Its other names, separated by =, e.g. AWS = Amazon")
    async def alias(interaction: discord.Interaction, name: str | None = None, aliases: str | None = None) -> None:
        await reply(interaction, alias_command(name, aliases))

    @group.command(name="why", description="Why a record was, or was not, posted in this channel")
    @app_commands.describe(event_id="The record's id, e.g. ocl:comm:712345 (in each alert's footer)")
    async def why(interaction: discord.Interaction, event_id: str) -> None:
        await reply(interaction, Command("why", event_id=event_id.strip()))

    @group.command(name="help", description="What /lobby can do")
    async def help_(interaction: discord.Interaction) -> None:
        await reply(interaction, Command("help"))

    return group

"""`/lobby` in Discord: each app command's callback driven with a fake interaction, through the neutral layer
and a real Redis (no gateway, no patched discord.py internals)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord import app_commands
from redis import Redis

from bot.commands import answer
from bot.discord.commands import lobby_group
from tests.bot.discord.conftest import communication
from workers.aliases import AliasStore
from workers.ingest import ingest
from workers.settings import Settings
from workers.subscriptions import SubscriptionStore


@dataclass
class Sent:
    how: str  # "response", "defer" or "followup"
    embeds: list[dict[str, Any]] = field(default_factory=list)
    ephemeral: bool = False


class FakeInteraction:
    """The part of `discord.Interaction` a /lobby callback uses, recording what it is sent."""

    _ids = iter(range(1_400_000_000_000_000_000, 1_500_000_000_000_000_000))

    def __init__(self, *, manage: bool = True, guild_locale: str = "en-US", interaction_id: int | None = None,
                 guild_id: int | None = 111) -> None:
        self.id = interaction_id or next(self._ids)
        self.user = SimpleNamespace(id=42)
        self.guild_id, self.channel_id = guild_id, 222
        self.permissions = discord.Permissions(manage_channels=manage, send_messages=True)
        self.guild_locale = discord.Locale(guild_locale)
        self.locale = discord.Locale("en-US")
        self.sent: list[Sent] = []
        self.response = SimpleNamespace(send_message=self._send_message, defer=self._defer)
        self.followup = SimpleNamespace(send=self._followup)

    async def _send_message(self, content: str | None = None, *, embeds: list[discord.Embed] = (),  # type: ignore[assignment]
                            ephemeral: bool = False) -> None:
        assert not any(s.how in ("response", "defer") for s in self.sent), "responded twice"
        self.sent.append(Sent("response", [e.to_dict() for e in embeds], ephemeral))

    async def _defer(self, *, ephemeral: bool = False, thinking: bool = False) -> None:
        assert not self.sent, "deferred after responding"
        self.sent.append(Sent("defer", [], ephemeral))

    async def _followup(self, content: str | None = None, *, embeds: list[discord.Embed] = (),  # type: ignore[assignment]
                        ephemeral: bool = False) -> None:
        assert self.sent, "a follow-up needs a response or a defer first"
        self.sent.append(Sent("followup", [e.to_dict() for e in embeds], ephemeral))

    def text(self) -> str:
        return "\n".join(str(embed) for sent in self.sent for embed in sent.embeds)


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings()  # type: ignore[no-any-return]


@pytest.fixture
def group(redis: Redis, settings: Settings) -> app_commands.Group:
    return lobby_group(redis, settings)


def call(group: app_commands.Group, subcommand: str, interaction: FakeInteraction, **options: Any,
         ) -> FakeInteraction:
    """Run `/lobby <subcommand>`'s callback as discord.py would after parsing the options."""
    command = group.get_command(subcommand)
    assert isinstance(command, app_commands.Command)
    asyncio.run(command.callback(interaction, **options))  # type: ignore[arg-type]
    return interaction


def test_search_defers_then_answers_with_the_summary_card(group: app_commands.Group, redis: Redis,
                                                          settings: Settings) -> None:
    """/lobby search defers at once (3 s window) and follows up with the public summary card."""
    now = datetime.now(UTC)
    ingest(redis, settings, [communication(n).model_copy(update={"occurred_at": now - timedelta(days=n + 1),
                                                                 "published_at": now - timedelta(days=n)})
                             for n in range(3)], alert=False)
    interaction = call(group, "search", FakeInteraction(), terms='amazon "treasury board"')
    assert [s.how for s in interaction.sent] == ["defer", "followup"]
    assert not any(s.ephemeral for s in interaction.sent)
    [card] = interaction.sent[1].embeds
    assert card["title"] == 'Lobbying: amazon "treasury board"'
    fields = {f["name"]: f["value"] for f in card["fields"]}
    assert fields["Records"].startswith("**3**")
    assert fields["Federal communication reports, last 12 months"] == "**3**"


def test_a_search_mistake_is_answered_privately_without_deferring(group: app_commands.Group) -> None:
    """Terms with nothing to search are answered at once, only to the asker."""
    interaction = call(group, "search", FakeInteraction(), terms="inc")
    [sent] = interaction.sent
    assert sent.how == "response" and sent.ephemeral
    assert "nothing to search for" in interaction.text()


def test_a_manager_subscribes_the_channel(group: app_commands.Group, redis: Redis, settings: Settings) -> None:
    """Someone with Manage Channels subscribes the channel; the audit log names the Discord user."""
    interaction = call(group, "subscribe", FakeInteraction(), terms='amazon "hydro quebec"', digest="daily",
                       language="fr")
    [sent] = interaction.sent
    assert sent.how == "response" and not sent.ephemeral
    assert "Subscribed: #1 discord:111/222" in interaction.text()
    [sub] = SubscriptionStore(redis, settings.redis_prefix).for_channel("discord:111/222")
    assert sub.terms == ["amazon", "hydro quebec"] and sub.digest == "daily" and sub.language == "fr"
    assert SubscriptionStore(redis, settings.redis_prefix).audit()[0]["who"] == "discord:42"


def test_alerts_default_to_the_servers_language(group: app_commands.Group, redis: Redis, settings: Settings) -> None:
    """Without a language option, a French-speaking server gets French alerts."""
    call(group, "subscribe", FakeInteraction(guild_locale="fr"), terms="amazon")
    [sub] = SubscriptionStore(redis, settings.redis_prefix).for_channel("discord:111/222")
    assert sub.language == "fr" and sub.digest == "realtime"


def test_without_manage_channels_changes_are_refused_privately(group: app_commands.Group, redis: Redis,
                                                               settings: Settings) -> None:
    """A member without Manage Channels cannot subscribe, unsubscribe or add aliases; they are told privately."""
    aliases = AliasStore(redis, settings.redis_prefix).groups()
    for subcommand, options in (("subscribe", {"terms": "amazon"}), ("unsubscribe", {"number": 1}),
                                ("alias", {"name": "Hydro-Québec", "aliases": "HQ = Hydro"})):
        interaction = call(group, subcommand, FakeInteraction(manage=False), **options)
        [sent] = interaction.sent
        assert sent.ephemeral and "only the people allowed to manage" in interaction.text()
    assert SubscriptionStore(redis, settings.redis_prefix).for_channel("discord:111/222") == []
    assert AliasStore(redis, settings.redis_prefix).groups() == aliases


def test_list_and_unsubscribe(group: app_commands.Group) -> None:
    """/lobby list shows the channel's subscriptions; /lobby unsubscribe removes one; an unknown number is a
    private error."""
    call(group, "subscribe", FakeInteraction(), terms="amazon")
    assert "#1 discord:111/222 amazon" in call(group, "list", FakeInteraction(manage=False)).text()
    assert "Unsubscribed: #1" in call(group, "unsubscribe", FakeInteraction(), number=1).text()
    missing = call(group, "unsubscribe", FakeInteraction(), number=1)
    assert missing.sent[0].ephemeral and "no subscription #1" in missing.text()
    assert "no subscription yet" in call(group, "list", FakeInteraction()).text()


def test_a_repeated_interaction_changes_nothing_twice(group: app_commands.Group, redis: Redis,
                                                      settings: Settings) -> None:
    """The same interaction delivered twice subscribes once and answers the same both times."""
    first = call(group, "subscribe", FakeInteraction(interaction_id=77), terms="amazon")
    second = call(group, "subscribe", FakeInteraction(interaction_id=77), terms="amazon")
    assert first.text() == second.text()
    assert len(SubscriptionStore(redis, settings.redis_prefix).for_channel("discord:111/222")) == 1


def test_alias_adds_and_lists(group: app_commands.Group) -> None:
    """/lobby alias name aliases records names of one organisation; without a name it lists them; a name
    without aliases is a private usage hint."""
    assert "Alias: Hydro-Québec = HQ" in call(group, "alias", FakeInteraction(), name="Hydro-Québec",
                                              aliases="HQ").text()
    assert "Hydro-Québec = HQ" in call(group, "alias", FakeInteraction(manage=False)).text()
    hint = call(group, "alias", FakeInteraction(), name="Amazon Web Services")
    assert hint.sent[0].ephemeral and "/lobby alias name aliases" in hint.text()


def test_sources_why_and_help_answer_anyone(group: app_commands.Group) -> None:
    """Read-only commands answer every member: source health, why a record was not posted, and help written
    for Discord's options."""
    assert "feeds:" in call(group, "sources", FakeInteraction(manage=False)).text()
    why = call(group, "why", FakeInteraction(manage=False), event_id="ocl:comm:999")
    assert why.sent and why.sent[0].how == "response"
    help_text = call(group, "help", FakeInteraction(manage=False)).text()
    assert "/lobby subscribe terms [digest] [language]" in help_text and "Manage Channels" in help_text


def test_outside_a_server_it_says_where_it_works(group: app_commands.Group) -> None:
    """In a DM (no server, so no channel to alert) /lobby says it works in server channels."""
    interaction = call(group, "list", FakeInteraction(guild_id=None))
    assert interaction.sent[0].ephemeral and "server channel" in interaction.text()


def test_the_group_mirrors_slack_and_is_server_only(group: app_commands.Group) -> None:
    """The command Discord receives is /lobby with the eight subcommands and typed options, servers only."""
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents(guilds=True)))
    tree.add_command(group)
    [payload] = [command.to_dict(tree) for command in tree.get_commands()]
    assert payload["name"] == "lobby" and payload["dm_permission"] is False
    options = {option["name"]: option for option in payload["options"]}
    assert list(options) == ["search", "subscribe", "unsubscribe", "list", "sources", "alias", "why", "help"]
    digest = next(o for o in options["subscribe"]["options"] if o["name"] == "digest")
    assert [c["value"] for c in digest["choices"]] == ["realtime", "daily", "weekly"]
    assert options["unsubscribe"]["options"][0]["type"] == 4  # integer


def test_a_slow_answer_defers_before_discords_3_second_deadline(redis: Redis, settings: Settings) -> None:
    """Any command whose answer is not ready in time is deferred first, then answered as a follow-up."""
    deferred = threading.Event()

    def slow_answer(*args: Any, **kwargs: Any) -> Any:
        assert deferred.wait(10), "the command was not deferred while its answer was pending"
        return answer(*args, **kwargs)

    group = lobby_group(redis, settings, answer_with=slow_answer, defer_after=0.01)
    interaction = FakeInteraction()
    real_defer = interaction.response.defer

    async def defer(**options: Any) -> None:
        await real_defer(**options)
        deferred.set()

    interaction.response.defer = defer
    call(group, "list", interaction)
    assert [s.how for s in interaction.sent] == ["defer", "followup"]
    assert "no subscription yet" in interaction.text()

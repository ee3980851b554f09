"""The meaning of `/lobby …`, neutral of any platform (DESIGN §6): a command in, an `Answer` out.

    /lobby TERM…                          search: an `Answer` carrying a `Summary` (a card)
    /lobby search TERM…                   the same, when the first term is a subcommand's name
    /lobby subscribe TERM… [daily|weekly] [fr|en]
    /lobby unsubscribe N                  (or #N)
    /lobby list                           this channel's subscriptions, paused ones with the reason
    /lobby sources                        each source's health and last successful poll
    /lobby alias add NAME = ALIAS [= …]   (`/lobby alias` lists them)
    /lobby why EVENT_ID                   why an event was, or was not, posted here
    /lobby help                           (also: empty text, or a subcommand used wrongly)

Slack passes the command text to `parse`; Discord builds a `Command` from its typed options. Both call
`answer(redis, settings, caller, command)` and render the `Answer` their own way (`bot/slack/`, `bot/discord/`).
A first word that is not a subcommand is a search term, so `/lobby amazon` searches; a subcommand used wrongly
answers with that subcommand's usage, never an error page.

Changes (subscribe, unsubscribe, alias add) need `Caller.can_manage` (Slack: `LOBBYBOT_SLACK_ADMINS`, Discord:
Manage Channels) and are recorded in the audit log as made by `Caller.user`. A platform that may deliver one
command twice (Slack's `X-Slack-Retry-Num`, a re-sent Discord interaction) passes its request id: the first
answer is kept for a day under `{prefix}cmd:{request id}` and a repeat gets it back without acting again.

How it fails: `answer` never raises for bad input; every user mistake is an `Answer` with `error=True` whose
text says what to type instead.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import cast

from redis import Redis

from workers.aliases import AliasStore
from workers.explain import explain
from workers.health import StateStore
from workers.jobs import enabled_sources
from workers.query import QueryError, Summary, search
from workers.settings import Settings
from workers.sources import SOURCES
from workers.subscriptions import Digest, Language, Subscription, SubscriptionError, SubscriptionStore
from workers.terms import name_key

SUBCOMMANDS = ("search", "subscribe", "unsubscribe", "list", "sources", "alias", "why", "help")
REPLAY_SECONDS = 86400
HELP = [
    "/lobby TERM… — who is lobbying whom: a summary card. Each word is a term; quotes group words: "
    '/lobby amazon "hydro quebec"',
    "/lobby subscribe TERM… [daily|weekly] [fr|en] — alert this channel about new records matching every term",
    "/lobby unsubscribe N — remove subscription N (see /lobby list)",
    "/lobby list — this channel's subscriptions",
    "/lobby sources — each source's health and last successful poll",
    "/lobby alias add NAME = ALIAS — names that mean the same organisation (AWS = Amazon Web Services)",
    "/lobby why EVENT_ID — why a record was, or was not, posted here",
    "/lobby search TERM… — search for a word that is also a subcommand (e.g. /lobby search list)",
]
USAGE = {
    "search": "usage: /lobby TERM… — e.g. /lobby amazon hydro-quebec",
    "subscribe": "usage: /lobby subscribe TERM… [daily|weekly] [fr|en] — e.g. /lobby subscribe amazon daily",
    "unsubscribe": "usage: /lobby unsubscribe N — N is the number /lobby list shows",
    "alias": "usage: /lobby alias add NAME = ALIAS — e.g. /lobby alias add Amazon Web Services = AWS",
    "why": "usage: /lobby why EVENT_ID — e.g. /lobby why ocl:comm:712345",
}
_DIGESTS = ("realtime", "daily", "weekly")
_LANGUAGES = ("fr", "en")


@dataclass(frozen=True)
class Caller:
    """Who asks, and where: `channel` is a channel address (`slack:T1/C1`), `user` is what the audit log shows."""

    channel: str
    user: str
    can_manage: bool = True


@dataclass(frozen=True)
class Command:
    name: str  # one of SUBCOMMANDS
    terms: list[str] = field(default_factory=list)
    digest: Digest = "realtime"
    language: Language = "en"
    number: int | None = None  # unsubscribe
    aliases: list[str] = field(default_factory=list)  # alias add: terms[0] is the name
    event_id: str = ""  # why

    @property
    def changes_state(self) -> bool:
        return self.name in ("subscribe", "unsubscribe") or (self.name == "alias" and bool(self.terms))


@dataclass(frozen=True)
class Answer:
    """What to show: `lines` of plain text, or a `summary` card. `error` answers go to the asker only."""

    lines: list[str] = field(default_factory=list)
    summary: Summary | None = None
    error: bool = False
    title: str = ""

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def parse_terms(text: str) -> list[str]:
    """Split command text into terms: whitespace separates, double quotes (straight, curly or « ») group.
    Apostrophes are text (`l'Agence` is one word). Never raises: an unbalanced quote closes at the end."""
    for quote in "“”«»":
        text = text.replace(quote, '"')
    if text.count('"') % 2:
        text += '"'
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.quotes = '"'
    lexer.escape = ""  # a backslash is text, not an escape
    lexer.commenters = ""  # `#3` is a subscription number, not a comment
    return [term.strip() for term in lexer if term.strip()]


def parse(text: str) -> Command | Answer:
    """Slack's command text → a `Command`, or the usage `Answer` when a subcommand is used wrongly."""
    words = parse_terms(text)
    if not words:
        return Command("help")
    head, rest = words[0].casefold(), words[1:]
    if head not in SUBCOMMANDS:
        return Command("search", words)
    if head in ("help", "list", "sources"):
        return Command(head)
    if head == "search":
        return Command("search", rest) if rest else _usage("search")
    if head == "subscribe":
        digest: Digest = "realtime"
        language: Language = "en"
        while rest and rest[-1].casefold() in (*_DIGESTS, *_LANGUAGES):
            option = rest.pop().casefold()
            if option in _DIGESTS:
                digest = cast(Digest, option)
            else:
                language = cast(Language, option)
        return Command("subscribe", rest, digest=digest, language=language) if rest else _usage("subscribe")
    if head == "unsubscribe":
        number = rest[0].lstrip("#") if len(rest) == 1 else ""
        return Command("unsubscribe", number=int(number)) if number.isdigit() else _usage("unsubscribe")
    if head == "why":
        return Command("why", event_id=rest[0]) if len(rest) == 1 else _usage("why")
    # alias
    if not rest or rest == ["list"]:
        return Command("alias")
    names = [name.strip() for name in " ".join(rest[1:]).split("=")]
    if rest[0].casefold() != "add" or len(names) < 2 or not all(names):
        return _usage("alias")
    return Command("alias", [names[0]], aliases=names[1:])


def _usage(name: str) -> Answer:
    return Answer([USAGE[name], "/lobby help lists every command."], error=True)


def answer(redis: Redis, settings: Settings, caller: Caller, command: Command | Answer, *,
           request_id: str = "", since: date | None = None, source: str | None = None) -> Answer:
    """Carry out `command` for `caller`. With `request_id`, a repeat of a change returns the first answer."""
    if isinstance(command, Answer):
        return command
    if command.changes_state and not caller.can_manage:
        return Answer(["Sorry, only the people allowed to manage this channel's alerts can change them. "
                       "Ask one of them, or use /lobby list and /lobby TERM… which anyone can."], error=True)
    replay_key = f"{settings.redis_prefix}cmd:{request_id}" if request_id and command.changes_state else ""
    if replay_key and not redis.set(replay_key, "", nx=True, ex=REPLAY_SECONDS):
        kept = redis.get(replay_key)
        if kept:
            return Answer(**json.loads(kept))
        return Answer(["Already being done (this request arrived twice)."])
    try:
        reply = _carry_out(redis, settings, caller, command, since=since, source=source)
    except BaseException:
        if replay_key:
            redis.delete(replay_key)  # not done: a retry of this request must try again
        raise
    if replay_key:
        redis.set(replay_key, json.dumps(asdict(reply)), ex=REPLAY_SECONDS)
    return reply


def _carry_out(redis: Redis, settings: Settings, caller: Caller, command: Command, *,
               since: date | None, source: str | None) -> Answer:
    prefix = settings.redis_prefix
    subs = SubscriptionStore(redis, prefix)
    if command.name == "help":
        return Answer(HELP, title="lobbybot")
    if command.name == "search":
        try:
            return Answer(summary=search(redis, settings, command.terms, since=since, source=source))
        except QueryError as exc:
            return Answer([str(exc), USAGE["search"]], error=True)
    if command.name == "subscribe":
        try:
            sub = subs.add(Subscription(channel=caller.channel, terms=command.terms, digest=command.digest,
                                        language=command.language), actor=caller.user)
        except (SubscriptionError, ValueError) as exc:
            return Answer([_reason(exc), USAGE["subscribe"]], error=True)
        return Answer([f"Subscribed: {sub.describe()}", f"/lobby unsubscribe {sub.id} stops it."])
    if command.name == "unsubscribe":
        try:
            sub = subs.remove(caller.channel, command.number or 0, actor=caller.user)
        except SubscriptionError:
            return Answer([f"This channel has no subscription #{command.number}; /lobby list shows its "
                           "subscriptions."], error=True)
        return Answer([f"Unsubscribed: {sub.describe()}"])
    if command.name == "list":
        found = subs.for_channel(caller.channel)
        if not found:
            return Answer(["This channel has no subscription yet. /lobby subscribe TERM… adds one."])
        return Answer([sub.describe() for sub in found], title="Subscriptions of this channel")
    if command.name == "sources":
        return Answer(source_lines(redis, settings), title="Sources")
    if command.name == "why":
        return Answer(explain(redis, settings, command.event_id, caller.channel))
    return _alias(redis, settings, caller, command)


def _alias(redis: Redis, settings: Settings, caller: Caller, command: Command) -> Answer:
    store = AliasStore(redis, settings.redis_prefix)
    if not command.terms:
        groups = store.groups()
        return Answer([" = ".join(group) for group in groups] or ["No aliases yet."], title="Aliases")
    try:
        store.add(command.terms[0], command.aliases)
    except ValueError as exc:
        return Answer([str(exc), USAGE["alias"]], error=True)
    SubscriptionStore(redis, settings.redis_prefix).record(caller.user, "alias", " = ".join(
        [command.terms[0], *command.aliases]))
    return Answer(["Alias: " + " = ".join(store.expansions()[name_key(command.terms[0])])])


def _reason(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    message = errors()[0]["msg"] if callable(errors) else str(exc)
    return re.sub(r"^Value error, ", "", message)


def source_lines(redis: Redis, settings: Settings) -> list[str]:
    """One line per source (status and last success) and, when it is not ok, the reason and what to do."""
    states = StateStore(redis, settings.redis_prefix)
    enabled = enabled_sources(settings)
    lines = []
    for name in SOURCES:
        state = states.load(name)
        last = state.last_success.strftime("%Y-%m-%d %H:%M UTC") if state.last_success else "never"
        if name not in enabled:
            lines.append(f"{name}: off (not in LOBBYBOT_SOURCES)")
            continue
        lines.append(f"{name}: {state.status}, last success {last}")
        if state.reason:
            lines.append(f"    {state.reason}")
        if state.action:
            lines.append(f"    what to do: {state.action}")
    return lines


def lobby(redis: Redis, settings: Settings, text: str, *, since: date | None = None,
          source: str | None = None) -> Summary:
    """Answer `/lobby text` with a `Summary`. Raises `workers.query.QueryError` (its message is for the user)."""
    return search(redis, settings, parse_terms(text), since=since, source=source)

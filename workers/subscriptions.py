"""Channel subscriptions, their audit log, and matching events to them through an inverted index (DESIGN §8).

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}sub:next                 counter of subscription ids
    {prefix}sub:{id}                 JSON of one `Subscription`
    {prefix}subs:all                 SET of every subscription id
    {prefix}subs:channel:{channel}   SET of the ids of one channel
    {prefix}subs:token:{token}       SET of ids anchored on a token (the inverted index)
    {prefix}audit                    LIST of JSON audit entries, newest first (capped at 10,000)

Matching uses the same terms as search (`workers.terms`, aliases included): every term must match; a term
matches an event that has its joined key or all its words. A subscription is anchored in the inverted index on
one term only — the joined key and one word of each of that term's forms — because an event that matches the
subscription must hold one of those tokens. The term and the words are the cheapest ones: a token costs the
events that hold it (its postings in the search index, `workers.index`) times the subscriptions already filed
under it, so a rare word wins, and with an empty index the subscriptions spread over their words instead of
piling up on a common one. Anchoring every "Canadian … Association" on "canadian" would make all of them
candidates for most events.
Matching an event therefore costs one SMEMBERS per token of the event (pipelined), then a full check of the few
candidates: O(its tokens), not O(subscriptions). The anchors are stored with the subscription, so removing it
clears exactly the sets it was filed in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator
from redis import Redis

from workers.aliases import AliasStore, forms
from workers.events import Event
from workers.health import utcnow
from workers.index import SearchIndex, event_tokens
from workers.query import QueryError, check_terms
from workers.terms import Term, quoted

Digest = Literal["realtime", "daily", "weekly"]
Language = Literal["fr", "en"]
AUDIT_KEEP = 10_000
_CHANNEL = re.compile(r"^(console:[\w.-]+|slack:[\w.-]+/[\w.-]+|discord:\d+/\d+)$")
_QUIET = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
# The `feeds` source emits events whose source is `news`: a source filter may name either.
_EVENT_SOURCE = {"feeds": "news"}


class SubscriptionError(ValueError):
    """A subscription request is invalid; the message says what to change."""


def check_channel(channel: str) -> str:
    if not _CHANNEL.match(channel):
        raise SubscriptionError(f"{channel!r} is not a channel address: console:<name>, slack:<team>/<channel> "
                                "or discord:<guild id>/<channel id>")
    return channel


class Subscription(BaseModel):
    id: int = 0
    channel: str
    terms: list[str]
    sources: list[str] = Field(default_factory=list)  # empty: every source
    kinds: list[str] = Field(default_factory=list)  # empty: every kind
    digest: Digest = "realtime"
    digest_time: str = "08:00"  # local time of daily and weekly digests (weekly: Mondays)
    timezone: str = "America/Toronto"
    language: Language = "en"
    quiet: str | None = None  # "22:00-07:00": realtime alerts wait for the end of quiet hours
    paused: str = ""  # why delivery is paused (channel gone, bot removed…); empty when active
    created_by: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    anchors: list[str] = Field(default_factory=list)  # the inverted-index tokens it is filed under (set by the store)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. America/Toronto)") from None
        return value

    @field_validator("quiet")
    @classmethod
    def _quiet(cls, value: str | None) -> str | None:
        if value is not None and not _QUIET.match(value):
            raise ValueError(f"quiet hours {value!r} must look like 22:00-07:00")
        return value

    @field_validator("digest_time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", value):
            raise ValueError(f"digest time {value!r} must look like 08:00")
        return value

    def wants(self, event: Event) -> bool:
        """The source and kind filters (the terms are checked by the matcher)."""
        return self.depends_on(event.source) and (not self.kinds or event.kind in self.kinds)

    def depends_on(self, source: str) -> bool:
        """Whether records of `source` (a source name such as `feeds`, or an event's source such as `news`) can
        reach this subscription: it has no source filter, or its filter names that source."""
        if not self.sources:
            return True
        return _EVENT_SOURCE.get(source, source) in {_EVENT_SOURCE.get(name, name) for name in self.sources}

    def in_quiet_hours(self, moment: datetime) -> bool:
        if not self.quiet:
            return False
        start, end = (time.fromisoformat(part) for part in self.quiet.split("-"))
        local = moment.astimezone(ZoneInfo(self.timezone)).time()
        return start <= local < end if start < end else (local >= start or local < end)

    def describe(self) -> str:
        terms = quoted(self.terms)
        options = [self.digest if self.digest == "realtime" else f"{self.digest} at {self.digest_time}",
                   self.language]
        if self.sources:
            options.append("sources " + ",".join(self.sources))
        if self.kinds:
            options.append("kinds " + ",".join(self.kinds))
        if self.quiet:
            options.append(f"quiet {self.quiet} {self.timezone}")
        paused = f"  PAUSED: {self.paused}" if self.paused else ""
        return f"#{self.id} {self.channel} {terms} ({', '.join(options)}){paused}"




def term_matches(groups: list[list[Term]], tokens: set[str]) -> bool:
    """Every term (a group of alias forms) has a form whose joined key, or all of whose words, are in `tokens`."""
    return all(any(form.key in tokens or all(w in tokens for w in form.words) for form in group)
               for group in groups)


class SubscriptionStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def _key(self, sub_id: int | str) -> str:
        return f"{self.prefix}sub:{sub_id}"

    def _anchors(self, sub: Subscription) -> set[str]:
        """For the cheapest term: each alias form's joined key and cheapest word (see the module docstring)."""
        expansions = AliasStore(self.redis, self.prefix).expansions()
        groups = [forms(Term.parse(raw), expansions) for raw in sub.terms]
        tokens = sorted({token for group in groups for form in group for token in (form.key, *form.words) if token})
        postings = SearchIndex(self.redis, self.prefix).sizes(tokens)
        with self.redis.pipeline(transaction=False) as pipe:
            for token in tokens:
                pipe.scard(f"{self.prefix}subs:token:{token}")
            filed = dict(zip(tokens, pipe.execute(), strict=True))
        cost = {token: (postings[token][0] + 1) * (int(filed[token]) + 1) for token in tokens}

        def anchors(group: list[Term]) -> set[str]:
            return {token for form in group if form.words
                    for token in (form.key, min(form.words, key=lambda word: (cost[word], -len(word)))) if token}

        return min((anchors(group) for group in groups), key=lambda found: sum(cost[t] for t in found))

    def add(self, sub: Subscription, *, actor: str) -> Subscription:
        """Store a new subscription; raise `SubscriptionError` for bad terms or a bad channel."""
        check_channel(sub.channel)
        try:
            check_terms(sub.terms)
        except QueryError as exc:
            raise SubscriptionError(str(exc)) from None
        sub = sub.model_copy(update={"id": int(self.redis.incr(f"{self.prefix}sub:next")), "created_by": actor,
                                     "anchors": sorted(self._anchors(sub))})
        with self.redis.pipeline() as pipe:
            pipe.set(self._key(sub.id), sub.model_dump_json())
            pipe.sadd(f"{self.prefix}subs:all", sub.id)
            pipe.sadd(f"{self.prefix}subs:channel:{sub.channel}", sub.id)
            for token in sub.anchors:
                pipe.sadd(f"{self.prefix}subs:token:{token}", sub.id)
            self._audit(pipe, actor, "subscribe", sub.describe())
            pipe.execute()
        return sub

    def remove(self, channel: str, sub_id: int, *, actor: str) -> Subscription:
        sub = self.get(sub_id)
        if sub is None or sub.channel != channel:
            raise SubscriptionError(f"no subscription #{sub_id} in {channel}; `subscriptions {channel}` lists them")
        with self.redis.pipeline() as pipe:
            pipe.delete(self._key(sub_id))
            pipe.srem(f"{self.prefix}subs:all", sub_id)
            pipe.srem(f"{self.prefix}subs:channel:{channel}", sub_id)
            for token in sub.anchors or self._anchors(sub):
                pipe.srem(f"{self.prefix}subs:token:{token}", sub_id)
            self._audit(pipe, actor, "unsubscribe", sub.describe())
            pipe.execute()
        return sub

    def set_paused(self, channel: str, reason: str, *, actor: str = "lobbybot") -> list[Subscription]:
        """Pause (reason) or resume ('') every subscription of `channel`; returns those changed."""
        changed = []
        for sub in self.for_channel(channel):
            if sub.paused != reason:
                sub = sub.model_copy(update={"paused": reason})
                self.redis.set(self._key(sub.id), sub.model_dump_json())
                changed.append(sub)
        if changed:
            with self.redis.pipeline() as pipe:
                self._audit(pipe, actor, "pause" if reason else "resume", f"{channel}: {reason or 'resumed'}")
                pipe.execute()
        return changed

    def get(self, sub_id: int) -> Subscription | None:
        raw = self.redis.get(self._key(sub_id))
        return Subscription.model_validate_json(raw) if raw else None

    def get_many(self, ids: Iterable[int | bytes | str]) -> list[Subscription]:
        keys = [self._key(int(i)) for i in ids]
        raws = self.redis.mget(keys) if keys else []
        return [Subscription.model_validate_json(raw) for raw in raws if raw]

    def for_channel(self, channel: str) -> list[Subscription]:
        ids = self.redis.smembers(f"{self.prefix}subs:channel:{channel}")
        return sorted(self.get_many(ids), key=lambda sub: sub.id)

    def all(self) -> list[Subscription]:
        return sorted(self.get_many(self.redis.smembers(f"{self.prefix}subs:all")),
                      key=lambda sub: sub.id)

    def _audit(self, pipe: object, actor: str, action: str, what: str) -> None:
        entry = json.dumps({"at": utcnow().isoformat(timespec="seconds"), "who": actor, "action": action,
                            "what": what}, ensure_ascii=False)
        pipe.lpush(f"{self.prefix}audit", entry)  # type: ignore[attr-defined]
        pipe.ltrim(f"{self.prefix}audit", 0, AUDIT_KEEP - 1)  # type: ignore[attr-defined]

    def record(self, actor: str, action: str, what: str) -> None:
        """Add an entry to the audit log for a change made elsewhere (an alias added from a chat command)."""
        with self.redis.pipeline() as pipe:
            self._audit(pipe, actor, action, what)
            pipe.execute()

    def audit(self, limit: int = 50) -> list[dict[str, str]]:
        return [json.loads(raw) for raw in self.redis.lrange(f"{self.prefix}audit", 0, limit - 1)]


class Matcher:
    """Matches events to subscriptions; load it once per fan-out (it caches subscriptions and aliases)."""

    def __init__(self, store: SubscriptionStore) -> None:
        self.store = store
        self.expansions = AliasStore(store.redis, store.prefix).expansions()
        self._subs: dict[int, Subscription] = {}
        self._groups: dict[int, list[list[Term]]] = {}

    def match(self, events: Sequence[Event]) -> list[list[Subscription]]:
        """For each event, the subscriptions whose terms and filters it matches."""
        tokens = [event_tokens(event) for event in events]
        every = sorted({token for group in tokens for token in group})
        with self.store.redis.pipeline(transaction=False) as pipe:
            for token in every:
                pipe.smembers(f"{self.store.prefix}subs:token:{token}")
            found = dict(zip(every, pipe.execute(), strict=True))
        missing = {int(i) for ids in found.values() for i in ids} - set(self._subs)
        for sub in self.store.get_many(missing):
            self._subs[sub.id] = sub
            self._groups[sub.id] = [forms(Term.parse(term), self.expansions) for term in sub.terms]
        out = []
        for event, event_tokens_ in zip(events, tokens, strict=True):
            candidates = {int(i) for token in event_tokens_ for i in found[token]}
            out.append([self._subs[i] for i in sorted(candidates) if i in self._subs
                        and self._subs[i].wants(event) and term_matches(self._groups[i], event_tokens_)])
        return out


def parse_sources(values: Sequence[str], known: Sequence[str]) -> list[str]:
    unknown = [value for value in values if value not in known]
    if unknown:
        raise SubscriptionError(f"unknown source {unknown[0]!r}; one of: {', '.join(known)}")
    return list(values)

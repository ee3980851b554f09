"""`lobbybot explain EVENT_ID CHANNEL`: "why didn't it post?" answered with the rule that decided.

Reads what the ingest and fan-out recorded (`{prefix}why:{event id}`, see `workers.fanout`), the delivery
records (`bot.delivery`), the dedupe memory and the channel's subscriptions. Answers, in order: delivered at T;
not stored (never seen, or outside retention); duplicate of X; recorded silently as a baseline; held for a
digest or quiet hours; paused subscription; and when nothing was decided for the channel, which term of each
of its subscriptions did not match, with the event's closest word.
"""

from __future__ import annotations

import difflib
import json

from redis import Redis

from workers.aliases import AliasStore, forms
from workers.index import event_tokens
from workers.settings import Settings
from workers.store import EventStore
from workers.subscriptions import SubscriptionStore, term_matches
from workers.terms import Term


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def explain(redis: Redis, settings: Settings, event_id: str, channel: str) -> list[str]:
    prefix = settings.redis_prefix
    event = EventStore(redis, prefix).get(event_id)
    if event is not None:
        delivered = redis.get(f"{prefix}delivered:{channel}:{event_id}:{event.version}")
        if delivered is not None:
            value = _text(delivered)
            if value == "pending":
                return [f"{event_id} version {event.version} is being posted to {channel} right now (or its job "
                        "was cut off; it is retried)."]
            message, _, at = value.partition(" ")
            return [f"Delivered to {channel} at {at or 'an unknown time'} (message {message}, version "
                    f"{event.version})."]
        if redis.exists(f"{prefix}posted:{channel}:{event_id}"):
            return [f"An earlier version of {event_id} was delivered to {channel}; version {event.version} was not "
                    "(yet): " + _undelivered_reason(redis, prefix, event_id, channel)]
    why = {_text(k): json.loads(v) for k, v in redis.hgetall(f"{prefix}why:{event_id}").items()}
    if event is None and not why:
        seen = redis.get(f"{prefix}seen:{event_id}")
        return [f"{event_id} is not stored: " + ("it fell out of the retention window." if seen
                                                 else "lobbybot has never seen it (check the id).")]
    if "*" in why:
        return [f"{event_id}: {why['*']['decision']}."]
    if channel in why:
        decision = why[channel]
        by = f" by subscription #{decision['subscription']}" if decision.get("subscription") else ""
        return [f"{event_id} was {decision['decision']}{by} at {decision['at']}."]
    subs = SubscriptionStore(redis, prefix).for_channel(channel)
    if not subs:
        return [f"{channel} has no subscription; `lobbybot subscribe {channel} TERM…` adds one."]
    if event is None:
        return [f"{event_id} is not stored any more; no subscription of {channel} took it."]
    tokens = event_tokens(event)
    expansions = AliasStore(redis, prefix).expansions()
    matching = [sub for sub in subs if sub.wants(event) and term_matches(
        [forms(Term.parse(raw), expansions) for raw in sub.terms], tokens)]
    if matching:
        return [f"{event_id} matches subscription #{matching[0].id} of {channel} but was recorded without an alert: "
                "it came with the first poll of its source (the silent baseline), an import without --alert, or "
                "before the subscription existed."]
    lines = [f"No subscription of {channel} matched {event_id} ({event.title}):"]
    for sub in subs:
        if not sub.wants(event):
            lines.append(f"  #{sub.id}: filtered out (sources {sub.sources or 'all'}, kinds {sub.kinds or 'all'}; "
                         f"the event is {event.source}/{event.kind})")
            continue
        for raw in sub.terms:
            group = forms(Term.parse(raw), expansions)
            if term_matches([group], tokens):
                continue
            closest = difflib.get_close_matches(group[0].key, sorted(tokens), n=1, cutoff=0.6)
            hint = f"; closest word in the event: {closest[0]!r}" if closest else ""
            lines.append(f"  #{sub.id}: term {raw!r} does not match{hint}")
            break
    return lines


def _undelivered_reason(redis: Redis, prefix: str, event_id: str, channel: str) -> str:
    decision = redis.hget(f"{prefix}why:{event_id}", channel)
    return json.loads(decision)["decision"] + "." if decision else "no decision was recorded for it."

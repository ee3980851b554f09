"""Fan-out: match new and updated events to subscriptions and turn them into delivery work, per channel.

Redis keys (prefix `LOBBYBOT_REDIS_PREFIX`):

    {prefix}held:{subscription id}   ZSET of alert refs (JSON) waiting for a digest or the end of quiet hours,
                                     scored by when they were held (`workers.digests` releases them)
    {prefix}held:subs                SET of subscription ids with something held
    {prefix}why:{event id}           HASH channel → JSON decision, for `lobbybot explain` (expires after 30 days)

For each event the matching subscriptions are grouped by channel (two subscriptions of one channel post once).
A paused subscription posts nothing; a daily or weekly one holds the alert for its digest; a realtime one in
its quiet hours holds it until they end. Everything else becomes one delivery job per channel
(`bot.delivery.deliver`, enqueued by dotted path so `workers` never imports `bot`): more than
`LOBBYBOT_BATCH_THRESHOLD` alerts for one channel in one poll are posted as one summary message.

`LOBBYBOT_ALERT_CHANNEL`, when set, receives every alert as well (the demo uses it).

An alert ref is `[event id, version, verdict, [changes…]]`: the delivery job reads the event from the store
and, for an amendment, says what changed.

The fan-out journal (`workers.dedupe`, `{prefix}fanout:journal`): dedupe writes every alerting event to it in
the step that marks it seen; `settle` removes them once their delivery jobs are queued. `recover` (run by the
poll dispatcher every minute) fans out what a killed poll left there for more than `RECOVER_AFTER` seconds.
Fanning an event out twice is harmless: delivery is recorded per (channel, event id, version), so a second
job posts nothing, and a held ref is a set member.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry

from workers.dedupe import Classified, Deduper, Verdict, journal_key
from workers.health import utcnow
from workers.settings import Settings
from workers.store import EventStore
from workers.subscriptions import Matcher, Subscription, SubscriptionStore

log = logging.getLogger("lobbybot.fanout")

DELIVER = "bot.delivery.deliver"
DELIVER_QUEUE = "deliver"
# A delivery killed with its worker (SIGKILL, Heroku's shutdown) is retried; deliveries are idempotent.
DELIVERY_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])
WHY_TTL = 30 * 86400
RECOVER_AFTER = 300  # seconds; an ingest takes well under this from dedupe to its delivery jobs
RECOVERED = "(what changed was not recorded: this alert was recovered after an interrupted poll)"

Ref = list  # [event id, version, verdict, changes]


def enqueue_deliveries(redis: Redis, deliveries: Sequence[tuple[str, list[Ref], str, str]]) -> None:
    """One delivery job per (channel, refs, mode, language), all written in one pipeline (a poll that reaches
    900 channels costs one round trip, not 900)."""
    if not deliveries:
        return
    jobs = [Queue.prepare_data(DELIVER, args=(channel, refs, mode, ""), kwargs={"language": language},
                               retry=DELIVERY_RETRY, failure_ttl=7 * 86400,
                               description=f"deliver {len(refs)} {mode} to {channel}")
            for channel, refs, mode, language in deliveries]
    with redis.pipeline() as pipe:
        Queue(DELIVER_QUEUE, connection=redis).enqueue_many(jobs, pipeline=pipe)
        pipe.execute()


def hold(pipe: Pipeline, prefix: str, sub: Subscription, ref: Ref, now: datetime) -> None:
    """Keep `ref` for `sub`'s next digest or the end of its quiet hours (`workers.digests` releases it), in the
    caller's pipeline: one round trip for a whole poll, not one per held alert. The ref is added before the
    subscription is listed, so a dispatch running in between (the pipeline is not a transaction) never drops
    the subscription from `held:subs` while a ref of it is still on its way."""
    pipe.zadd(f"{prefix}held:{sub.id}", {json.dumps(ref): now.timestamp()})
    pipe.sadd(f"{prefix}held:subs", sub.id)


def _decision(what: str, now: datetime, sub: Subscription | None = None) -> str:
    return json.dumps({"decision": what, "at": now.isoformat(timespec="seconds"),
                       "subscription": sub.id if sub else None})


def fan_out(redis: Redis, settings: Settings, items: Sequence[Classified],
            amended: dict[str, list[str]] | None = None) -> int:
    """Deliver or hold `items` for the channels that want them; return how many alerts were queued or held."""
    if not items:
        return 0
    amended = amended or {}
    now = utcnow()
    matched = Matcher(SubscriptionStore(redis, settings.redis_prefix)).match([item.event for item in items])
    per_channel: dict[str, list[Ref]] = defaultdict(list)
    languages: dict[str, str] = {}  # a channel's messages speak the language of its subscription
    queued = 0
    with redis.pipeline(transaction=False) as pipe:
        for item, subs in zip(items, matched, strict=True):
            event = item.event
            ref: Ref = [event.id, event.version, item.verdict.value, amended.get(event.id, [])]
            decisions: dict[str, str] = {}
            for sub in sorted(subs, key=lambda s: bool(s.paused)):  # active subscriptions decide first
                if sub.channel in decisions:
                    continue  # one post per channel, however many of its subscriptions match
                if sub.paused:
                    decisions[sub.channel] = _decision(f"paused: {sub.paused}", now, sub)
                elif sub.digest != "realtime":
                    hold(pipe, settings.redis_prefix, sub, ref, now)
                    decisions[sub.channel] = _decision(f"held for the {sub.digest} digest", now, sub)
                    queued += 1
                elif sub.in_quiet_hours(now):
                    hold(pipe, settings.redis_prefix, sub, ref, now)
                    decisions[sub.channel] = _decision(f"held: quiet hours {sub.quiet} {sub.timezone}", now, sub)
                    queued += 1
                else:
                    per_channel[sub.channel].append(ref)
                    languages.setdefault(sub.channel, sub.language)
                    decisions[sub.channel] = _decision("queued for delivery", now, sub)
                    queued += 1
            if settings.alert_channel and settings.alert_channel not in decisions:
                per_channel[settings.alert_channel].append(ref)
                decisions[settings.alert_channel] = _decision("queued for delivery (LOBBYBOT_ALERT_CHANNEL)", now)
                queued += 1
            for channel, decision in decisions.items():
                pipe.hset(f"{settings.redis_prefix}why:{event.id}", channel, decision)
            if decisions:
                pipe.expire(f"{settings.redis_prefix}why:{event.id}", WHY_TTL)
        pipe.execute()
    enqueue_deliveries(redis, [(channel, refs, "batch" if len(refs) > settings.batch_threshold else "alerts",
                                languages.get(channel, "en")) for channel, refs in per_channel.items()])
    return queued


def _member(item: Classified) -> str:
    return f"{item.event.id}\n{item.event.version}\n{item.verdict.value}"


def settle(redis: Redis, prefix: str, items: Sequence[Classified]) -> None:
    """Take `items` out of the fan-out journal: their alerts are queued or held."""
    if items:
        redis.zrem(journal_key(prefix), *[_member(item) for item in items])


def recover(redis: Redis, settings: Settings, now: datetime | None = None) -> int:
    """Fan out the journal entries older than `RECOVER_AFTER` (a poll was killed between dedupe and fan-out);
    return how many alerts were queued or held."""
    key = journal_key(settings.redis_prefix)
    cutoff = (now or utcnow()).timestamp() - RECOVER_AFTER
    members = cast(list[bytes], redis.zrangebyscore(key, "-inf", cutoff, start=0, num=1000))
    if not members:
        return 0
    entries = [member.decode().split("\n") for member in members]
    events = EventStore(redis, settings.redis_prefix).get_many([entry[0] for entry in entries])
    # A newer version stored since then has its own journal entry (or alerted already): only the same one counts.
    items = [Classified(event, Verdict(verdict)) for (_, version, verdict), event in zip(entries, events, strict=True)
             if event is not None and event.version == version]
    # Killed before it was even stored: forget it was seen, so the next poll takes it as new and alerts it then.
    Deduper(redis, settings).forget([entry[0] for entry, event in zip(entries, events, strict=True) if event is None])
    amended = {item.event.id: [RECOVERED] for item in items if item.verdict is Verdict.UPDATED}
    queued = fan_out(redis, settings, items, amended)
    redis.zrem(key, *members)
    log.warning("fan-out journal: recovered %d alert(s) of %d record(s) an interrupted poll left unannounced",
                queued, len(items))
    return queued

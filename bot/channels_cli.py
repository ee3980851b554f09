"""`lobbybot subscribe / unsubscribe / subscriptions / resume / audit / explain`: channel subscriptions from the shell.

Each command takes (args, settings) like the rest of `bot.cli`; bad input raises `SubscriptionError`, which the
CLI prints as one line with exit code 2. Changes are recorded in the audit log as made by `cli:<user>`.
"""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable

from workers.connection import connect
from workers.explain import explain
from workers.settings import Settings
from workers.sources import SOURCES
from workers.subscriptions import Subscription, SubscriptionError, SubscriptionStore, check_channel, parse_sources

Add = Callable[[str, Callable[[argparse.Namespace, Settings], int], str], argparse.ArgumentParser]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def cmd_subscribe(args: argparse.Namespace, settings: Settings) -> int:
    if not args.terms:
        raise SubscriptionError("give at least one term: lobbybot subscribe CHANNEL TERM…")
    try:
        draft = Subscription(channel=check_channel(args.channel), terms=args.terms,
                             sources=parse_sources(args.source or [], [*SOURCES, "news"]),
                             kinds=args.kind or [], digest=args.digest, digest_time=args.at, timezone=args.tz,
                             language=args.lang, quiet=args.quiet)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        errors = getattr(exc, "errors", None)
        message = errors()[0]["msg"] if callable(errors) else str(exc)
        raise SubscriptionError(message.removeprefix("Value error, ")) from None
    sub = SubscriptionStore(connect(settings), settings.redis_prefix).add(draft, actor=_actor())
    print(f"subscribed: {sub.describe()}")
    return 0


def cmd_unsubscribe(args: argparse.Namespace, settings: Settings) -> int:
    sub = SubscriptionStore(connect(settings), settings.redis_prefix).remove(args.channel, args.id, actor=_actor())
    print(f"unsubscribed: {sub.describe()}")
    return 0


def cmd_subscriptions(args: argparse.Namespace, settings: Settings) -> int:
    store = SubscriptionStore(connect(settings), settings.redis_prefix)
    subs = store.for_channel(args.channel) if args.channel else store.all()
    if not subs:
        print("no subscriptions" + (f" in {args.channel}" if args.channel else ""))
    for sub in subs:
        print(sub.describe())
    return 0


def cmd_resume(args: argparse.Namespace, settings: Settings) -> int:
    resumed = SubscriptionStore(connect(settings), settings.redis_prefix).set_paused(
        check_channel(args.channel), "", actor=_actor())
    print(f"resumed {len(resumed)} subscription(s) of {args.channel}" if resumed
          else f"nothing to resume: no paused subscription in {args.channel}")
    return 0


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    entries = SubscriptionStore(connect(settings), settings.redis_prefix).audit(args.limit)
    if not entries:
        print("the audit log is empty")
    for entry in entries:
        print(f"{entry['at']}  {entry['who']:<20} {entry['action']:<12} {entry['what']}")
    return 0


def cmd_explain(args: argparse.Namespace, settings: Settings) -> int:
    check_channel(args.channel)
    for line in explain(connect(settings), settings, args.event_id, args.channel):
        print(line)
    return 0


def register(add: Add) -> None:
    sub = add("subscribe", cmd_subscribe, "alert CHANNEL about records matching every TERM")
    sub.add_argument("channel", metavar="CHANNEL", help="console:<name>, slack:<team>/<channel>, discord:<guild>/<id>")
    sub.add_argument("terms", nargs="*", metavar="TERM", help='same syntax as search; quote to group: "hydro quebec"')
    sub.add_argument("--digest", choices=("realtime", "daily", "weekly"), default="realtime")
    sub.add_argument("--at", default="08:00", metavar="HH:MM", help="local time of daily/weekly digests (08:00)")
    sub.add_argument("--tz", default="America/Toronto", metavar="ZONE", help="time zone (America/Toronto)")
    sub.add_argument("--lang", choices=("fr", "en"), default="en")
    sub.add_argument("--quiet", metavar="HH:MM-HH:MM", help="quiet hours: realtime alerts wait until they end")
    sub.add_argument("--source", action="append", metavar="S", help="only this source (repeatable)")
    sub.add_argument("--kind", action="append", metavar="K", help="only this kind, e.g. communication")
    unsub = add("unsubscribe", cmd_unsubscribe, "remove subscription ID of CHANNEL")
    unsub.add_argument("channel", metavar="CHANNEL")
    unsub.add_argument("id", type=int, metavar="ID")
    subs = add("subscriptions", cmd_subscriptions, "list subscriptions (of CHANNEL), with paused ones and why")
    subs.add_argument("channel", nargs="?", metavar="CHANNEL")
    resume = add("resume", cmd_resume, "resume the paused subscriptions of CHANNEL (once the bot is back in it)")
    resume.add_argument("channel", metavar="CHANNEL")
    audit = add("audit", cmd_audit, "who changed which subscription, and when (newest first)")
    audit.add_argument("--limit", type=int, default=50)
    why = add("explain", cmd_explain, "why an event was, or was not, posted to CHANNEL")
    why.add_argument("event_id", metavar="EVENT_ID")
    why.add_argument("channel", metavar="CHANNEL")

"""`lobbybot`: the entry point that wires settings, Redis and clients together (DESIGN §11).

Every command prints errors as one line on stderr and exits non-zero: 2 for a usage or settings problem, 1 for
anything else (Redis unreachable, a file that cannot be read). Nothing builds a client at import time.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import redis
from rq import Queue, SimpleWorker

from bot import channels_cli
from workers import logs
from workers.connection import connect
from workers.errors import SourceError
from workers.health import StateStore
from workers.jobs import QUEUES, enabled_sources, enqueue_poll
from workers.settings import Settings, SettingsError, current
from workers.sources import SOURCES, UnknownSourceError, build_source
from workers.subscriptions import SubscriptionError

log = logging.getLogger("lobbybot")
Command = Callable[[argparse.Namespace, Settings], int]


class UsageError(Exception):
    """A command was called wrongly; the message says how to call it."""


def run_inline(conn: redis.Redis) -> None:
    """Run every queued job in this process, then return (RQ SimpleWorker in burst mode)."""
    queues = [Queue(name, connection=conn) for name in QUEUES]
    SimpleWorker(queues, connection=conn).work(burst=True, logging_level="WARNING")


def _source_names(names: Sequence[str], settings: Settings) -> list[str]:
    """The named sources, or the enabled ones (LOBBYBOT_SOURCES) when none is named."""
    unknown = [name for name in names if name not in SOURCES]
    if unknown:
        raise UnknownSourceError(unknown[0])
    return list(names) or enabled_sources(settings)


def cmd_poll(args: argparse.Namespace, settings: Settings) -> int:
    conn = connect(settings)
    names = _source_names(args.sources, settings)
    for name in names:
        job = enqueue_poll(conn, name)
        if job is None:
            print(f"poll {name}: already queued or running")
        elif not args.inline:
            print(f"poll {name}: enqueued as job {job.id}; a worker will run it")
    if args.inline:
        run_inline(conn)
        states = StateStore(conn, settings.redis_prefix)
        for name in names:
            state = states.load(name)
            counts = ", ".join(f"{value} {key}" for key, value in state.last_counts.items() if key != "source")
            print(f"poll {name}: {state.status}; {counts}")
            if state.reason:
                print(f"  {state.reason}" + (f" — {state.action}" if state.action else ""))
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from workers.ingest import IngestReport, ingest_all

    conn = connect(settings)
    source = build_source(_source_names([args.source], settings)[0], settings)
    report = IngestReport()
    for path in args.paths:
        if not path.is_file():
            raise UsageError(f"no such file: {path}")

        def progress(done: int, name: str = path.name) -> None:
            if done % 10_000 == 0:
                print(f"import {args.source}: {name}: {done:,} records…", file=sys.stderr)

        part = ingest_all(conn, settings, source.load(path), alert=args.alert, progress=progress)
        report.add(part)
        skipped = getattr(source, "skipped", 0)
        print(f"import {args.source}: {path.name}: {part.total:,} records read, {skipped:,} skipped",
              file=sys.stderr)
    print(f"import {args.source}: {report.line()}")
    if args.inline:
        run_inline(conn)
    elif report.alerted:
        print(f"import {args.source}: {report.alerted} alerts queued; a worker will post them")
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from bot.render import summary_card
    from workers.query import QueryError, search

    if not args.terms:
        raise UsageError('give at least one term: lobbybot search TERM… (quote to group words: "hydro quebec")')
    try:
        summary = search(connect(settings), settings, args.terms, since=args.since, source=args.source)
    except QueryError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(summary_card(summary).text)
    return 0


def cmd_alias(args: argparse.Namespace, settings: Settings) -> int:
    from workers.aliases import AliasStore
    from workers.terms import name_key

    store = AliasStore(connect(settings), settings.redis_prefix)
    if args.action == "add":
        if not args.names or len(args.names) < 2:
            raise UsageError("usage: lobbybot alias add NAME ALIAS…")
        try:
            store.add(args.names[0], args.names[1:])
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        print("alias: " + " = ".join(store.expansions()[name_key(args.names[0])]))
    else:
        for group in store.groups():
            print(" = ".join(group))
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2025-01-31") from None


def cmd_sources(args: argparse.Namespace, settings: Settings) -> int:
    conn = connect(settings)
    states = StateStore(conn, settings.redis_prefix)
    if args.reset:
        state = states.load(_source_names([args.reset], settings)[0])
        state.reset()
        states.save(state)
        print(f"{args.reset}: failures forgotten; it is polled on the next dispatch")
        return 0
    enabled = enabled_sources(settings)
    for name in SOURCES:
        state = states.load(name)
        last = state.last_success.strftime("%Y-%m-%d %H:%M UTC") if state.last_success else "never"
        status = state.status if name in enabled else "off"
        print(f"{name:<8} {status:<15} last success {last}" + ("" if name in enabled else
                                                               "  (not in LOBBYBOT_SOURCES)"))
        if state.reason:
            print(f"         {state.reason}")
        if state.action:
            print(f"         action: {state.action}")
        for key, endpoint in state.endpoints.items():
            if args.verbose or endpoint.status not in ("ok", "pending"):
                detail = f" ({endpoint.reason})" if endpoint.reason else ""
                print(f"         - {endpoint.status:<9} {key}{detail}")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.lifecycle import run_worker

    return run_worker(settings, args.queues or QUEUES, burst=args.burst)


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from workers.lifecycle import run_scheduler

    return run_scheduler(settings)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from workers.status import client, gather, unreachable

    try:
        status = gather(client(settings), settings)
    except redis.RedisError as exc:
        line = unreachable(settings, exc)
        if args.json:
            print(json.dumps({"healthy": False, "redis": "unreachable", "problems": [line]}))
        else:
            print(line, file=sys.stderr)
        return 1
    print(status.json() if args.json else "\n".join(status.lines()))
    return 0 if status.healthy else 1


def cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    from bot.web import serve

    serve(settings, port=args.port or settings.port, threads=args.threads, answer_within=args.answer_within)
    return 0


def cmd_slack_socket(args: argparse.Namespace, settings: Settings) -> int:
    from bot.slack.app import build_app, mode, run_socket_mode

    if settings.slack_app_token is None:
        raise SettingsError("SLACK_APP_TOKEN: not set; Socket Mode needs the app-level token (xapp-…, Basic "
                            "Information → App-Level Tokens, scope connections:write)")
    if mode(settings, socket=True) == "off":
        raise SettingsError("SLACK_BOT_TOKEN: not set (the xoxb-… Bot User OAuth Token)")
    log.info("slack-socket: connecting to Slack over Socket Mode")
    run_socket_mode(build_app(settings, connect(settings), answer_within=args.answer_within, socket=True), settings)
    return 0


def cmd_discord(args: argparse.Namespace, settings: Settings) -> int:
    from bot.discord.client import run

    if settings.discord_token is None:
        raise SettingsError("DISCORD_TOKEN: not set; copy the bot's token from https://discord.com/developers/"
                            "applications → your app → Bot, and set DISCORD_TOKEN")
    return run(settings, connect(settings))


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import run_demo

    return run_demo(settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lobbybot", description="Lobbying registry and news alerts for Slack "
                                     "and Discord. Settings come from the environment (see .env.example).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(func=func)
        return command

    add("demo", cmd_demo, "poll bundled sample feeds twice and print the alerts (no configuration needed)")
    poll = add("poll", cmd_poll, "poll sources now (all when none is named)")
    poll.add_argument("sources", nargs="*", metavar="SOURCE", help=f"one of: {', '.join(SOURCES)}")
    poll.add_argument("--inline", action="store_true", help="run the jobs in this process instead of a worker")
    imp = add("import", cmd_import, "ingest saved files of a source (first import is silent unless --alert)")
    imp.add_argument("source", metavar="SOURCE", help=f"one of: {', '.join(SOURCES)}")
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    imp.add_argument("--alert", action="store_true", help="alert on new records instead of recording silently")
    imp.add_argument("--inline", action="store_true", help="post the alerts from this process")
    src = add("sources", cmd_sources, "show each source's health, last success and the action to take")
    src.add_argument("--reset", metavar="SOURCE", help="forget failures of SOURCE and re-enable it")
    src.add_argument("-v", "--verbose", action="store_true", help="list every endpoint, not only failing ones")
    worker = add("worker", cmd_worker, "run an RQ worker (HerokuWorker, with the RQ scheduler)")
    worker.add_argument("queues", nargs="*", metavar="QUEUE", help=f"default: {' '.join(QUEUES)}")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    add("scheduler", cmd_scheduler, "run rq cron with workers/schedule.py (run exactly one)")
    status = add("status", cmd_status, "queues, workers, scheduler, sources, backlog, paused channels; exit 1 "
                 "when unhealthy (docs/operations.md)")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    search = add("search", cmd_search, "summarise who lobbies whom about what, from the index (every term must match)")
    search.add_argument("terms", nargs="*", metavar="TERM", help='a name or word; quote to group: "hydro quebec"')
    search.add_argument("--json", action="store_true", help="print the summary as JSON")
    search.add_argument("--since", type=_day, metavar="DATE", help="only records on or after DATE (YYYY-MM-DD)")
    search.add_argument("--source", metavar="S", help="only records of source S (ocl, clq, lda, news)")
    alias = add("alias", cmd_alias, "names that mean the same organisation (AWS = Amazon Web Services)")
    alias.add_argument("action", choices=("add", "list"))
    alias.add_argument("names", nargs="*", metavar="NAME", help="add: NAME ALIAS…")
    channels_cli.register(add)
    add("discord", cmd_discord, "answer /lobby in Discord over the gateway (DISCORD_TOKEN); workers post alerts")
    web = add("web", cmd_web, "serve Slack's request URL (/slack/events) and /healthz on $PORT (gunicorn)")
    web.add_argument("--port", type=int, help="default: $PORT")
    web.add_argument("--threads", type=int, default=4, help="threads per worker process (processes: "
                     "$WEB_CONCURRENCY, default 1)")
    for command in (web, add("slack-socket", cmd_slack_socket, "answer /lobby over Slack's Socket Mode "
                                                                "(SLACK_APP_TOKEN; no public URL needed)")):
        command.add_argument("--answer-within", type=float, default=2.0, metavar="SECONDS",
                             help="a search not done by then is answered later from a worker (default 2)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = current()
        logs.configure(settings)  # one line per record, text or JSON, secrets redacted
        return args.func(args, settings)
    except (SettingsError, UsageError, UnknownSourceError, SubscriptionError) as exc:
        print(f"lobbybot {args.command}: {exc}", file=sys.stderr)
        return 2
    except SourceError as exc:
        action = f" — {exc.action}" if exc.action else ""
        print(f"lobbybot {args.command}: {exc.reason}{action}", file=sys.stderr)
        return 1
    except redis.ConnectionError as exc:
        print(f"lobbybot {args.command}: cannot reach Redis ({exc}); check REDIS_URL", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

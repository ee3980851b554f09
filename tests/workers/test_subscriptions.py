"""Subscriptions: storage, validation, the audit log, the CLI, and matching through the inverted index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError
from redis import Redis
from redis.connection import Connection, ConnectionPool

from bot.cli import main
from workers.events import Event
from workers.index import event_tokens
from workers.ingest import ingest
from workers.subscriptions import Matcher, Subscription, SubscriptionError, SubscriptionStore

PREFIX = "lobbybot:"


@pytest.fixture
def store(redis: Redis, make_settings) -> SubscriptionStore:
    make_settings(alert_channel=None)
    return SubscriptionStore(redis, PREFIX)


def add(store: SubscriptionStore, channel: str, *terms: str, **options: Any) -> Subscription:
    return store.add(Subscription(channel=channel, terms=list(terms), **options), actor="test")


def event(title: str = "A record", *, source: str = "ocl", kind: str = "communication", n: int = 1,
          **fields: Any) -> Event:
    return Event(id=f"{source}:{kind}:{n}", version="1", source=source, kind=kind, title=title, **fields)


def channels(store: SubscriptionStore, *events: Event) -> list[list[str]]:
    """For each event, the channels of the subscriptions it matches."""
    return [sorted(sub.channel for sub in subs) for subs in Matcher(store).match(list(events))]


# --- storage, validation, audit -------------------------------------------------------------------------------


def test_a_subscription_is_stored_with_the_documented_defaults(store: SubscriptionStore) -> None:
    """A new subscription gets an id, realtime delivery, English, Toronto time, and records who made it."""
    first = add(store, "slack:T123/C456", "hydro-quebec")
    second = add(store, "console:room", "amazon", "treasury board")

    assert (first.id, second.id) == (1, 2)
    stored = store.get(first.id)
    assert stored is not None and stored.terms == ["hydro-quebec"]
    assert (stored.digest, stored.language, stored.timezone, stored.quiet) == ("realtime", "en", "America/Toronto",
                                                                               None)
    assert stored.created_by == "test" and not stored.paused
    assert [sub.id for sub in store.for_channel("console:room")] == [2]
    assert [sub.id for sub in store.all()] == [1, 2]


@pytest.mark.parametrize("channel", ["room", "console:", "slack:T123", "discord:guild/chan", "email:a@b.c"])
def test_a_bad_channel_address_is_refused(store: SubscriptionStore, channel: str) -> None:
    """A channel that is not console:<name>, slack:<team>/<channel> or discord:<guild>/<channel> is refused."""
    with pytest.raises(SubscriptionError, match="not a channel address"):
        add(store, channel, "amazon")
    assert store.all() == []


@pytest.mark.parametrize("terms", [["--"], ["the", "of"], ["Inc."], ["x" * 501]])
def test_terms_that_can_never_match_are_refused(store: SubscriptionStore, terms: list[str]) -> None:
    """Terms holding no searchable word (punctuation, stop words, suffixes) or too long a query are refused."""
    with pytest.raises(SubscriptionError):
        add(store, "console:room", *terms)
    assert store.all() == []


@pytest.mark.parametrize(("options", "message"), [
    ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
    ({"quiet": "22h-7h"}, "must look like 22:00-07:00"),
    ({"quiet": "24:00-07:00"}, "must look like 22:00-07:00"),
    ({"digest_time": "8am"}, "must look like 08:00"),
    ({"digest": "hourly"}, "digest"),
    ({"language": "de"}, "language"),
])
def test_bad_options_are_refused(options: dict[str, str], message: str) -> None:
    """A bad time zone, quiet-hours range, digest time, schedule or language is refused with what is wrong."""
    with pytest.raises(ValidationError, match=message):
        Subscription(channel="console:room", terms=["amazon"], **options)  # type: ignore[arg-type]


def test_unsubscribe_needs_the_right_channel_and_id(store: SubscriptionStore) -> None:
    """Removing a subscription that does not exist, or that belongs to another channel, is refused."""
    sub = add(store, "console:room", "amazon")
    with pytest.raises(SubscriptionError, match="no subscription #99 in console:room"):
        store.remove("console:room", 99, actor="test")
    with pytest.raises(SubscriptionError, match="no subscription #1 in console:other"):
        store.remove("console:other", sub.id, actor="test")
    assert [s.id for s in store.all()] == [sub.id]

    store.remove("console:room", sub.id, actor="test")
    assert store.all() == [] and store.get(sub.id) is None
    assert channels(store, event(organization="Amazon")) == [[]], "a removed subscription still matched"


def test_every_change_is_audited_with_who_when_and_what(store: SubscriptionStore) -> None:
    """The audit log records subscribe, pause and unsubscribe: who, when and what, newest first."""
    sub = store.add(Subscription(channel="console:room", terms=["amazon"]), actor="slack:U1")
    store.set_paused("console:room", "channel_not_found")
    store.set_paused("console:room", "channel_not_found")  # no change: no second entry
    store.remove("console:room", sub.id, actor="cli:alice")

    entries = store.audit()
    assert [(e["who"], e["action"]) for e in entries] == [
        ("cli:alice", "unsubscribe"), ("lobbybot", "pause"), ("slack:U1", "subscribe")]
    assert all(e["at"][:4].isdigit() and "T" in e["at"] for e in entries)
    assert entries[2]["what"].startswith("#1 console:room amazon")
    assert entries[1]["what"] == "console:room: channel_not_found"


# --- CLI ------------------------------------------------------------------------------------------------------


def test_cli_subscribe_list_unsubscribe_and_audit(store: SubscriptionStore, capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot subscribe/subscriptions/unsubscribe/audit` manage a channel's subscriptions and show the log."""
    assert main(["subscribe", "console:room", "hydro-quebec", "treasury board", "--digest", "daily", "--lang", "fr",
                 "--quiet", "22:00-07:00", "--source", "ocl"]) == 0
    assert main(["subscribe", "slack:T1/C1", "amazon"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ('subscribed: #1 console:room hydro-quebec "treasury board" '
                                   "(daily at 08:00, fr, sources ocl, quiet 22:00-07:00 America/Toronto)")

    assert main(["subscriptions", "console:room"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        '#1 console:room hydro-quebec "treasury board" '
        "(daily at 08:00, fr, sources ocl, quiet 22:00-07:00 America/Toronto)"]
    assert main(["subscriptions"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["#1", "#2"]

    assert main(["unsubscribe", "console:room", "1"]) == 0
    assert capsys.readouterr().out.startswith("unsubscribed: #1 console:room")
    assert main(["subscriptions", "console:room"]) == 0
    assert capsys.readouterr().out == "no subscriptions in console:room\n"

    assert main(["audit"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines] == ["unsubscribe", "subscribe", "subscribe"]
    assert all(line.split()[1].startswith("cli") for line in lines)
    assert "#2 slack:T1/C1 amazon" in lines[1]


@pytest.mark.parametrize(("argv", "message"), [
    (["subscribe", "room", "amazon"], "not a channel address"),
    (["subscribe", "console:room"], "give at least one term"),
    (["subscribe", "console:room", "!!!"], "nothing to search for"),
    (["subscribe", "console:room", "amazon", "--quiet", "22-7"], "must look like 22:00-07:00"),
    (["subscribe", "console:room", "amazon", "--tz", "Nowhere/City"], "unknown time zone"),
    (["subscribe", "console:room", "amazon", "--at", "8h"], "must look like 08:00"),
    (["subscribe", "console:room", "amazon", "--source", "twitter"], "unknown source 'twitter'"),
    (["unsubscribe", "console:room", "7"], "no subscription #7 in console:room"),
    (["explain", "ocl:comm:1", "room"], "not a channel address"),
])
def test_cli_errors_are_one_line_with_exit_code_2(store: SubscriptionStore, capsys: pytest.CaptureFixture[str],
                                                 argv: list[str], message: str) -> None:
    """A bad subscription command prints one line naming the problem on stderr and exits 2; nothing is stored."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lobbybot {argv[0]}: ") and message in lines[0], lines
    assert store.all() == [] and store.audit() == []


# --- matching -------------------------------------------------------------------------------------------------


def test_every_term_must_match(store: SubscriptionStore) -> None:
    """A subscription with two terms matches only events that hold both."""
    add(store, "console:both", "amazon", "treasury board")
    both = event("Meeting", organization="Amazon Web Services Canada",
                 institutions=("Treasury Board of Canada Secretariat",), n=1)
    one = event("Meeting", organization="Amazon Web Services Canada", institutions=("Finance Canada",), n=2)
    words_apart = event("Amazon meets the board of the Treasury", n=3)

    assert channels(store, both, one, words_apart) == [["console:both"], [], ["console:both"]]


@pytest.mark.parametrize("spelling", ["Hydro-Québec", "HYDRO QUÉBEC", "HydroQuébec", "hydro-quebec inc."])
def test_accents_hyphens_and_spacing_do_not_matter(store: SubscriptionStore, spelling: str) -> None:
    """`hydro-quebec` matches Hydro-Québec however it is written; Hydro Ottawa does not match it."""
    add(store, "console:hq", "hydro-quebec")
    add(store, "console:accented", "Hydro Québec")
    matching = event(organization=spelling, n=1)
    other = event(organization="Hydro Ottawa", title="Ottawa utility meeting", n=2)

    assert channels(store, matching, other) == [["console:accented", "console:hq"], []]


def test_aliases_match_both_ways(store: SubscriptionStore) -> None:
    """A subscription to AWS matches Amazon Web Services records, and one to Amazon Web Services matches AWS."""
    add(store, "console:aws", "AWS")
    add(store, "console:long", "Amazon Web Services")
    long_name = event(organization="Amazon Web Services Canada, Inc.", n=1)
    acronym = event("AWS expands its Montreal region", source="news", kind="article", n=2)
    amazon_only = event(organization="Amazon.com.ca ULC", n=3)

    assert channels(store, long_name, acronym, amazon_only) == [["console:aws", "console:long"],
                                                               ["console:aws", "console:long"], []]


def test_source_and_kind_filters(store: SubscriptionStore) -> None:
    """--source and --kind restrict a subscription; `feeds` and `news` both name the feeds' articles."""
    add(store, "console:any", "shopify")
    add(store, "console:ocl", "shopify", sources=["ocl"])
    add(store, "console:comm", "shopify", kinds=["communication"])
    add(store, "console:feeds", "shopify", sources=["feeds"])
    add(store, "console:news", "shopify", sources=["news"])
    report = event(organization="Shopify Inc.", source="ocl", kind="communication", n=1)
    registration = event(organization="Shopify Inc.", source="ocl", kind="registration", n=2)
    article = event("Shopify lobbies Finance on digital tax", source="news", kind="article", n=3)

    assert channels(store, report, registration, article) == [
        ["console:any", "console:comm", "console:ocl"],
        ["console:any", "console:ocl"],
        ["console:any", "console:feeds", "console:news"],
    ]


class RecordingConnection(Connection):
    """A Redis connection that keeps every command it sends (what the matcher reads, at the wire)."""

    sent: ClassVar[list[tuple[Any, ...]]] = []

    def send_command(self, *args: Any, **kwargs: Any) -> None:
        RecordingConnection.sent.append(args)
        super().send_command(*args, **kwargs)

    def pack_commands(self, commands: Any) -> Any:
        commands = list(commands)
        RecordingConnection.sent.extend(tuple(command) for command in commands)
        return super().pack_commands(commands)


@pytest.fixture
def recorded(redis_url: str) -> Iterator[Redis]:
    pool = ConnectionPool.from_url(redis_url, connection_class=RecordingConnection)
    conn = Redis(connection_pool=pool)
    conn.ping()  # the connection's own handshake (HELLO, CLIENT SETINFO, SELECT) is not what we measure
    RecordingConnection.sent = []
    yield conn
    conn.close()
    pool.disconnect()


def test_matching_reads_only_the_events_own_tokens_not_every_subscription(
        store: SubscriptionStore, recorded: Redis) -> None:
    """With 2,000 subscriptions on other names, matching an event reads one index set per token of the event
    and the few subscriptions anchored there: O(its tokens), not O(subscriptions)."""
    for n in range(2000):
        add(store, f"console:c{n % 50}", f"company{n}", "ottawa")
    wanted = add(store, "console:shopify", "shopify", "finance")
    add(store, "console:other", "shopify", "health")  # anchored on a token of the event, but does not match
    news = event("Shopify lobbies Finance on digital tax", source="news", kind="article",
                 summary="The e-commerce company met officials in Ottawa about the digital services tax.")
    tokens = event_tokens(news)
    assert len(store.all()) == 2002

    RecordingConnection.sent = []
    [subs] = Matcher(SubscriptionStore(recorded, PREFIX)).match([news])

    assert [sub.id for sub in subs] == [wanted.id]
    names = [str(command[0]).upper() for command in RecordingConnection.sent]  # HVALS aliases, SMEMBERS…, MGET
    set_reads = [command[1] for command in RecordingConnection.sent if str(command[0]).upper() == "SMEMBERS"]
    subs_read = [key for command in RecordingConnection.sent if str(command[0]).upper() == "MGET"
                 for key in command[1:]]
    assert len(set_reads) <= len(tokens) and set(set_reads) <= {f"{PREFIX}subs:token:{t}" for t in tokens}
    assert len(subs_read) <= 2, f"read {len(subs_read)} subscriptions to match one event"
    assert len(names) <= len(tokens) + 3, names


def test_a_common_first_word_does_not_make_every_such_subscription_a_candidate(
        store: SubscriptionStore, recorded: Redis, make_settings) -> None:
    """With 300 subscriptions to "Canadian … Association/Council/…" organisations, matching a record of one of
    them reads a handful of subscriptions, not every subscription whose name starts with "Canadian"."""
    settings = make_settings(alert_channel=None)
    sectors = ["Bankers", "Medical", "Nurses", "Pharmacists", "Manufacturers", "Exporters", "Dairy Farmers",
               "Broadcasters", "Home Builders", "Trucking", "Airports", "Brewers", "Credit Union", "Teachers",
               "Universities", "Taxpayers", "Seafood", "Cattlemen", "Grocery", "Wireless", "Film", "Publishers",
               "Pork", "Chicken", "Egg", "Solar", "Battery", "Aerospace", "Shipbuilding", "Cement"]
    bodies = ["Association", "Council", "Federation", "Institute", "Alliance", "Coalition", "Society", "Network",
              "Board", "Forum"]
    names = [f"Canadian {sector} {body}" for sector in sectors for body in bodies]
    # What lobbybot has already recorded (the silent baseline of the registries) tells common words from rare.
    ingest(redis=store.redis, settings=settings, alert=False, events=[
        event(f"{name} met officials", organization=name, n=n) for n, name in enumerate(names)])
    for n, name in enumerate(names):
        add(store, f"console:c{n % 40}", name)
    news = event("Canadian Bankers Association presses Finance on open banking", source="news", kind="article")

    RecordingConnection.sent = []
    [subs] = Matcher(SubscriptionStore(recorded, PREFIX)).match([news])

    assert [sub.terms for sub in subs] == [["Canadian Bankers Association"]]
    subs_read = [key for command in RecordingConnection.sent if str(command[0]).upper() == "MGET"
                 for key in command[1:]]
    assert len(subs_read) <= 12, f"read {len(subs_read)} of {len(names)} subscriptions to match one event"


def test_resume_lifts_a_pause_and_is_audited(redis: Redis, make_settings, capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot resume CHANNEL` un-pauses a channel paused by a permanent error, and the audit log says who."""
    settings = make_settings(alert_channel=None)
    store = SubscriptionStore(redis, settings.redis_prefix)
    store.add(Subscription(channel="console:gr", terms=["amazon"]), actor="test")
    store.set_paused("console:gr", "channel_not_found")
    assert main(["resume", "console:gr"]) == 0
    assert "resumed 1 subscription(s) of console:gr" in capsys.readouterr().out
    assert [sub.paused for sub in store.for_channel("console:gr")] == [""]
    assert store.audit(1)[0]["action"] == "resume"
    assert main(["resume", "console:gr"]) == 0
    assert "nothing to resume" in capsys.readouterr().out

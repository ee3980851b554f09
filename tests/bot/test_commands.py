"""The neutral `/lobby` layer (`bot.commands`): how text is read, what each subcommand answers, who may change
what, and how a repeated request is answered without acting twice."""

from __future__ import annotations

import pytest
from redis import Redis

from bot.commands import HELP, Answer, Caller, Command, answer, parse, parse_terms
from tests.records import sample_records
from workers.ingest import ingest
from workers.settings import Settings
from workers.subscriptions import SubscriptionStore

ADMIN = Caller(channel="slack:T1/C1", user="slack:UADMIN")
GUEST = Caller(channel="slack:T1/C1", user="slack:UGUEST", can_manage=False)


@pytest.fixture
def settings(redis: Redis, make_settings) -> Settings:
    built: Settings = make_settings()
    ingest(redis, built, sample_records(), alert=False)
    return built


@pytest.mark.parametrize(("text", "expected"), [
    ("", Command("help")),
    ("   ", Command("help")),
    ("help", Command("help")),
    ("HELP", Command("help")),
    ("list", Command("list")),
    ("sources", Command("sources")),
    ("amazon", Command("search", ["amazon"])),
    ("amazon hydro-quebec", Command("search", ["amazon", "hydro-quebec"])),
    ('amazon "hydro quebec"', Command("search", ["amazon", "hydro quebec"])),
    ("amazon “hydro quebec”", Command("search", ["amazon", "hydro quebec"])),
    ("« Hydro Québec » bell", Command("search", ["Hydro Québec", "bell"])),
    ('"unbalanced quote', Command("search", ["unbalanced quote"])),
    ("l'Agence", Command("search", ["l'Agence"])),
    ("search list", Command("search", ["list"])),
    ("frobnicate widgets", Command("search", ["frobnicate", "widgets"])),
    ("subscribe amazon", Command("subscribe", ["amazon"])),
    ("subscribe amazon daily fr", Command("subscribe", ["amazon"], digest="daily", language="fr")),
    ("subscribe amazon FR weekly", Command("subscribe", ["amazon"], digest="weekly", language="fr")),
    ("unsubscribe 3", Command("unsubscribe", number=3)),
    ("unsubscribe #3", Command("unsubscribe", number=3)),
    ("why ocl:comm:712345", Command("why", event_id="ocl:comm:712345")),
    ("alias", Command("alias")),
    ("alias list", Command("alias")),
    ("alias add Amazon Web Services = AWS", Command("alias", ["Amazon Web Services"], aliases=["AWS"])),
    ("alias add Hydro-Québec = HQ = Hydro Quebec", Command("alias", ["Hydro-Québec"], aliases=["HQ", "Hydro Quebec"])),
])
def test_parse_reads_each_form(text: str, expected: Command) -> None:
    """Command text becomes the subcommand, its terms and options; a first word that is no subcommand searches."""
    assert parse(text) == expected


@pytest.mark.parametrize(("text", "usage"), [
    ("search", "usage: /lobby TERM…"),
    ("subscribe", "usage: /lobby subscribe"),
    ("subscribe daily", "usage: /lobby subscribe"),
    ("unsubscribe", "usage: /lobby unsubscribe N"),
    ("unsubscribe two", "usage: /lobby unsubscribe N"),
    ("why", "usage: /lobby why EVENT_ID"),
    ("why a b", "usage: /lobby why EVENT_ID"),
    ("alias add AWS", "usage: /lobby alias add"),
    ("alias remove AWS = X", "usage: /lobby alias add"),
])
def test_a_misused_subcommand_answers_its_usage(text: str, usage: str) -> None:
    """A subcommand used wrongly answers its usage (to the asker only), never raises."""
    parsed = parse(text)
    assert isinstance(parsed, Answer) and parsed.error
    assert parsed.lines[0].startswith(usage) and "/lobby help" in parsed.lines[-1]


def test_parse_terms_keeps_hash_and_backslash_as_text() -> None:
    """`#3` is not a comment and a backslash is not an escape."""
    assert parse_terms(r"#3 a\b") == ["#3", r"a\b"]


def test_help_lists_every_subcommand(redis: Redis, settings: Settings) -> None:
    """/lobby help answers the help lines, not an error."""
    reply = answer(redis, settings, GUEST, parse(""))
    assert reply.lines == HELP and not reply.error
    for name in ("subscribe", "unsubscribe", "list", "sources", "alias add", "why"):
        assert any(f"/lobby {name}" in line for line in HELP), name


def test_search_answers_a_summary(redis: Redis, settings: Settings) -> None:
    """/lobby TERM… answers the summary of the matching records; anyone may search."""
    reply = answer(redis, settings, GUEST, parse("amazon hydro-quebec"))
    assert reply.summary is not None and not reply.error
    assert reply.summary.total == 4 and reply.summary.communications_last_12_months == 3
    assert reply.summary.by_source == {"ocl": 3, "clq": 1}


def test_a_search_without_words_is_a_usage_error(redis: Redis, settings: Settings) -> None:
    """Terms holding no word (punctuation only) answer why and how to search, as an error."""
    reply = answer(redis, settings, GUEST, parse("search ---"))
    assert reply.error and reply.summary is None and reply.lines[-1].startswith("usage: /lobby TERM…")


def test_subscribe_list_unsubscribe(redis: Redis, settings: Settings) -> None:
    """subscribe adds a subscription to the caller's channel, list shows it, unsubscribe N removes it."""
    added = answer(redis, settings, ADMIN, parse("subscribe amazon daily fr"))
    assert added.lines == ["Subscribed: #1 slack:T1/C1 amazon (daily at 08:00, fr)", "/lobby unsubscribe 1 stops it."]
    listed = answer(redis, settings, GUEST, parse("list"))
    assert listed.lines == ["#1 slack:T1/C1 amazon (daily at 08:00, fr)"]
    assert answer(redis, settings, ADMIN, parse("unsubscribe 1")).lines[0].startswith("Unsubscribed: #1")
    assert "no subscription yet" in answer(redis, settings, GUEST, parse("list")).text


def test_unsubscribe_of_another_channels_subscription_is_refused(redis: Redis, settings: Settings) -> None:
    """unsubscribe N only removes a subscription of the caller's own channel."""
    answer(redis, settings, Caller(channel="slack:T1/C2", user="slack:UADMIN"), parse("subscribe amazon"))
    reply = answer(redis, settings, ADMIN, parse("unsubscribe 1"))
    assert reply.error and "no subscription #1" in reply.text
    assert len(SubscriptionStore(redis, settings.redis_prefix).all()) == 1


def test_sources_answers_one_line_per_source(redis: Redis, settings: Settings) -> None:
    """/lobby sources shows each source's status and last success; sources that are off say so."""
    reply = answer(redis, settings, GUEST, parse("sources"))
    assert reply.lines[0].startswith("feeds: ") and "last success never" in reply.lines[0]
    assert "ocl: off (not in LOBBYBOT_SOURCES)" in reply.lines


def test_why_explains_a_baseline_record(redis: Redis, settings: Settings) -> None:
    """/lobby why EVENT_ID answers from what ingest recorded about the record for the caller's channel."""
    assert "slack:T1/C1 has no subscription" in answer(redis, settings, GUEST, parse("why ocl:comm:712345")).text
    answer(redis, settings, ADMIN, parse("subscribe amazon"))
    reply = answer(redis, settings, GUEST, parse("why ocl:comm:712345"))
    assert not reply.error and "baseline" in reply.text


def test_alias_add_widens_search_and_is_audited(redis: Redis, settings: Settings) -> None:
    """alias add makes a name match another's records, and the audit log says who added it."""
    assert answer(redis, settings, GUEST, parse("nimbus hydro-quebec")).summary.total == 0  # type: ignore[union-attr]
    reply = answer(redis, settings, ADMIN, parse("alias add Amazon Web Services Canada = Nimbus"))
    assert reply.lines[0].startswith("Alias: ") and "Nimbus" in reply.lines[0]
    assert answer(redis, settings, GUEST, parse("nimbus hydro-quebec")).summary.total == 4  # type: ignore[union-attr]
    assert "Nimbus" in answer(redis, settings, GUEST, parse("alias")).text
    audit = SubscriptionStore(redis, settings.redis_prefix).audit()
    assert [(entry["who"], entry["action"]) for entry in audit] == [("slack:UADMIN", "alias")]
    assert "Amazon Web Services Canada = Nimbus" in audit[0]["what"]


@pytest.mark.parametrize("text", ["subscribe amazon", "unsubscribe 1", "alias add AWS = Amazon"])
def test_a_caller_who_cannot_manage_is_refused_politely(redis: Redis, settings: Settings, text: str) -> None:
    """Changes by a caller without the right are refused with a polite note, and nothing changes."""
    reply = answer(redis, settings, GUEST, parse(text), request_id="guest-1")
    assert reply.error and reply.text.startswith("Sorry, only the people allowed")
    store = SubscriptionStore(redis, settings.redis_prefix)
    assert store.all() == [] and store.audit() == []


def test_a_repeated_request_is_answered_without_acting_twice(redis: Redis, settings: Settings) -> None:
    """The same request id twice (a platform's retry) subscribes once and answers the first answer again."""
    first = answer(redis, settings, ADMIN, parse("subscribe amazon"), request_id="trigger-1")
    again = answer(redis, settings, ADMIN, parse("subscribe amazon"), request_id="trigger-1")
    other = answer(redis, settings, ADMIN, parse("subscribe amazon"), request_id="trigger-2")

    assert again == first and other.lines[0].startswith("Subscribed: #2")
    assert [sub.id for sub in SubscriptionStore(redis, settings.redis_prefix).all()] == [1, 2]


def test_searches_are_not_replayed(redis: Redis, settings: Settings) -> None:
    """A search with a request id is answered fresh each time (it changes nothing, and the index may grow)."""
    first = answer(redis, settings, GUEST, parse("amazon"), request_id="trigger-3")
    newer = sample_records()[-1].model_copy(update={"id": "ocl:comm:900000", "organization": "Amazon"})
    ingest(redis, settings, [newer], alert=False)
    again = answer(redis, settings, GUEST, parse("amazon"), request_id="trigger-3")
    assert first.summary is not None and again.summary is not None
    assert again.summary.total == first.summary.total + 1


def test_a_request_that_failed_is_carried_out_when_retried(redis: Redis, settings: Settings,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A change cut short by an error (Redis gone mid-way) is not remembered as done: the retry subscribes."""
    real_add = SubscriptionStore.add

    def failing_once(self: SubscriptionStore, sub: object, *, actor: str) -> object:
        monkeypatch.setattr(SubscriptionStore, "add", real_add)
        raise ConnectionError("redis went away")

    monkeypatch.setattr(SubscriptionStore, "add", failing_once)
    with pytest.raises(ConnectionError):
        answer(redis, settings, ADMIN, parse("subscribe amazon"), request_id="trigger-9")
    retried = answer(redis, settings, ADMIN, parse("subscribe amazon"), request_id="trigger-9")
    assert retried.lines[0].startswith("Subscribed: #")
    assert len(SubscriptionStore(redis, settings.redis_prefix).all()) == 1

"""The search index and query engine on a real Redis: matching, aliases, versions, retention, every summary
field, bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from redis import Redis

from workers.aliases import AliasStore
from workers.events import Event, Official
from workers.index import SearchIndex
from workers.ingest import ingest
from workers.query import MAX_CHARS, MAX_TERMS, QueryError, search
from workers.settings import Settings

NOW = datetime.now(UTC)


def comm(native: str, version: str = "1", days_ago: int = 10, **fields: Any) -> Event:
    base: dict[str, Any] = dict(
        id=f"ocl:comm:{native}", version=version, source="ocl", kind="communication",
        title=f"Communication report {native}", organization="Hydro-Québec Inc.", organization_fr="Hydro-Québec",
        registrant="Jean Tremblay", lobbyists=("Jean Tremblay",), institutions=("Finance Canada",),
        officials=(Official(name="Chrystia Freeland", title="Minister"),), subjects=("Energy",),
        occurred_at=NOW - timedelta(days=days_ago), url=f"https://lobbycanada.gc.ca/{native}",
    )
    base.update(fields)
    return Event(**base)


def registration(native: str, **fields: Any) -> Event:
    base: dict[str, Any] = dict(
        id=f"ocl:reg:{native}", version="1", source="ocl", kind="registration", title=f"Registration {native}",
        organization="Amazon Web Services Canada, Inc.", lobbyists=("Alice Martin",),
        occurred_at=NOW - timedelta(days=900), published_at=NOW - timedelta(days=900),
    )
    base.update(fields)
    return Event(**base)


def article(native: str, title: str, days_ago: int = 1) -> Event:
    return Event(id=f"news:{native}", version="1", source="news", kind="article", title=title,
                 url=f"https://news.example/{native}", published_at=NOW - timedelta(days=days_ago))


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings()


def load(redis: Redis, settings: Settings, *events: Event) -> None:
    ingest(redis, settings, list(events), alert=False)


@pytest.mark.parametrize("spelling", ["hydro-quebec", "Hydro Québec", "HYDRO-QUÉBEC", "HydroQuébec",
                                      "hydro quebec inc"])
def test_every_spelling_of_a_name_finds_its_records(redis: Redis, settings: Settings, spelling: str) -> None:
    """Hyphens, spaces, case, accents and suffixes do not change what a name finds."""
    load(redis, settings, comm("1"), article("a", "HydroQuébec signs a contract"))
    assert search(redis, settings, [spelling]).total == 2


def test_french_name_is_indexed(redis: Redis, settings: Settings) -> None:
    """A record is found by its organisation's French name as well as its English one."""
    load(redis, settings, comm("1", organization="Canadian Bankers Association",
                               organization_fr="Association des banquiers canadiens"))
    assert search(redis, settings, ["association des banquiers canadiens"]).total == 1
    assert search(redis, settings, ["Canadian Bankers"]).total == 1


def test_every_term_must_match(redis: Redis, settings: Settings) -> None:
    """Two terms keep only records that match both."""
    load(redis, settings, comm("1"), comm("2", institutions=("Transport Canada",)))
    assert search(redis, settings, ["hydro-quebec"]).total == 2
    assert search(redis, settings, ["hydro-quebec", "transport"]).total == 1
    assert search(redis, settings, ["hydro-quebec", "nowhere"]).total == 0


def test_builtin_alias_matches_both_ways(redis: Redis, settings: Settings) -> None:
    """AWS finds Amazon Web Services records and Amazon Web Services finds AWS headlines."""
    load(redis, settings, registration("1"), article("a", "AWS opens a Montréal region"))
    assert search(redis, settings, ["aws"]).total == 2
    assert search(redis, settings, ["Amazon Web Services"]).total == 2


def test_added_alias_is_used_by_queries(redis: Redis, settings: Settings) -> None:
    """An alias added with `alias add` makes its names interchangeable, and merges with an existing group."""
    load(redis, settings, comm("1", organization="Canadian National Railway", organization_fr=""),
         article("a", "CN rail strike"))
    assert search(redis, settings, ["CN"]).total == 1
    AliasStore(redis, settings.redis_prefix).add("Canadian National Railway", ["CN", "CN Rail"])
    assert search(redis, settings, ["CN"]).total == 2
    group = AliasStore(redis, settings.redis_prefix).add("CN", ["Canadien National"])
    assert group == ["Canadian National Railway", "CN", "CN Rail", "Canadien National"]


def test_update_replaces_the_old_version(redis: Redis, settings: Settings) -> None:
    """A new version of a record counts once, under its new content only."""
    load(redis, settings, comm("1", institutions=("Finance Canada",)))
    load(redis, settings, comm("1", version="2", institutions=("Transport Canada",)))
    assert search(redis, settings, ["hydro-quebec"]).total == 1
    assert search(redis, settings, ["finance"]).total == 0
    assert search(redis, settings, ["transport"]).institutions[0].name == "Transport Canada"


@pytest.mark.parametrize("order", ["original first", "amendment first"])
def test_amendment_replaces_what_it_amends(redis: Redis, settings: Settings, order: str) -> None:
    """An amendment (supersedes) replaces the record it amends in every count, whatever the arrival order."""
    original, amendment = comm("1"), comm("1-a", supersedes="ocl:comm:1")
    first, second = (original, amendment) if order == "original first" else (amendment, original)
    load(redis, settings, first)
    load(redis, settings, second)
    summary = search(redis, settings, ["hydro-quebec"])
    assert summary.total == 1
    assert summary.communications_last_12_months == 1
    assert [item.id for item in summary.latest] == ["ocl:comm:1-a"]


def test_amendment_in_the_same_batch(redis: Redis, settings: Settings) -> None:
    """An amendment ingested together with what it amends still counts once."""
    load(redis, settings, comm("1"), comm("1-a", supersedes="ocl:comm:1"))
    assert search(redis, settings, ["hydro-quebec"]).total == 1


def test_records_outside_retention_are_not_indexed(redis: Redis, settings: Settings) -> None:
    """A communication older than the retention window is neither stored nor found."""
    load(redis, settings, comm("old", days_ago=800), comm("new"))
    summary = search(redis, settings, ["hydro-quebec"])
    assert summary.total == 1 and summary.latest[0].id == "ocl:comm:new"


def test_records_leave_the_index_when_their_retention_ends(redis: Redis, settings: Settings) -> None:
    """A record indexed with a short time to live is no longer found once that day has passed."""
    SearchIndex(redis, settings.redis_prefix).add([(comm("1"), 86400), (registration("r"), 0)])
    assert search(redis, settings, ["hydro-quebec"]).total == 1
    later = NOW + timedelta(days=3)
    assert search(redis, settings, ["hydro-quebec"], now=later).total == 0
    assert search(redis, settings, ["aws"], now=later).total == 1  # a registration in force is kept


def test_registration_in_force_is_kept_however_old(redis: Redis, settings: Settings) -> None:
    """An active registration first posted years ago is indexed; a terminated one that old is not."""
    load(redis, settings, registration("1"),
         registration("2", status="terminated", end_date=NOW - timedelta(days=800)))
    summary = search(redis, settings, ["aws"])
    assert summary.total == 1 and summary.active_registrations == 1


def test_summary_fields(redis: Redis, settings: Settings) -> None:
    """Totals per source and kind, lobbyists, communications, registrations, top names, months, latest, news."""
    load(redis, settings,
         comm("1", days_ago=3, lobbyists=("Jean Tremblay", "Marie Côté")),
         comm("2", days_ago=40, lobbyists=("Marie Cote",), institutions=("Finance Canada", "Transport Canada"),
              officials=(Official(name="Chrystia Freeland"), Official(name="Omar Alghabra")),
              subjects=("Energy", "Transport")),
         comm("3", days_ago=400),
         registration("r1", organization="Hydro-Québec", lobbyists=("Paul Roy",)),
         registration("r2", organization="Hydro-Québec", status="terminated", end_date=NOW - timedelta(days=30)),
         Event(id="clq:mandate:9", version="1", source="clq", kind="mandate", title="Mandat Hydro-Québec",
               organization="Hydro-Québec", lobbyists=("Luc Gagnon",), occurred_at=NOW - timedelta(days=5)),
         article("a", "Hydro-Québec raises rates", days_ago=2))
    s = search(redis, settings, ["hydro-quebec"])
    assert s.query == ["hydro-quebec"]
    assert s.total == 7
    assert s.by_source == {"ocl": 5, "clq": 1, "news": 1}
    assert s.by_kind == {"communication": 3, "registration": 2, "mandate": 1, "article": 1}
    assert s.lobbyists.total == 5  # Jean Tremblay, Marie Côté (= Marie Cote), Paul Roy, Alice Martin, Luc Gagnon
    assert s.lobbyists.by_source == {"clq": 1, "ocl": 4}
    assert s.communications_last_12_months == 2
    assert s.active_registrations == 1
    assert s.institutions[0].name == "Finance Canada" and s.institutions[0].count == 3
    assert {c.name: c.count for c in s.officials} == {"Chrystia Freeland": 3, "Omar Alghabra": 1}
    assert s.subjects[0].name == "Energy" and s.subjects[0].count == 3
    assert len(s.monthly) == 12 and s.monthly[-1].month == NOW.strftime("%Y-%m")
    assert sum(m.count for m in s.monthly) == 4  # 3, 40, 5 and 2 days ago (registrations count by their start)
    assert [item.id for item in s.latest][:3] == ["news:a", "ocl:comm:1", "clq:mandate:9"]
    assert s.latest[0].url == "https://news.example/a" and s.latest[0].title == "Hydro-Québec raises rates"
    assert s.news.total == 1 and s.news.latest[0].id == "news:a"
    assert s.sample == 7


def test_since_and_source_filters(redis: Redis, settings: Settings) -> None:
    """--since keeps records on or after the date; --source keeps one source."""
    load(redis, settings, comm("1", days_ago=3), comm("2", days_ago=100), article("a", "Hydro-Québec news"))
    assert search(redis, settings, ["hydro-quebec"], since=(NOW - timedelta(days=50)).date()).total == 2
    assert search(redis, settings, ["hydro-quebec"], source="news").total == 1
    with pytest.raises(QueryError, match="unknown source"):
        search(redis, settings, ["hydro-quebec"], source="twitter")


def test_no_match_is_an_empty_summary(redis: Redis, settings: Settings) -> None:
    """A query nothing matches answers zero everywhere, with twelve empty months."""
    s = search(redis, settings, ["nothing"])
    assert s.total == 0 and s.latest == [] and len(s.monthly) == 12 and s.lobbyists.total == 0


@pytest.mark.parametrize(("terms", "message"), [
    ([], "at least one term"),
    (["inc.", "!!"], "nothing to search for"),
    (["x"] * (MAX_TERMS + 1), "too many terms"),
    (["a" * (MAX_CHARS + 1)], "too long"),
])
def test_bad_queries_are_refused_clearly(redis: Redis, settings: Settings, terms: list[str], message: str) -> None:
    """No terms, terms without a word, too many terms or too long a query raise a one-line QueryError."""
    with pytest.raises(QueryError, match=message):
        search(redis, settings, terms)


@pytest.mark.parametrize("text", ["🦄 énergie", "\udcff hydro", "Газпром", "中国银行", "\u202eevil", "a\x00b", "𝕳𝖞𝖉𝖗𝖔"])
def test_any_unicode_is_answered(redis: Redis, settings: Settings, text: str) -> None:
    """Emoji, surrogates, other scripts, control and bidi characters never crash a query: they are searched,
    or refused with a clear message when a term holds no word."""
    load(redis, settings, article("u", "Газпром и 中国银行 🦄 énergie hydro"))
    try:
        search(redis, settings, text.split())
    except QueryError as exc:
        assert "nothing to search for" in str(exc)


def test_garbage_postings_are_compacted(redis: Redis, settings: Settings) -> None:
    """A postings list that is mostly replaced versions is rewritten smaller when read."""
    index = SearchIndex(redis, settings.redis_prefix)
    for version in range(80):
        index.add([(comm("1", version=str(version)), 0)])
    before = redis.strlen(index.token_key("hydroquebec"))
    assert search(redis, settings, ["hydro-quebec"]).total == 1
    assert redis.strlen(index.token_key("hydroquebec")) < before / 10


def test_since_accepts_a_date(redis: Redis, settings: Settings) -> None:
    """--since in the future finds nothing."""
    load(redis, settings, comm("1"))
    assert search(redis, settings, ["hydro-quebec"], since=date.today() + timedelta(days=2)).total == 0


def test_dense_tokens_answer_like_sparse_ones(redis: Redis, settings: Settings,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens with a bitmap of their documents (dense ones) give exactly the answers their postings give."""
    events = [comm("1"), comm("2", institutions=("Transport Canada",)),
              comm("3", organization="Bombardier Inc.", organization_fr=""), registration("r"),
              article("a", "Hydro-Québec and Transport Canada")]
    load(redis, settings, *events[:2])
    monkeypatch.setattr("workers.index.DENSE", 2)  # from the next batch on, every list of 2+ postings is dense
    load(redis, settings, *events[2:])
    index = SearchIndex(redis, settings.redis_prefix)
    assert redis.exists(index.bitmap_key("canada")) and redis.exists(index.bitmap_key("hydroquebec"))
    assert search(redis, settings, ["hydro-quebec"]).total == 3
    assert search(redis, settings, ["Transport Canada"]).total == 2
    assert search(redis, settings, ["hydro-quebec", "transport canada"]).total == 2
    assert search(redis, settings, ["bombardier", "finance canada"]).total == 1
    assert search(redis, settings, ["hydro quebec", "chrystia freeland", "energy"]).total == 2


def test_repeated_question_gets_the_same_answer_with_its_own_spelling(redis: Redis, settings: Settings) -> None:
    """A second asker of the same question (another spelling) gets the same counts, under the terms they typed."""
    load(redis, settings, comm("1"), comm("2", days_ago=40), registration("9", organization="Hydro-Québec"),
         comm("3", organization="Bombardier Inc.", organization_fr="", institutions=("Transport Canada",)))
    first = search(redis, settings, ["hydro-quebec", "finance"], now=NOW)
    other = search(redis, settings, ["bombardier"], now=NOW)
    again = search(redis, settings, ["FINANCE", "HYDRO QUÉBEC"], now=NOW)
    assert again.query == ["FINANCE", "HYDRO QUÉBEC"]
    assert {**again.to_dict(), "query": None} == {**first.to_dict(), "query": None}
    assert (again.total, other.total) == (2, 1)
    assert search(redis, settings, ["hydro-quebec"], since=NOW.date() - timedelta(days=20), now=NOW).total == 1


def test_answer_follows_every_ingest_at_once(redis: Redis, settings: Settings) -> None:
    """A question asked again right after an ingest, an update or an amendment sees the new records."""
    load(redis, settings, comm("1"))
    assert search(redis, settings, ["hydro-quebec"], now=NOW).total == 1
    load(redis, settings, comm("2"))
    assert search(redis, settings, ["hydro-quebec"], now=NOW).total == 2
    load(redis, settings, comm("3", supersedes="ocl:comm:2"))
    after = search(redis, settings, ["hydro-quebec"], now=NOW)
    assert after.total == 2
    assert {item.id for item in after.latest} == {"ocl:comm:1", "ocl:comm:3"}
    load(redis, settings, comm("1", version="2", organization="Bombardier Inc.", organization_fr=""))
    assert search(redis, settings, ["hydro-quebec"], now=NOW).total == 1

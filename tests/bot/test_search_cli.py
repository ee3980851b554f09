"""`lobbybot search`, `lobbybot alias` and `/lobby` term parsing, as a user sees them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from bot.cli import main
from bot.commands import lobby, parse_terms
from workers.events import Event, Official
from workers.ingest import ingest
from workers.store import unpack

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads"
NOW = datetime.now(UTC)
KEYS = {"query", "total", "by_source", "lobbyists", "communications_last_12_months", "active_registrations",
        "institutions", "officials", "subjects", "monthly", "latest"}


@pytest.fixture
def loaded(redis: Redis, make_settings: Any) -> Redis:
    settings = make_settings()
    events = [
        Event(id="ocl:comm:1", version="1", source="ocl", kind="communication", title="Communication report",
              organization="Hydro-Québec", lobbyists=("Jean Tremblay",), institutions=("Finance Canada",),
              officials=(Official(name="Chrystia Freeland"),), subjects=("Energy",),
              occurred_at=NOW - timedelta(days=3), url="https://lobbycanada.gc.ca/1"),
        Event(id="news:1", version="1", source="news", kind="article", title="Hydro-Québec raises its rates",
              url="https://news.example/1", published_at=NOW - timedelta(days=1)),
    ]
    ingest(redis, settings, events, alert=False)
    return redis


def test_search_prints_a_text_card(loaded: Redis, capsys: pytest.CaptureFixture[str]) -> None:
    """The default output is a readable card: counts, names met, latest items with links."""
    assert main(["search", "Hydro Québec"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('Lobbying: "Hydro Québec"\n2 records (1 ocl, 1 news)')
    assert "Lobbyists: 1 (1 ocl)" in out
    assert "Federal communication reports, last 12 months: 1" in out
    assert "Institutions: Finance Canada (1)" in out and "Officials met: Chrystia Freeland (1)" in out
    assert "https://news.example/1" in out and "News mentions: 1" in out


def test_search_json_has_the_contract_keys(loaded: Redis, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the summary with every key of the contract, in its documented shapes."""
    assert main(["search", "hydro-quebec", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= KEYS
    assert data["query"] == ["hydro-quebec"] and data["total"] == 2
    assert data["by_source"] == {"ocl": 1, "news": 1}
    assert data["lobbyists"] == {"total": 1, "by_source": {"ocl": 1}}
    assert data["institutions"] == [{"name": "Finance Canada", "count": 1}]
    assert data["officials"] == [{"name": "Chrystia Freeland", "count": 1}]
    assert data["subjects"] == [{"name": "Energy", "count": 1}]
    assert len(data["monthly"]) == 12 and set(data["monthly"][0]) == {"month", "count"}
    assert set(data["latest"][0]) == {"id", "source", "kind", "title", "url", "date"}
    assert data["latest"][0]["id"] == "news:1"


def test_search_filters(loaded: Redis, capsys: pytest.CaptureFixture[str]) -> None:
    """--source and --since narrow the answer."""
    assert main(["search", "hydro-quebec", "--json", "--source", "ocl"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 1
    since = (NOW + timedelta(days=2)).date().isoformat()
    assert main(["search", "hydro-quebec", "--json", "--since", since]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 0


def test_no_match_says_so(loaded: Redis, capsys: pytest.CaptureFixture[str]) -> None:
    """A query that matches nothing prints a card that says so."""
    assert main(["search", "nobody"]) == 0
    assert "No matching records." in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["search"], "give at least one term"),
    (["search", "Inc.", "--"], "nothing to search for"),
    (["search", *["x"] * 21], "too many terms"),
    (["search", "y" * 501], "too long"),
    (["search", "x", "--source", "twitter"], "unknown source"),
    (["search", "🦄"], "nothing to search for"),
])
def test_bad_input_is_refused_in_one_line(loaded: Redis, capsys: pytest.CaptureFixture[str], argv: list[str],
                                          message: str) -> None:
    """Bad queries exit 2 with one clear line on stderr, never a traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bad_since_date_is_a_usage_error(loaded: Redis, capsys: pytest.CaptureFixture[str]) -> None:
    """--since must be a date."""
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "x", "--since", "yesterday"])
    assert exit_info.value.code == 2
    assert "is not a date like" in capsys.readouterr().err


def test_alias_add_and_list(loaded: Redis, capsys: pytest.CaptureFixture[str]) -> None:
    """`alias add` stores a group that search then uses; `alias list` shows built-in and added groups."""
    assert main(["alias", "add", "Hydro-Québec", "Hydro"]) == 0
    assert main(["alias", "add", "Hydro-Québec", "Société d'État"]) == 0
    assert "Hydro-Québec = HQ = Hydro = Société d'État" in capsys.readouterr().out
    assert main(["alias", "list"]) == 0
    out = capsys.readouterr().out
    assert "Amazon Web Services = AWS" in out and "Hydro-Québec = HQ = Hydro = Société d'État" in out
    assert main(["search", "Société d'État", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 2


def test_alias_add_needs_a_name_and_an_alias(loaded: Redis, capsys: pytest.CaptureFixture[str]) -> None:
    """`alias add NAME` alone, or an alias without a word, is refused."""
    assert main(["alias", "add", "AWS"]) == 2
    assert main(["alias", "add", "AWS", "!!!"]) == 2
    assert "could never match" in capsys.readouterr().err


def test_import_feeds_makes_records_searchable(redis: Redis, make_settings: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot import feeds FILE` indexes the articles, so search answers with no network."""
    make_settings()
    assert main(["import", "feeds", str(PAYLOADS / "rss_ledevoir_fr.xml")]) == 0
    capsys.readouterr()
    title = unpack(redis.get(redis.keys("lobbybot:event:*")[0])).title  # type: ignore[arg-type]
    word = max(title.split(), key=len)
    assert main(["search", word, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] >= 1


def test_lobby_command_parses_quotes(loaded: Redis, make_settings: Any) -> None:
    """/lobby text: quotes group words into one term; the answer is the same Summary as the CLI's."""
    assert parse_terms('amazon "hydro quebec"') == ["amazon", "hydro quebec"]
    assert parse_terms("«Hydro Québec» l'Agence") == ["Hydro Québec", "l'Agence"]
    assert parse_terms('"unclosed quote') == ["unclosed quote"]
    assert lobby(loaded, make_settings(), '"hydro québec" finance').total == 1

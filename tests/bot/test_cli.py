"""The `lobbybot` command line: polls, imports, source health, and one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from redis import Redis

from bot.cli import build_parser, main
from tests.wire import FeedServer, payload


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot COMMAND --help` works for every command and exits 0."""
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: lobbybot {name}" in capsys.readouterr().out


def test_poll_inline_reports_counts_and_posts_nothing_on_baseline(
        redis: Redis, make_settings, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot poll --inline` runs the poll here and says what it found; the first poll alerts nothing."""
    make_settings(feeds=[feed_server.serve("/devoir.xml", payload("ledevoir.xml"))])

    assert main(["poll", "feeds", "--inline"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"poll feeds: ok; .*1 fetched.*6 new.*0 alerted.*6 baseline", out), out
    assert "[console:" not in out


def test_poll_without_inline_leaves_the_job_for_a_worker(
        redis: Redis, make_settings, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --inline the poll is queued once, and a second request says it is already queued."""
    make_settings(feeds=[feed_server.serve("/devoir.xml", payload("ledevoir.xml"))])
    assert main(["poll"]) == 0
    assert main(["poll", "feeds"]) == 0
    out = capsys.readouterr().out
    assert "poll feeds: enqueued as job poll-feeds" in out
    assert "poll feeds: already queued or running" in out
    assert feed_server.requests == []


def test_sources_shows_a_broken_feed_with_its_action(
        redis: Redis, make_settings, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]) -> None:
    """A feed that refuses us is shown as blocked with what to do, never as 'no new records'."""
    good = feed_server.serve("/devoir.xml", payload("ledevoir.xml"))
    bad = feed_server.serve("/blocked.xml", "<html>denied</html>", status=403, content_type="text/html")
    make_settings(feeds=[good, bad])
    main(["poll", "--inline"])
    capsys.readouterr()

    assert main(["sources"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^feeds\s+blocked\s+last success \d{4}-\d\d-\d\d", out, re.M), out
    assert "HTTP 403" in out and "action: Open the feed in a browser" in out
    assert f"blocked   {bad}" in out and good not in out


def test_sources_reset_re_enables_a_disabled_source(
        redis: Redis, make_settings, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot sources --reset feeds` forgets failures so the next dispatch polls it again."""
    make_settings(feeds=[feed_server.serve("/x.xml", "", status=500)], max_failures=1)
    main(["poll", "--inline"])
    main(["sources"])
    assert "disabled" in capsys.readouterr().out
    assert main(["sources", "--reset", "feeds"]) == 0
    main(["sources"])
    assert "disabled" not in capsys.readouterr().out


def test_import_alert_inline_prints_each_article_once(
        redis: Redis, make_settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lobbybot import feeds FILE --alert --inline` posts each article to the console, and not again."""
    make_settings(alert_channel="console:watch")
    saved = tmp_path / "cbc.xml"
    saved.write_bytes(payload("cbc-politics.xml"))

    assert main(["import", "feeds", str(saved), "--alert", "--inline"]) == 0
    first = capsys.readouterr().out
    assert main(["import", "feeds", str(saved), "--alert", "--inline"]) == 0
    second = capsys.readouterr().out

    headlines = [line for line in first.splitlines() if line.startswith("[console:watch] News: ")]
    assert len(headlines) == 5 == len(set(headlines))
    assert "5 new" in first and "5 alerted" in first
    assert "[console:" not in second and "5 duplicate" in second


def test_import_without_alert_is_silent(redis: Redis, make_settings, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """An import without --alert records everything and posts nothing."""
    make_settings()
    saved = tmp_path / "atom.xml"
    saved.write_bytes(payload("lobbying-watch.atom"))
    assert main(["import", "feeds", str(saved), "--inline"]) == 0
    out = capsys.readouterr().out
    assert "4 new" in out and "0 alerted" in out and "[console:" not in out


def test_errors_are_one_line_with_a_non_zero_exit(redis: Redis, make_settings, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown sources, missing files and unreadable files each give one clear line on stderr."""
    make_settings()
    html = tmp_path / "page.xml"
    html.write_text("<html><head><title>Just a page</title></head><body>no feed</body></html>")

    assert main(["poll", "nosuch"]) == 2
    assert main(["import", "feeds", str(tmp_path / "missing.xml")]) == 2
    assert main(["import", "feeds", str(html)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert "unknown source 'nosuch'; known sources: " in err[0] and "feeds" in err[0]
    assert "no such file" in err[1]
    assert "not a feed" in err[2]


def test_unreachable_redis_is_named(make_settings, capsys: pytest.CaptureFixture[str]) -> None:
    """When Redis does not answer, the command says so in one line naming REDIS_URL."""
    make_settings(redis_url="redis://127.0.0.1:1/0")
    assert main(["sources"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach Redis" in err and "REDIS_URL" in err

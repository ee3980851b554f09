"""Block Kit rendering: every message kind in French and English, within Slack's limits, with text escaped."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot import render
from bot.commands import HELP, Answer
from bot.slack.render import (
    FIELD_CHARS,
    HEADER_CHARS,
    MAX_BLOCKS,
    MESSAGE_CHARS,
    SECTION_CHARS,
    answer_blocks,
    escape,
    link,
    message_blocks,
)
from workers.events import Event, Official
from workers.summary import Count, Item, Lobbyists, Month, News, Summary

LANGUAGES = ["en", "fr"]


def event(n: int, *, title: str = "", org: str = "Amazon Web Services Canada", kind: str = "communication",
          url: str = "") -> Event:
    return Event(id=f"ocl:comm:{700000 + n}", version="v1", source="ocl", kind=kind,
                 title=title or f"Communication with Treasury Board #{n}", summary="About cloud procurement.",
                 url=url or f"https://lobbycanada.gc.ca/app/secure/ocl/lrs/do/clntSmmry?comm={n}&lang=en",
                 occurred_at=datetime(2026, 11, 3, tzinfo=UTC), organization=org,
                 lobbyists=("Jane Doe", "John Roe"), institutions=("Treasury Board Secretariat", "Shared Services"),
                 officials=(Official(name="Chrystia Freeland", title="Minister"),), subjects=("Cloud", "Procurement"))


def summary(*, items: int = 10, name_length: int = 20, total: int = 1234) -> Summary:
    names = [Count(f"{'Institution ' * (name_length // 12)}{i}", 50 - i) for i in range(10)]
    latest = [Item(f"ocl:comm:{i}", "ocl", "communication", f"Meeting {i} " + "x" * name_length,
                   f"https://lobbycanada.gc.ca/comm/{i}?a=1&b=2", "2026-11-20") for i in range(items)]
    return Summary(query=["amazon", "hydro quebec"], total=total, by_source={"ocl": 1000, "clq": 200, "news": 34},
                   by_kind={"communication": 900}, lobbyists=Lobbyists(42, {"ocl": 30, "clq": 12}),
                   communications_last_12_months=321, active_registrations=7, institutions=names,
                   officials=names, subjects=names, latest=latest,
                   monthly=[Month(f"2026-{m:02d}", c) for m, c in zip(range(1, 13), [0, 1, 2, 4, 8, 16, 32, 0, 3,
                                                                                     5, 7, 9], strict=True)],
                   news=News(34, latest[:3]), sample=200)


def within_limits(payloads: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """Each payload is a message Slack accepts: fallback text, ≤50 blocks, sizes within every limit."""
    assert payloads
    for text, blocks in payloads:
        assert text.strip()
        assert 0 < len(blocks) <= MAX_BLOCKS
        assert len(json.dumps(blocks, ensure_ascii=False)) <= MESSAGE_CHARS + 100
        for block in blocks:
            parsed = Block.parse(block)
            assert parsed is not None
            parsed.validate_json()  # slack_sdk's own model checks (section 3,000, header 150, …)
            if block["type"] == "section":
                assert len(block.get("text", {}).get("text", "")) <= SECTION_CHARS
                assert len(block.get("fields", [])) <= 10
                assert all(len(f["text"]) <= FIELD_CHARS for f in block.get("fields", []))
            if block["type"] == "header":
                assert len(block["text"]["text"]) <= HEADER_CHARS


def everything(payloads: list[tuple[str, list[dict[str, Any]]]]) -> str:
    return json.dumps([blocks for _, blocks in payloads], ensure_ascii=False)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_summary_card_shows_counts_names_sparkline_and_links(language: str) -> None:
    """The /lobby card has the query, counts as fields, top names, a 12-month sparkline and linked items."""
    payloads = answer_blocks(Answer(summary=summary()), language)
    within_limits(payloads)
    assert len(payloads) == 1
    text, blocks = payloads[0]
    assert blocks[0]["type"] == "header" and 'amazon "hydro quebec"' in blocks[0]["text"]["text"]
    shown = everything(payloads)
    assert "321" in shown and "42 (30 OCL, 12 CLQ)" in shown and "1 234" in shown
    assert "▁▂▂▂▃▅█▁▂▂▃▃" in shown
    assert "<https://lobbycanada.gc.ca/comm/0?a=1&amp;b=2|Meeting 0 " in shown
    label = "Rapports de communication fédéraux" if language == "fr" else "Federal communication reports"
    assert label in shown and "1234" in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_empty_card_says_nothing_matched(language: str) -> None:
    """A search with no match says so instead of showing zeros."""
    payloads = answer_blocks(Answer(summary=Summary(query=["nothing"], since="2026-01-01")), language)
    within_limits(payloads)
    assert ("Aucun dossier" if language == "fr" else "No matching records") in everything(payloads)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_huge_card_stays_within_slacks_limits(language: str) -> None:
    """Very long names and titles are shortened visibly; the card still fits one message Slack accepts."""
    payloads = answer_blocks(Answer(summary=summary(items=10, name_length=3000)), language)
    within_limits(payloads)
    assert "…" in everything(payloads)


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_alert_has_a_linked_title_facts_and_the_why_command(language: str) -> None:
    """An alert links its record, lays its facts out as fields and tells how to ask why it was posted."""
    payloads = message_blocks(render.alert(event(1), language=language))
    within_limits(payloads)
    shown = everything(payloads)
    assert "clntSmmry?comm=1&amp;lang=en|Communication with Treasury Board #1>" in shown
    assert "Chrystia Freeland (Minister)" in shown and "/lobby why ocl:comm:700001" in shown
    assert ("Rapport de communication" if language == "fr" else "Communication report") in shown
    assert payloads[0][0].startswith("Rapport de communication" if language == "fr" else "Communication report")


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_amendment_reply_says_what_changed(language: str) -> None:
    """The thread reply under an alert lists each changed field; with none, it says so."""
    changes = ["institutions: Treasury Board → Finance Canada", "officials: + Chrystia Freeland"]
    payloads = message_blocks(render.amendment(event(1), changes, language=language))
    within_limits(payloads)
    shown = everything(payloads)
    assert "• institutions: Treasury Board → Finance Canada" in shown
    assert ("Modification" if language == "fr" else "Amended") in shown
    unchanged = everything(message_blocks(render.amendment(event(1), [], language=language)))
    assert ("aucun champ" if language == "fr" else "no field we show changed") in unchanged


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_batch_shows_ten_items_and_how_many_more(language: str) -> None:
    """A burst becomes one message: the head line, ten linked items and '… and N more'."""
    payloads = message_blocks(render.batch([event(n) for n in range(25)], language=language))
    within_limits(payloads)
    shown = everything(payloads)
    assert shown.count("• <https://") == 10
    assert ("… et 15 autres" if language == "fr" else "… and 15 more") in shown


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_huge_digest_is_split_into_messages_slack_accepts(language: str) -> None:
    """A digest of 600 long-titled records from 150 organisations keeps every record, in several messages."""
    events = [event(n, title=f"Very long meeting title {n} " + "é" * 110, org=f"Organisation {n % 150}",
                     url=f"https://lobbycanada.gc.ca/app/secure/ocl/lrs/do/{'a' * 150}?comm={n}")
              for n in range(600)]
    parts = render.digest_parts("Daily digest", events, language=language)
    payloads = [payload for message, _ in parts for payload in message_blocks(message)]
    within_limits(payloads)
    assert len(payloads) >= len(parts) > 1
    shown = everything(payloads)
    assert all(f"comm={n}|" in shown for n in range(600))
    first = message_blocks(parts[0][0])[0][1][0]
    assert first["type"] == "header" and f"(1/{len(parts)})" in first["text"]["text"]


def test_a_digest_part_too_big_for_one_message_continues_in_the_next() -> None:
    """One digest part whose blocks exceed ~12k characters is posted as several messages, labelled n/total."""
    events = [event(n, title="t" * 150, url="https://example.org/" + "p" * 900 + str(n)) for n in range(39)]
    message = render.digest_parts("Weekly digest", events, max_lines=100)[0][0]
    payloads = message_blocks(message)
    within_limits(payloads)
    assert len(payloads) > 1
    assert payloads[1][0].endswith(f"(2/{len(payloads)})")
    assert payloads[1][1][0]["type"] == "context"  # "(continued)"


@pytest.mark.parametrize("language", LANGUAGES)
def test_notices_say_what_broke_what_to_do_and_when_it_recovers(language: str) -> None:
    """A health notice carries the reason and the action; the recovery notice says alerts flow again."""
    broken = everything(message_blocks(render.notice("ocl", "blocked", "403 from lobbycanada.gc.ca",
                                                     "set LOBBYBOT_OCL_IMPERSONATE=1", language=language)))
    assert ":warning:" in broken and "403 from lobbycanada.gc.ca" in broken and "LOBBYBOT_OCL_IMPERSONATE" in broken
    recovered = message_blocks(render.notice("ocl", "ok", "", "", language=language))
    within_limits(recovered)
    assert ("rétablie" if language == "fr" else "recovered") in everything(recovered)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_text_card_message_is_rendered_from_its_lines(language: str) -> None:
    """A `card` message (the plain summary card) shows its lines."""
    payloads = message_blocks(render.summary_card(summary()))
    within_limits(payloads)
    assert "Lobbying: amazon" in everything(payloads)


def test_answers_show_lines_and_mark_errors() -> None:
    """Text answers keep their lines; an error starts with a warning sign, in the blocks and the fallback."""
    help_payloads = answer_blocks(Answer(HELP, title="lobbybot"))
    within_limits(help_payloads)
    assert help_payloads[0][1][0]["type"] == "header"
    error = answer_blocks(Answer(["usage: /lobby unsubscribe N"], error=True), "fr")
    assert error[0][0].startswith("⚠️") and ":warning: *Désolé :*" in everything(error)


def test_a_very_long_answer_is_cut_with_a_count() -> None:
    """A list of 400 subscriptions is cut visibly, never silently, into at most five messages Slack accepts."""
    payloads = answer_blocks(Answer([f"#{n} amazon {'x' * 100} (realtime, en)" for n in range(400)]))
    within_limits(payloads)
    assert "… and 250 more" in everything(payloads)
    long_lines = answer_blocks(Answer([f"#{n} " + "y" * 990 for n in range(400)]))
    within_limits(long_lines)
    assert len(long_lines) <= 5 and "more_" in everything(long_lines)  # a response_url takes five messages


def test_record_text_is_escaped_so_it_cannot_ping_or_break_links() -> None:
    """`<!channel>`, `&` and `>` in a record become entities; a URL's `|` cannot end the link early."""
    assert escape("<!channel> R&D > 5") == "&lt;!channel&gt; R&amp;D &gt; 5"
    assert (link("https://x.org/a|b>c?d=1&e=2", "A <b> & c")
            == "<https://x.org/a%7Cb%3Ec?d=1&amp;e=2|A &lt;b&gt; &amp; c>")
    shown = everything(message_blocks(render.alert(event(1, title="<!channel> R&D", org="A > B"))))
    assert "<!channel>" not in shown and "&lt;!channel&gt; R&amp;D" in shown and "A &gt; B" in shown

"""Discord embeds: every kind of message in French and English, the summary card, answers, and Discord's limits."""

from __future__ import annotations

import json

import discord
import pytest

from bot import render
from bot.commands import Answer
from bot.discord.embeds import RED, Embed, length, within_limits
from bot.discord.render import answer_embeds, message_embeds, summary_embeds
from tests.bot.discord.conftest import article, communication
from workers.summary import Count, Item, Lobbyists, Month, News, Summary


def text_of(messages: list[list[Embed]]) -> str:
    return json.dumps(messages, ensure_ascii=False)


def assert_valid(messages: list[list[Embed]]) -> None:
    assert messages, "nothing rendered"
    for message in messages:
        assert within_limits(message), [length(e) for e in message]
        for embed in message:  # discord.py accepts the dict and counts it as we do
            assert len(discord.Embed.from_dict(embed)) == length(embed)


def summary(**overrides: object) -> Summary:
    values: dict[str, object] = dict(
        query=["amazon", "hydro quebec"], total=57, by_source={"ocl": 40, "news": 17}, by_kind={},
        lobbyists=Lobbyists(9, {"ocl": 9}), communications_last_12_months=23, active_registrations=2,
        institutions=[Count("Treasury Board Secretariat", 12), Count("Hydro-Québec", 5)],
        officials=[Count("Catherine Luelo", 4)], subjects=[Count("Government Procurement", 20)],
        monthly=[Month(f"2026-{m:02d}", c) for m, c in zip(range(1, 13), [0, 1, 2, 0, 3, 8, 1, 0, 0, 4, 6, 2],
                                                            strict=True)],
        latest=[Item("ocl:comm:1", "ocl", "communication", "AWS met TBS", "https://lobbycanada.gc.ca/1",
                     "2026-11-20")],
        news=News(17, [Item("news:1", "news", "article", "Le nuage d'Amazon", "https://ledevoir.com/1", "2026-11-21")]),
        sample=57)
    values.update(overrides)
    return Summary(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("language", ["en", "fr"])
def test_an_alert_is_one_embed_with_its_facts(language: str) -> None:
    """An alert links the record and shows organisation, date, institutions, officials and subjects, with the
    event id in the footer for /lobby why."""
    messages = message_embeds(render.alert(communication(), language=language))
    assert_valid(messages)
    [[embed]] = messages
    assert embed["url"].startswith("https://lobbycanada.gc.ca/")
    assert embed["footer"]["text"] == "ocl · ocl:comm:712346"
    names = [field["name"] for field in embed["fields"]]
    if language == "fr":
        assert embed["title"].startswith("Rapport de communication: ")
        assert {"Organisation", "Date", "Institutions", "Titulaires rencontrés", "Sujets"} <= set(names)
    else:
        assert embed["title"].startswith("Communication report: ")
        assert {"Organisation", "Date", "Institutions", "Officials met", "Subjects"} <= set(names)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_an_amendment_lists_every_change(language: str) -> None:
    """An amendment reply says what changed, field by field, all of them (the plain text keeps 12)."""
    changes = [f"subject {n}: added Energy" for n in range(30)]
    messages = message_embeds(render.amendment(communication(version="v2"), changes, language=language))
    assert_valid(messages)
    text = text_of(messages)
    assert all(change in text for change in changes)
    assert ("Ce qui a changé" if language == "fr" else "What changed") in text
    assert messages[0][0]["title"].startswith("Modification" if language == "fr" else "Amended")


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_batch_lists_its_records_as_links_and_says_how_many_more(language: str) -> None:
    """A burst becomes one summary: counts in the title, records as links, '… and N more' beyond 25."""
    events = [communication(n) for n in range(60)]
    messages = message_embeds(render.batch(events, language=language))
    assert_valid(messages)
    assert len(messages) == 1
    text = text_of(messages)
    assert "(https://lobbycanada.gc.ca/app/secure/ocl/lrs/do/clntSmmry?comlogId=712345)" in text
    assert ("… et 35 autres" if language == "fr" else "… and 35 more") in text
    assert messages[0][0]["title"].startswith("60 ")


@pytest.mark.parametrize("language", ["en", "fr"])
def test_digest_parts_keep_their_number_and_every_record(language: str) -> None:
    """Each digest part says n/total and shows every one of its records, grouped by organisation."""
    events = [communication(n) for n in range(30)] + [article(n) for n in range(10)]
    parts = render.digest("Daily digest" if language == "en" else "Résumé quotidien", events, max_lines=20,
                          language=language)
    assert len(parts) > 1
    for n, part in enumerate(parts, 1):
        messages = message_embeds(part)
        assert_valid(messages)
        assert messages[0][0]["title"].endswith(f"({n}/{len(parts)})")
        text = text_of(messages)
        assert all(event.url in text for event in part.events)
    assert "dossiers" in parts[0].lines[0] if language == "fr" else "records" in parts[0].lines[0]


@pytest.mark.parametrize("language", ["en", "fr"])
def test_health_notices_say_what_broke_and_what_to_do(language: str) -> None:
    """A broken source is a red notice with the reason and what to do; recovery is a green one."""
    broken = message_embeds(render.notice("ocl", "blocked", "403 from Cloudflare", "download the ZIP by hand",
                                          language=language))
    recovered = message_embeds(render.notice("ocl", "ok", "", "", language=language))
    assert_valid(broken)
    assert_valid(recovered)
    [[red]], [[green]] = broken, recovered
    assert red["color"] == RED and "403 from Cloudflare" in red["title"]
    assert red["fields"] == [{"name": "Que faire" if language == "fr" else "What to do",
                              "value": "download the ZIP by hand", "inline": False}]
    assert green["title"].startswith("✅") and ("rétablie" if language == "fr" else "recovered") in green["title"]


def test_a_text_card_message_renders_its_lines() -> None:
    """A neutral card message (no facts attached) becomes an embed with its lines."""
    card = render.summary_card(summary())
    messages = message_embeds(card)
    assert_valid(messages)
    assert messages[0][0]["title"] == card.lines[0]
    assert "Federal communication reports, last 12 months: 23" in text_of(messages)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_summary_card_shows_counts_sparkline_links_and_news(language: str) -> None:
    """The card has the counts as fields (incl. federal communication reports in 12 months and lobbyists),
    top names, the 12-month sparkline, the latest records and news as links."""
    messages = summary_embeds(summary(), language=language)
    assert_valid(messages)
    [[embed]] = messages
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    if language == "fr":
        assert fields["Rapports de communication fédéraux, 12 derniers mois"] == "**23**"
        assert fields["Lobbyistes"].startswith("**9**")
    else:
        assert fields["Federal communication reports, last 12 months"] == "**23**"
        assert fields["Lobbyists"].startswith("**9**")
    assert embed["title"].endswith('amazon "hydro quebec"')
    text = text_of(messages)
    assert render.sparkline([m.count for m in summary().monthly]) in text
    assert "[AWS met TBS](https://lobbycanada.gc.ca/1)" in text
    assert "https://ledevoir.com/1" in text




def test_an_empty_search_says_so() -> None:
    """No match is said plainly, not shown as an empty card."""
    [[embed]] = summary_embeds(Summary(query=["nothing"]))
    assert embed["description"] == "No matching records."


def test_errors_are_marked() -> None:
    """An error answer is red and titled as a problem; a plain answer keeps its title and lines."""
    [[error]] = answer_embeds(Answer(["usage: /lobby unsubscribe N"], error=True))
    assert error["color"] == RED and error["title"].startswith("⚠️")
    assert error["description"] == "usage: /lobby unsubscribe N"
    [[listing]] = answer_embeds(Answer(["#1 discord:1/2 amazon (realtime, en)"], title="Subscriptions"))
    assert listing["title"] == "Subscriptions" and "#1" in listing["description"]
    [[card]] = answer_embeds(Answer(summary=summary()))
    assert card["title"].startswith("Lobbying")


def test_record_titles_cannot_inject_markdown() -> None:
    """Stars and brackets in a title are shown as written, and links stay links."""
    messages = message_embeds(render.batch([article(1)], language="fr"))
    text = messages[0][0]["description"]
    assert "\\*des\\* \\[géants\\]" in text
    assert text.endswith("(https://www.ledevoir.com/economie/1/hydro-quebec)")


def test_a_huge_digest_is_split_into_several_messages_without_losing_a_record() -> None:
    """A digest far over 6,000 characters is posted as several messages within every limit; nothing is dropped."""
    events = [communication(n, title=f"Record {n} " + "long title " * 20) for n in range(400)]
    events += [article(n) for n in range(100)]
    [part] = render.digest("Daily digest", events, max_lines=10_000)
    messages = message_embeds(part)
    assert len(messages) > 5
    assert_valid(messages)
    text = text_of(messages)
    assert all(text.count(event.url + ")") == 1 for event in events)
    assert all(message[0].get("title") for message in messages)
    assert "(continued)" in messages[1][0]["title"]


def test_a_huge_card_and_a_long_answer_stay_within_limits() -> None:
    """Very long names and titles are shortened, a very long answer is split; every piece is valid."""
    long = "Organisation " * 40
    card = summary(institutions=[Count(long + str(n), n) for n in range(10)],
                   officials=[Count(long, 1)] * 10, subjects=[Count(long, 1)] * 10,
                   latest=[Item(f"ocl:comm:{n}", "ocl", "communication", "T" * 3000, f"https://x.example/{n}",
                                "2026-11-20") for n in range(10)], query=["q" * 400])
    messages = summary_embeds(card)
    assert_valid(messages)
    assert all(f"https://x.example/{n})" in text_of(messages) for n in range(10))
    lines = [f"#{n} discord:1/2 " + "term " * 30 for n in range(500)]
    messages = answer_embeds(Answer(lines, title="Subscriptions of this channel"))
    assert len(messages) > 1
    assert_valid(messages)
    assert all(f"#{n} discord" in text_of(messages) for n in range(500))

"""The neutral rendering shared by the console, Slack and Discord: the 12-month sparkline and the text card."""

from __future__ import annotations

import json

from bot.discord.render import summary_embeds
from bot.render import group_by_organization, sparkline, summary_card
from bot.slack.render import card_blocks
from workers.events import Event
from workers.summary import Month, Summary


def test_sparkline_scales_to_the_busiest_month() -> None:
    """Empty months are the lowest bar, the busiest the highest, any activity is visible, heights proportional."""
    assert sparkline([0, 1, 100, 50]) == "▁▂█▅"
    # this used to read "▁▃▄▅█" on Discord only: Discord had its own formula, which lifted small counts
    assert sparkline([0, 1, 2, 4, 8]) == "▁▂▃▅█"
    assert sparkline([0, 0, 8]) == "▁▁█"
    assert sparkline([0, 0]) == "▁▁"


def test_the_text_card_draws_the_same_sparkline_as_the_platforms() -> None:
    """`lobbybot search` shows the 12-month bars next to the monthly counts."""
    counts = [0, 1, 2, 0, 3, 8, 1, 0, 0, 4, 6, 2]
    summary = Summary(query=["amazon"], total=27, by_source={"ocl": 27},
                      monthly=[Month(f"2026-{m:02d}", n) for m, n in zip(range(1, 13), counts, strict=True)])
    line = next(line for line in summary_card(summary).lines if line.startswith("Last 12 months:"))
    assert line == f"Last 12 months: {sparkline(counts)}  0 1 2 0 3 8 1 0 0 4 6 2  (2026-01 → 2026-12)"


def test_a_digest_groups_by_organisation_busiest_first() -> None:
    """Records are grouped by organisation (publisher, else "Other"), the busiest first, ties by name."""
    events = [Event(id=f"x:{n}", version="v1", source="ocl", kind="communication", title=str(n), organization=org)
              for n, org in enumerate(["B", "A", "B", "", "A", "C"])]
    groups = [(name, [e.title for e in items]) for name, items in group_by_organization(events)]
    assert groups == [("A", ["1", "4"]), ("B", ["0", "2"]), ("C", ["5"]), ("Other", ["3"])]


def test_slack_and_discord_say_an_empty_card_alike_in_french() -> None:
    """The French card words are the same on both platforms."""
    empty = Summary(query=["rien"], since="2026-01-01")
    slack = json.dumps(card_blocks(empty, "fr"), ensure_ascii=False)
    discord = json.dumps(summary_embeds(empty, language="fr"), ensure_ascii=False)
    for shown in (slack, discord):
        assert "Lobbying : rien" in shown and "depuis le 2026-01-01" in shown
        assert "Aucun dossier ne correspond." in shown

"""The neutral rendering shared by the console, Slack and Discord: the 12-month sparkline and the text card."""

from __future__ import annotations

from bot.render import sparkline, summary_card
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

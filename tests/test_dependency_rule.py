"""The import graph points one way (DESIGN §2): workers never imports bot; only bot/slack imports the Slack
SDKs and only bot/discord imports discord.py."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offenders(folder: str, forbidden: tuple[str, ...], allowed_under: str | None = None) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if allowed_under and relative.startswith(allowed_under):
            continue
        for module in imported_modules(path):
            if module.split(".")[0] in forbidden:
                found.append(f"{relative} imports {module}")
    return found


def test_workers_never_import_bot() -> None:
    """workers/ is the base layer: it enqueues bot jobs by dotted path, never by import."""
    assert offenders("workers", ("bot",)) == []


def test_slack_sdks_only_in_bot_slack() -> None:
    """Only bot/slack/ may import slack_bolt or slack_sdk."""
    assert offenders("bot", ("slack_bolt", "slack_sdk"), "bot/slack/") == []
    assert offenders("workers", ("slack_bolt", "slack_sdk")) == []


def test_discord_only_in_bot_discord() -> None:
    """Only bot/discord/ may import discord.py."""
    assert offenders("bot", ("discord",), "bot/discord/") == []
    assert offenders("workers", ("discord",)) == []


def test_the_rule_detects_a_violation(tmp_path: Path) -> None:
    """The checker itself sees `from bot.x import y` and `import discord.ext`."""
    sample = tmp_path / "m.py"
    sample.write_text("from bot.delivery import deliver\nimport discord.ext\n")
    assert imported_modules(sample) == {"bot.delivery", "discord.ext"}

"""slack-manifest.yml asks for what the app serves and uses: the same scopes, `/lobby` at `/slack/events`, the
OAuth redirect, HTTP mode."""

from __future__ import annotations

import re
from pathlib import Path

from bot.slack.app import EVENTS_PATH, REDIRECT_PATH, SCOPES

MANIFEST = (Path(__file__).resolve().parents[3] / "slack-manifest.yml").read_text(encoding="utf-8")


def test_manifest_scopes_are_the_ones_the_install_asks_for() -> None:
    """The bot scopes in the manifest equal those the OAuth install requests (bot.slack.app.SCOPES)."""
    bot = MANIFEST.split("    bot:\n", 1)[1].split("settings:", 1)[0]
    assert re.findall(r"^      - (\S+)$", bot, re.M) == SCOPES


def test_manifest_points_slack_at_lobbybot_web() -> None:
    """`/lobby` goes to /slack/events, the OAuth redirect to /slack/oauth_redirect, over HTTP (not Socket Mode)."""
    assert "    - command: /lobby\n" in MANIFEST
    assert f"      url: https://YOUR-APP.herokuapp.com{EVENTS_PATH}\n" in MANIFEST
    assert f"    - https://YOUR-APP.herokuapp.com{REDIRECT_PATH}\n" in MANIFEST
    assert "  socket_mode_enabled: false\n" in MANIFEST and "  org_deploy_enabled: false\n" in MANIFEST

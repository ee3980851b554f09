"""`lobbybot slack-socket`: Socket Mode needs SLACK_APP_TOKEN, and answers `/lobby` with the same listeners as
the HTTP app. (Connecting to Slack itself cannot be tested here: there is no network.)"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from redis import Redis
from slack_bolt.request import BoltRequest

from bot.cli import main
from bot.slack.app import build_app
from tests.bot.slack.slash import SECRET, signed, slash_body


def test_socket_mode_without_app_token_stops_with_one_line(
        redis: Redis, make_settings, capsys: pytest.CaptureFixture[str]) -> None:
    """Without SLACK_APP_TOKEN, `lobbybot slack-socket` exits 2 with one line naming it, and never connects."""
    make_settings(slack_bot_token="xoxb-1")

    assert main(["slack-socket"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lobbybot slack-socket: SLACK_APP_TOKEN: not set")


def test_socket_mode_without_bot_token_names_it(redis: Redis, make_settings,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """An app token alone is not enough: the line names SLACK_BOT_TOKEN."""
    make_settings(slack_app_token="xapp-1")

    assert main(["slack-socket"]) == 2
    assert "SLACK_BOT_TOKEN: not set" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["", "help", "list", "sources", "subscribe amazon", "amazon"])
def test_socket_mode_answers_lobby_as_http_does(redis: Redis, make_settings, text: str) -> None:
    """The Socket Mode app (unsigned frames) gives the same answer to /lobby as the HTTP app (signed requests)."""
    socket_app = build_app(make_settings(slack_bot_token="xoxb-1", slack_app_token="xapp-1"), redis, socket=True)
    http_app = build_app(make_settings(slack_bot_token="xoxb-1", slack_signing_secret=SECRET), redis)

    body = slash_body(text, trigger_id="1.2.same")  # the same invocation: a change is replayed, not repeated
    over_socket = socket_app.dispatch(BoltRequest(body=dict(parse_qsl(body, keep_blank_values=True)),
                                                  mode="socket_mode"))
    over_http = http_app.dispatch(BoltRequest(body=body, headers={k.lower(): [v] for k, v in signed(body).items()}))

    assert over_socket.status == over_http.status == 200
    assert json.loads(over_socket.body) == json.loads(over_http.body)

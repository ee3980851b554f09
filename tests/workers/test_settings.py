"""Settings: read once from the environment (and `.env`), fail fast with one line naming the variable."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from workers.settings import Settings, SettingsError, configure, env_name, load_settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=")


@pytest.fixture
def fresh_cli() -> Iterator[None]:
    """Let the CLI read the environment anew, and undo the logging set-up `main()` does."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure(None)
    yield
    configure(None)
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LOBBYBOT_RETENTION_DAYS", "abc"),
        ("PORT", "0"),
        ("WEB_CONCURRENCY", "0"),
        ("LOBBYBOT_FEEDS", "not-json"),
        ("LOBBYBOT_NEWS_LOCALES", '["french"]'),
        ("LOBBYBOT_ALERT_CHANNEL", "irc:#lobby"),
    ],
)
def test_bad_value_names_the_variable_in_one_line(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    """A bad value stops loading with a one-line message that starts with the environment variable's name."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable}: "), message
    assert "\n" not in message
    assert len(message) > len(variable) + 2  # says what is wrong, not only which variable


def test_cli_prints_bad_setting_as_one_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fresh_cli: None
) -> None:
    """`lobbybot sources` with a bad setting prints one stderr line naming the variable and exits with 2."""
    monkeypatch.setenv("LOBBYBOT_RETENTION_DAYS", "abc")
    code = main(["sources"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "LOBBYBOT_RETENTION_DAYS" in lines[0]
    assert "Traceback" not in err


def test_cli_poll_without_redis_url_says_so_and_exits_2(
    capsys: pytest.CaptureFixture[str], fresh_cli: None
) -> None:
    """`lobbybot poll` with no REDIS_URL prints one stderr line naming REDIS_URL and exits with 2."""
    code = main(["poll"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "REDIS_URL" in lines[0]


def test_tokens_never_appear_in_str_or_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens and secrets are SecretStr: printing the settings never shows their values."""
    secrets = {
        "SLACK_BOT_TOKEN": "xoxb-1111-2222-supersecretbot",
        "SLACK_SIGNING_SECRET": "8f14e45fceea167a5a36dedd4bea2543",
        "SLACK_APP_TOKEN": "xapp-1-A0001-secretapptoken",
        "SLACK_CLIENT_SECRET": "client-secret-c0ffee",
        "DISCORD_TOKEN": "MTA5ODc2NTQzMjEw.discord-secret-token",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == secrets["SLACK_BOT_TOKEN"]
    assert settings.discord_token is not None
    assert settings.discord_token.get_secret_value() == secrets["DISCORD_TOKEN"]
    printed = f"{settings}\n{settings!r}\n{settings.model_dump()}"
    for value in secrets.values():
        assert value not in printed


def test_feeds_accept_bare_urls_and_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOBBYBOT_FEEDS takes a JSON list mixing bare URL strings and {url, name, language} objects."""
    monkeypatch.setenv(
        "LOBBYBOT_FEEDS",
        '["https://rss.cbc.ca/lineup/politics.xml",'
        ' {"url": "https://www.ledevoir.com/rss/manchettes.xml", "name": "Le Devoir", "language": "fr"}]',
    )
    feeds = load_settings().feeds
    assert [(feed.url, feed.name, feed.language) for feed in feeds] == [
        ("https://rss.cbc.ca/lineup/politics.xml", "", None),
        ("https://www.ledevoir.com/rss/manchettes.xml", "Le Devoir", "fr"),
    ]


def _example_variables() -> list[str]:
    names = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _ASSIGNMENT.match(line)
        if match and not line.lstrip().startswith("#"):
            names.append(match.group(1))
    return names


def test_env_example_lists_exactly_the_settings() -> None:
    """.env.example lists every setting's environment variable once, and nothing that is not a setting."""
    listed = _example_variables()
    expected = {env_name(field) for field in Settings.model_fields}
    duplicated = sorted({name for name in listed if listed.count(name) > 1})
    missing = sorted(expected - set(listed))
    unknown = sorted(set(listed) - expected)
    assert not missing, f".env.example lacks {missing}"
    assert not unknown, f".env.example lists variables that are no setting: {unknown}"
    assert not duplicated, f".env.example lists {duplicated} more than once"


def test_env_example_values_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """The values written in .env.example are themselves valid settings."""
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _ASSIGNMENT.match(line)
        if match and not line.lstrip().startswith("#"):
            value = line.split("=", 1)[1].strip()
            if value:
                monkeypatch.setenv(match.group(1), value)
    settings = load_settings()
    assert settings.news_locales == ["fr-CA", "en-CA"]
    assert settings.retention_days == 730


def test_dotenv_in_working_directory_is_read_and_unrelated_keys_ignored() -> None:
    """A .env file in the working directory is read; keys that are no setting there do not break loading."""
    Path(".env").write_text(
        "# deployment config shared with other apps\n"
        "DATABASE_URL=postgres://app:pw@db.internal:5432/app\n"
        "SENTRY_DSN=https://abc@o1.ingest.sentry.io/2\n"
        "LOBBYBOT_SOMETHING_NEW=1\n"
        "REDIS_URL=redis://cache.internal:6380/4\n"
        "LOBBYBOT_RETENTION_DAYS=90\n"
        'LOBBYBOT_NEWS_TERMS=["Hydro-Québec"]\n'
        "SLACK_BOT_TOKEN=xoxb-from-dotenv\n",
        encoding="utf-8",
    )
    settings = load_settings()
    assert settings.redis_url == "redis://cache.internal:6380/4"
    assert settings.retention_days == 90
    assert settings.news_terms == ["Hydro-Québec"]
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-from-dotenv"


def test_environment_overrides_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable set in the environment wins over the same key in .env."""
    Path(".env").write_text("LOBBYBOT_POLL_MINUTES=60\n", encoding="utf-8")
    monkeypatch.setenv("LOBBYBOT_POLL_MINUTES", "5")
    assert load_settings().poll_minutes == 5


def test_bad_value_in_dotenv_names_the_variable() -> None:
    """A bad value coming from .env is reported like one from the environment: one line, variable first."""
    Path(".env").write_text("LOBBYBOT_MAX_FAILURES=never\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith("LOBBYBOT_MAX_FAILURES: ")
    assert "\n" not in str(caught.value)

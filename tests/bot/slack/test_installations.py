"""Slack installs and OAuth states kept in Redis: what the OAuth flow saves, slack-bolt and the poster find."""

from __future__ import annotations

import asyncio
import time

from redis import Redis
from slack_sdk.oauth.installation_store import Installation

from bot.slack.installations import RedisInstallationStore, RedisOAuthStateStore, bot_token
from tests.slack_api import SlackAPI


def install(team: str, token: str, *, enterprise: str | None = None, user: str = "U1",
            org_wide: bool = False) -> Installation:
    return Installation(app_id="A1", enterprise_id=enterprise, team_id=None if org_wide else team,
                        team_name=f"Team {team}", bot_token=token, bot_id="B1", bot_user_id="UBOT",
                        bot_scopes="commands,chat:write", bot_refresh_token=f"xoxe-1-{team}",
                        bot_token_expires_in=43200, user_id=user, user_token=f"xoxp-{team}",
                        is_enterprise_install=org_wide, token_type="bot")


def test_a_saved_install_is_found_with_its_token_rotation_fields(redis: Redis) -> None:
    """After the OAuth exchange, the install and its bot (token, scopes, refresh token, expiry) are found again."""
    store = RedisInstallationStore(redis, "lobbybot:")
    store.save(install("T1", "xoxb-one"))
    found = store.find_installation(enterprise_id=None, team_id="T1")
    bot = store.find_bot(enterprise_id=None, team_id="T1")
    assert found is not None and bot is not None
    assert (found.bot_token, found.user_id, found.team_name) == ("xoxb-one", "U1", "Team T1")
    assert bot.bot_token == "xoxb-one" and bot.bot_scopes == ["commands", "chat:write"]
    assert bot.bot_refresh_token == "xoxe-1-T1" and bot.bot_token_expires_at is not None
    assert store.find_installation(enterprise_id=None, team_id="T1", user_id="U1") is not None
    assert redis.exists("lobbybot:slack:installation:-:T1:bot")


def test_two_workspaces_are_kept_apart(redis: Redis, make_settings) -> None:
    """Two teams that installed the app each get their own token; an unknown team gets none."""
    settings = make_settings()
    store = RedisInstallationStore(redis, settings.redis_prefix)
    store.save(install("T1", "xoxb-one"))
    store.save(install("T2", "xoxb-two", user="U2"))
    assert bot_token(redis, settings, "T1") == "xoxb-one"
    assert bot_token(redis, settings, "T2") == "xoxb-two"
    assert bot_token(redis, settings, "T3") is None
    assert store.find_installation(enterprise_id=None, team_id="T1", user_id="U2") is None


def test_enterprise_installs_are_found_by_team_or_enterprise_id(redis: Redis, make_settings) -> None:
    """A workspace inside an Enterprise Grid org and an org-wide install both give the poster a token."""
    settings = make_settings()
    store = RedisInstallationStore(redis, settings.redis_prefix)
    store.save(install("T5", "xoxb-grid-workspace", enterprise="E1"))
    store.save(install("", "xoxb-org-wide", enterprise="E2", org_wide=True))
    assert bot_token(redis, settings, "T5") == "xoxb-grid-workspace"
    assert bot_token(redis, settings, "E2") == "xoxb-org-wide"
    assert store.find_bot(enterprise_id="E2", team_id="T9", is_enterprise_install=True) is not None


def test_a_reinstall_replaces_the_token_and_an_uninstall_forgets_it(redis: Redis, make_settings) -> None:
    """Reinstalling keeps only the newest token; after an uninstall the team has no token."""
    settings = make_settings()
    store = RedisInstallationStore(redis, settings.redis_prefix)
    store.save(install("T1", "xoxb-old"))
    store.save(install("T1", "xoxb-new", user="U2"))
    assert bot_token(redis, settings, "T1") == "xoxb-new"
    old_user = store.find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert old_user is not None and old_user.bot_token == "xoxb-new"  # the newest bot token wins
    store.delete_all(enterprise_id=None, team_id="T1")
    assert bot_token(redis, settings, "T1") is None
    assert store.find_installation(enterprise_id=None, team_id="T1", user_id="U1") is None
    assert not redis.keys("lobbybot:slack:*")


def test_single_workspace_mode_uses_the_configured_token(redis: Redis, make_settings) -> None:
    """With SLACK_BOT_TOKEN set, every team posts with it, installed or not."""
    settings = make_settings(slack_bot_token="xoxb-single")
    assert bot_token(redis, settings, "T1") == "xoxb-single"


def test_multi_workspace_mode_prefers_each_workspaces_installed_token(redis: Redis, make_settings) -> None:
    """With OAuth installs and SLACK_BOT_TOKEN both set, an installed team posts with its own token; the
    configured token only serves a team that has no install."""
    settings = make_settings(slack_bot_token="xoxb-single", slack_client_id="111.222", slack_client_secret="s3cr3t")
    RedisInstallationStore(redis, settings.redis_prefix).save(install("T2", "xoxb-team-two"))
    assert bot_token(redis, settings, "T2") == "xoxb-team-two"
    assert bot_token(redis, settings, "T9") == "xoxb-single"


def test_the_async_twins_reach_the_same_data(redis: Redis) -> None:
    """An AsyncApp finds what the sync API saved."""
    store = RedisInstallationStore(redis, "lobbybot:")

    async def run() -> str | None:
        await store.async_save(install("T1", "xoxb-one"))
        bot = await store.async_find_bot(enterprise_id=None, team_id="T1")
        return bot.bot_token if bot else None

    assert asyncio.run(run()) == "xoxb-one"


def test_an_oauth_state_is_consumed_once(redis: Redis) -> None:
    """The OAuth redirect accepts a state once; a replay of the same callback is refused."""
    states = RedisOAuthStateStore(redis, "lobbybot:")
    state = states.issue()
    assert 0 < redis.ttl(f"lobbybot:slack:oauth_state:{state}") <= 600
    assert states.consume(state) is True
    assert states.consume(state) is False
    assert states.consume("never-issued") is False


def test_an_expired_oauth_state_is_refused(redis: Redis) -> None:
    """A state older than its lifetime is refused (the user must start the install again)."""
    states = RedisOAuthStateStore(redis, "lobbybot:", expiration_seconds=1)
    state = states.issue()
    deadline = time.monotonic() + 10
    while redis.exists(f"lobbybot:slack:oauth_state:{state}") and time.monotonic() < deadline:
        time.sleep(0.05)  # wait for Redis to expire it; the assertion below does not depend on the timing
    assert states.consume(state) is False


def test_an_expiring_rotating_token_is_refreshed_and_saved(redis: Redis, make_settings) -> None:
    """With token rotation on, a token about to expire is refreshed through oauth.v2.access before posting."""
    api = SlackAPI(bot_token="xoxb-new")
    try:
        settings = make_settings(slack_client_id="1.1", slack_client_secret="shh", slack_api_url=api.base_url)
        store = RedisInstallationStore(redis, settings.redis_prefix)
        expiring = install("T1", "xoxb-old")
        expiring.bot_token_expires_at = int(time.time()) + 60
        store.save(expiring)
        assert bot_token(redis, settings, "T1") == "xoxb-new-refreshed"
        [call] = api.calls("oauth.v2.access")
        assert call.body["grant_type"] == "refresh_token" and call.body["refresh_token"] == "xoxe-1-T1"
        bot = store.find_bot(enterprise_id=None, team_id="T1")
        assert bot is not None and bot.bot_refresh_token == "xoxe-1-refreshed"
        assert bot_token(redis, settings, "T1") == "xoxb-new-refreshed"
        assert len(api.calls("oauth.v2.access")) == 1  # a fresh token is not refreshed again
    finally:
        api.close()


def test_a_failed_refresh_keeps_the_current_token(redis: Redis, make_settings) -> None:
    """If Slack refuses the refresh, the current token is used (the post then says what is wrong)."""
    api = SlackAPI()
    api.fail("oauth.v2.access", "invalid_refresh_token")
    try:
        settings = make_settings(slack_client_id="1.1", slack_client_secret="shh", slack_api_url=api.base_url)
        expiring = install("T1", "xoxb-old")
        expiring.bot_token_expires_at = int(time.time()) + 60
        RedisInstallationStore(redis, settings.redis_prefix).save(expiring)
        assert bot_token(redis, settings, "T1") == "xoxb-old"
    finally:
        api.close()

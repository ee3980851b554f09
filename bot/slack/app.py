"""The Slack app: one slack-bolt `App` (sync) for HTTP mode (`lobbybot web`) and Socket Mode (`lobbybot slack-socket`).

    mode(settings)                 "off" | "single" | "multi": which Slack settings are set, checked once at start
    build_app(settings, redis, …)  the bolt App with the `/lobby` listener (`bot.slack.commands.register`)
    wsgi_app(app)                  the WSGI callable for `/slack/events`, `/slack/install`, `/slack/oauth_redirect`
    run_socket_mode(app, settings) blocks on Slack's Socket Mode connection

Modes: single workspace needs `SLACK_BOT_TOKEN` + `SLACK_SIGNING_SECRET`; multi-workspace (`SLACK_CLIENT_ID` +
`SLACK_CLIENT_SECRET` + `SLACK_SIGNING_SECRET`) adds the OAuth install pages, with installs and one-time states
kept in Redis (`bot.slack.installations`). With neither token nor client id Slack is off.

The app never reaches Slack to start or to authorize a request: bolt would call `auth.test` at construction
(single workspace) or on every request (its `InstallationStoreAuthorize`), so `authorize=` is our own
`StoredAuthorize`, which answers from `SLACK_BOT_TOKEN` or the installation store alone. The Web API base URL is
`LOBBYBOT_SLACK_API_URL`, so tests point the OAuth exchange at a local mock server.

How it fails: `mode` raises `SettingsError` naming the missing variable (a token without a signing secret,
half of the OAuth pair); a request from a workspace that has not installed the app gets bolt's
"not installed" answer (authorize returns None).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Literal

from redis import Redis
from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize
from slack_bolt.context import BoltContext
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient

from bot.slack import web_api_url
from bot.slack.installations import RedisInstallationStore, RedisOAuthStateStore
from workers.settings import Settings, SettingsError

log = logging.getLogger("lobbybot.slack")
Mode = Literal["off", "single", "multi"]
# `commands` lets people type /lobby; `chat:write` posts alerts to channels the bot was invited to;
# `chat:write.public` posts to public channels it was not invited to (a subscription made by /lobby in a public
# channel then works without /invite). Keep in step with slack-manifest.yml.
SCOPES = ["commands", "chat:write", "chat:write.public"]
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
EVENTS_PATH = "/slack/events"


def mode(settings: Settings, *, socket: bool = False) -> Mode:
    """Which Slack mode the settings ask for; raise `SettingsError` naming what is missing."""
    multi = bool(settings.slack_client_id or settings.slack_client_secret)
    if multi and not settings.slack_client_id:
        raise SettingsError("SLACK_CLIENT_ID: not set, but SLACK_CLIENT_SECRET is (both are needed for "
                            "multi-workspace installs; Basic Information → App Credentials)")
    if multi and not settings.slack_client_secret:
        raise SettingsError("SLACK_CLIENT_SECRET: not set, but SLACK_CLIENT_ID is (both are needed for "
                            "multi-workspace installs; Basic Information → App Credentials)")
    if not multi and settings.slack_bot_token is None:
        if settings.slack_signing_secret is not None or (socket and settings.slack_app_token is not None):
            raise SettingsError("SLACK_BOT_TOKEN: not set (the xoxb-… Bot User OAuth Token from OAuth & "
                                "Permissions), or set SLACK_CLIENT_ID/SLACK_CLIENT_SECRET for multi-workspace")
        return "off"
    if not socket and settings.slack_signing_secret is None:
        raise SettingsError("SLACK_SIGNING_SECRET: not set; Slack signs every request with it and lobbybot "
                            "refuses unsigned ones (Basic Information → App Credentials → Signing Secret)")
    return "multi" if multi else "single"


class _KnownNoise(logging.Filter):
    """bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that the `client` we pass wins
    over it; that is intended here (the token reaches bolt through `authorize`), so the warning is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("As you gave `client` as well")


log.addFilter(_KnownNoise())


class StoredAuthorize(Authorize):
    """Authorize a request from stored credentials only (no `auth.test`): the installed bot of the request's
    workspace (multi-workspace), else `SLACK_BOT_TOKEN`. None when the workspace has not installed the app."""

    def __init__(self, settings: Settings, store: RedisInstallationStore | None) -> None:
        self.settings = settings
        self.store = store

    def __call__(self, *, context: BoltContext, enterprise_id: str | None, team_id: str | None,
                 user_id: str | None, **_: Any) -> AuthorizeResult | None:
        if self.store is not None:
            bot = self.store.find_bot(enterprise_id=enterprise_id, team_id=team_id,
                                      is_enterprise_install=context.is_enterprise_install)
            if bot is not None:
                return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_user_id=bot.bot_user_id,
                                       bot_id=bot.bot_id, bot_token=bot.bot_token, bot_scopes=bot.bot_scopes,
                                       user_id=user_id)
        token = self.settings.slack_bot_token
        if token is None:
            return None
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id,
                               bot_token=token.get_secret_value())


def build_app(settings: Settings, redis: Redis, *, answer_within: float = 2.0, socket: bool = False) -> App:
    """The bolt App for `mode(settings)` (which must not be "off"), with the `/lobby` listener registered."""
    from bot.slack import commands

    chosen = mode(settings, socket=socket)
    if chosen == "off":
        raise SettingsError("SLACK_BOT_TOKEN: not set; Slack is off")
    client = WebClient(base_url=web_api_url(settings.slack_api_url))
    store = RedisInstallationStore(redis, settings.redis_prefix) if chosen == "multi" else None
    oauth = None
    if store is not None:
        assert settings.slack_client_id and settings.slack_client_secret  # checked by mode()
        oauth = OAuthSettings(
            client_id=settings.slack_client_id, client_secret=settings.slack_client_secret.get_secret_value(),
            scopes=SCOPES, installation_store=store, installation_store_bot_only=True,
            state_store=RedisOAuthStateStore(redis, settings.redis_prefix),
            install_path=INSTALL_PATH, redirect_uri_path=REDIRECT_PATH,
            # Slack's own page otherwise shows a "Add to Slack" button first; one click fewer.
            install_page_rendering_enabled=False,
        )
    signing_secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    app = App(
        name="lobbybot", logger=log, signing_secret=signing_secret, client=client,
        # bolt accepts an `Authorize` instance here (its hint says Callable[..., AuthorizeResult], not Optional).
        authorize=StoredAuthorize(settings, store), oauth_settings=oauth,  # type: ignore[arg-type]
        installation_store_bot_only=True if store is not None else None,
        token_verification_enabled=False,
        # The listener does all its work before it acks (anything slower is queued for a worker), so bolt may run
        # it in the request's own thread: its default hands it to a pool and polls for the ack every 10 ms,
        # which added ~10 ms to every command. Lazy listeners (which this setting would break) are not used.
        process_before_response=True,
        # Socket Mode frames are not signed (bolt skips the check there anyway); over HTTP it is always on.
        request_verification_enabled=not socket,
    )
    commands.register(app, redis, settings, answer_within=answer_within)
    return app


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wsgi_app(app: App) -> WSGIApp:
    """Bolt's WSGI adapter: POST `/slack/events`; GET `/slack/install` and `/slack/oauth_redirect` when
    multi-workspace; 404 otherwise."""
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    return SlackRequestHandler(app, path=EVENTS_PATH)


def run_socket_mode(app: App, settings: Settings) -> None:
    """Connect to Slack over Socket Mode (`SLACK_APP_TOKEN`, xapp-…) and serve until interrupted."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    if settings.slack_app_token is None:
        raise SettingsError("SLACK_APP_TOKEN: not set; Socket Mode needs the app-level token (xapp-…, "
                            "Basic Information → App-Level Tokens, scope connections:write)")
    SocketModeHandler(app, settings.slack_app_token.get_secret_value()).start()

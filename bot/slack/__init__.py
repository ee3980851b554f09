"""Slack: the only package that imports `slack_sdk` / `slack_bolt` (DESIGN §2).

    installations   Redis-backed InstallationStore and OAuthStateStore; `bot_token` for a team
    render          Block Kit from the neutral layer (`bot.render.Message`, `bot.commands.Answer`, `Summary`)
    poster          `SlackPoster`: chat.postMessage with Slack's errors mapped to the delivery core's rules
"""


def web_api_url(url: str) -> str:
    """`LOBBYBOT_SLACK_API_URL` as `WebClient(base_url=…)` needs it: ending in exactly one "/", since slack_sdk
    appends the method name ("chat.postMessage") to it as is."""
    return url.rstrip("/") + "/"

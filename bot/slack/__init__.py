"""Slack: the only package that imports `slack_sdk` / `slack_bolt` (DESIGN §2).

    installations   Redis-backed InstallationStore and OAuthStateStore; `bot_token` for a team
    render          Block Kit from the neutral layer (`bot.render.Message`, `bot.commands.Answer`, `Summary`)
    poster          `SlackPoster`: chat.postMessage with Slack's errors mapped to the delivery core's rules
"""

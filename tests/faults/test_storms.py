"""Rate-limit and server-error storms: real `lobbybot worker` processes post alerts to a Slack channel and a
Discord channel while the mock APIs (tests/slack_api.py, tests/discord_api.py) answer a seeded mix of 429s,
5xx and (Discord) lost responses; every alert ends up in its channel exactly once, no job fails for good and no
subscription is paused. The storm is short enough that no job exhausts its five retries (DELIVERY_RETRY)."""

from __future__ import annotations

import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq.registry import FailedJobRegistry

from tests.discord_api import DiscordAPI, Drop, Limit, Status
from tests.processes import Daemon, clean_env
from tests.slack_api import Reply, SlackAPI
from workers.events import Event
from workers.ingest import ingest
from workers.subscriptions import Subscription, SubscriptionStore

pytestmark = [pytest.mark.faults, pytest.mark.processes]
SEED = int(os.environ.get("LOBBYBOT_FAULT_SEED") or random.randrange(2**32))
ALERTS = 8
SLACK_TOKEN = "xoxb-test-SECRET-storm-0001"
DISCORD_TOKEN = "discord-test-SECRET-storm-0002"
SLACK_CHANNEL = "slack:T1/C0STORM"
DISCORD_CHANNEL = "discord:111111111111111111/222222222222222222"


def alerts() -> list[Event]:
    published = datetime.now(UTC) - timedelta(days=1)
    return [Event(id=f"ocl:communication:storm{n}", version="1", source="ocl", kind="communication",
                  title=f"Storm alert {n:02d}: Hydro-Québec met Finance", organization="Hydro-Québec",
                  institutions=("Finance Canada",), published_at=published,
                  url=f"https://lobbycanada.gc.ca/comm/storm{n}") for n in range(ALERTS)]


def shown(bodies: list[str]) -> dict[int, int]:
    """How many posted messages show each alert."""
    return {n: sum(f"Storm alert {n:02d}" in body for body in bodies) for n in range(ALERTS)}


def test_slack_and_discord_storms_post_every_alert_exactly_once(redis: Redis, redis_url: str, make_settings,
                                                                tmp_path: Path) -> None:
    """429s, 5xx and lost responses from Slack and Discord: each alert is posted once, none is lost."""
    rng = random.Random(SEED)
    seed = f"(LOBBYBOT_FAULT_SEED={SEED})"
    slack, discord = SlackAPI(bot_token=SLACK_TOKEN), DiscordAPI(token=DISCORD_TOKEN)
    slack_storm = [Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}) for _ in range(4)]
    slack_storm += [Reply(503, {"ok": False, "error": "service_unavailable"}), Reply(500, "Internal Server Error")]
    rng.shuffle(slack_storm)
    discord_storm: list[Limit | Status | Drop] = [Limit(rng.uniform(0.2, 1.0)) for _ in range(4)]
    discord_storm += [Limit(0.5, global_=True), Status(502), Status(503, {"message": "unavailable", "code": 0}),
                      Drop()]
    rng.shuffle(discord_storm)
    slack.script("chat.postMessage", *slack_storm)
    discord.plan.extend(discord_storm)

    settings = make_settings(alert_channel=None, batch_threshold=ALERTS + 10, slack_bot_token=SLACK_TOKEN,
                             slack_api_url=slack.base_url, discord_token=DISCORD_TOKEN,
                             discord_api_url=discord.base_url)
    subs = SubscriptionStore(redis, settings.redis_prefix)
    for channel in (SLACK_CHANNEL, DISCORD_CHANNEL):
        subs.add(Subscription(channel=channel, terms=["hydro-quebec"]), actor="test")
    ingest(redis, settings, alerts(), alert=True)
    env = clean_env(REDIS_URL=redis_url, LOBBYBOT_SOURCES="[]", LOBBYBOT_BATCH_THRESHOLD=str(ALERTS + 10),
                    SLACK_BOT_TOKEN=SLACK_TOKEN, LOBBYBOT_SLACK_API_URL=slack.base_url,
                    DISCORD_TOKEN=DISCORD_TOKEN, LOBBYBOT_DISCORD_API_URL=discord.base_url, LOBBYBOT_LOG_LEVEL="INFO")
    workers = [Daemon(f"storm{n}", ["worker"], env, tmp_path) for n in range(2)]
    try:
        deadline = time.monotonic() + 240  # worst storm order: three RQ retries, 10 + 30 + 60 s apart
        while time.monotonic() < deadline:
            slack_bodies = [json.dumps(call.body, ensure_ascii=False) for call in slack.posted()]
            discord_bodies = [json.dumps(message, ensure_ascii=False) for message in discord.messages]
            if all(shown(slack_bodies).values()) and all(shown(discord_bodies).values()):
                break
            time.sleep(0.5)
        time.sleep(2)  # a duplicate would show now
        codes = [worker.terminate(25) for worker in workers]
    finally:
        for worker in workers:
            if worker.alive():
                worker.crash()
        slack.close()
        discord.close()

    slack_seen = shown([json.dumps(call.body, ensure_ascii=False) for call in slack.posted()])
    discord_seen = shown([json.dumps(message, ensure_ascii=False) for message in discord.messages])
    logs = "\n".join(worker.err()[-2000:] for worker in workers)
    assert all(n == 1 for n in slack_seen.values()), f"Slack {slack_seen} {seed}\n{logs}"
    assert all(n == 1 for n in discord_seen.values()), f"Discord {discord_seen} {seed}\n{logs}"
    assert not slack._scripts.get("chat.postMessage") and not discord.plan, f"the storm was not used up {seed}"
    assert FailedJobRegistry("deliver", connection=redis).count == 0, seed
    assert not [sub for sub in subs.all() if sub.paused], seed
    assert codes == [0, 0], seed

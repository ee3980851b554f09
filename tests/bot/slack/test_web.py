"""`lobbybot web` as Slack's request URL: a real process on a free port, sent signed `/lobby` commands."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from redis import Redis
from rq import Queue, SimpleWorker

from bot.slack.installations import RedisInstallationStore
from bot.slack.replies import WORKING
from tests import conftest
from tests.bot.slack.slash import SECRET, Web, signed, slash_body
from tests.processes import clean_env, run
from tests.records import sample_records
from tests.slack_api import SlackAPI
from workers.ingest import ingest
from workers.subscriptions import Subscription, SubscriptionStore

pytestmark = pytest.mark.processes
CHANNEL = "slack:T1/C1"


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """One workspace (SLACK_BOT_TOKEN); only UADMIN may change subscriptions."""
    web = Web(conftest.test_redis_url(), tmp_path_factory.mktemp("single"), SLACK_BOT_TOKEN="xoxb-single",
              SLACK_SIGNING_SECRET=SECRET, LOBBYBOT_SLACK_ADMINS='["UADMIN"]')
    yield web
    web.stop()


@pytest.fixture(scope="module")
def api() -> Iterator[SlackAPI]:
    server = SlackAPI(team_id="T1")
    yield server
    server.close()


@pytest.fixture
def indexed(redis: Redis, make_settings) -> Redis:
    ingest(redis, make_settings(), sample_records(), alert=False)
    return redis


def blocks_text(answer: dict[str, object]) -> str:
    """What Slack shows of an answer: its blocks (as JSON text, so names and links can be looked for)."""
    return json.dumps(answer.get("blocks", []), ensure_ascii=False)


def test_search_answers_with_the_summary_card_in_channel(indexed: Redis, single: Web) -> None:
    """`/lobby amazon hydro-quebec` answers 200 with a card for the whole channel: counts, names and links."""
    response = single.post_command("amazon hydro-quebec")

    assert response.status_code == 200
    answer = response.json()
    assert answer["response_type"] == "in_channel"
    shown = blocks_text(answer)
    assert "4 records" in answer["text"]
    fields = {field["text"] for block in answer["blocks"] for field in block.get("fields", [])}
    assert {"*Records*\n4", "*Lobbyists*\n3 (1 CLQ, 2 OCL)",
            "*Federal communication reports, last 12 months*\n3"} <= fields
    for expected in ("Hydro-Québec (4)", "Marie Tremblay (2)", "comlogId=712345", "carrefourlobby.quebec/mandat/9001"):
        assert expected in shown, expected
    assert "Bell" not in shown


def test_a_channel_subscribed_in_french_gets_its_card_in_french(indexed: Redis, single: Web) -> None:
    """Slack sends no locale: a channel whose subscriptions are all French gets French cards."""
    SubscriptionStore(indexed, "lobbybot:").add(Subscription(channel=CHANNEL, terms=["bell"], language="fr"),
                                                actor="test")
    answer = single.post_command("amazon hydro-quebec").json()
    assert "Lobbying : amazon hydro-quebec" in blocks_text(answer)
    assert "*Dossiers*\n4" in {field["text"] for block in answer["blocks"] for field in block.get("fields", [])}


def test_forged_signature_is_refused(indexed: Redis, single: Web) -> None:
    """A request signed with another secret gets 401 and changes nothing."""
    body = slash_body("subscribe amazon")
    response = single.http.post("/slack/events", content=body, headers=signed(body, secret="not-the-secret"))

    assert response.status_code == 401
    assert SubscriptionStore(indexed, "lobbybot:").for_channel(CHANNEL) == []


def test_stale_timestamp_is_refused(indexed: Redis, single: Web) -> None:
    """A correctly signed request older than five minutes (a replay) gets 401 and changes nothing."""
    body = slash_body("subscribe amazon")
    response = single.http.post("/slack/events", content=body,
                                headers=signed(body, timestamp=int(time.time()) - 6 * 60))

    assert response.status_code == 401
    assert SubscriptionStore(indexed, "lobbybot:").for_channel(CHANNEL) == []


def test_a_retried_subscribe_creates_one_subscription(indexed: Redis, single: Web) -> None:
    """Slack delivering the same /lobby subscribe twice (the second with X-Slack-Retry-Num) subscribes once."""
    first = single.post_command("subscribe amazon hydro-quebec daily", trigger_id="13345224609.738474920.8088930838d")
    again = single.post_command("subscribe amazon hydro-quebec daily", trigger_id="13345224609.738474920.8088930838d",
                                headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})

    assert first.status_code == again.status_code == 200
    assert first.json()["text"] == again.json()["text"]
    assert "Subscribed: #1" in first.json()["text"] and first.json()["response_type"] == "in_channel"
    subs = SubscriptionStore(indexed, "lobbybot:").for_channel(CHANNEL)
    assert [(sub.terms, sub.digest) for sub in subs] == [(["amazon", "hydro-quebec"], "daily")]


def test_a_non_admin_is_refused_politely(indexed: Redis, single: Web) -> None:
    """With LOBBYBOT_SLACK_ADMINS set, another user's subscribe gets a polite note only they see, and no change."""
    response = single.post_command("subscribe amazon", user="UOTHER")

    answer = response.json()
    assert response.status_code == 200 and answer["response_type"] == "ephemeral"
    assert "Sorry, only the people allowed" in blocks_text(answer)
    store = SubscriptionStore(indexed, "lobbybot:")
    assert store.for_channel(CHANNEL) == [] and store.audit() == []


def test_changes_are_audited_as_the_slack_user(indexed: Redis, single: Web) -> None:
    """Subscribe, alias add and unsubscribe from Slack are in the audit log under slack:<user id>."""
    single.post_command("subscribe amazon")
    single.post_command("alias add Amazon Web Services = AWS")
    single.post_command("unsubscribe 1")

    audit = SubscriptionStore(indexed, "lobbybot:").audit()
    assert [(entry["who"], entry["action"]) for entry in reversed(audit)] == [
        ("slack:UADMIN", "subscribe"), ("slack:UADMIN", "alias"), ("slack:UADMIN", "unsubscribe")]


def test_empty_text_answers_help_and_a_misused_subcommand_its_usage(redis: Redis, single: Web) -> None:
    """`/lobby` alone answers the help to the asker; `/lobby unsubscribe` without a number answers its usage."""
    help_answer = single.post_command("").json()
    usage = single.post_command("unsubscribe").json()

    assert help_answer["response_type"] == "ephemeral"
    assert "/lobby subscribe TERM…" in blocks_text(help_answer) and "/lobby why EVENT_ID" in blocks_text(help_answer)
    assert usage["response_type"] == "ephemeral" and "usage: /lobby unsubscribe N" in blocks_text(usage)


def test_sources_list_why_and_alias(indexed: Redis, single: Web) -> None:
    """`/lobby sources`, `list`, `why` and `alias add` answer from Redis; an alias then widens a search."""
    sources = single.post_command("sources").json()
    assert all(name in blocks_text(sources) for name in ("feeds", "ocl", "lda", "clq"))
    assert "last success" in blocks_text(sources)

    assert "no subscription yet" in blocks_text(single.post_command("list").json())
    single.post_command("subscribe amazon weekly fr")
    assert "#1 slack:T1/C1 amazon (weekly at 08:00, fr)" in blocks_text(single.post_command("list").json())

    why = single.post_command("why ocl:comm:712345").json()
    assert why["response_type"] == "ephemeral" and "ocl:comm:712345" in blocks_text(why)

    # The channel's only subscription is French, so its cards are too.
    assert single.post_command("nimbus hydro-quebec").json()["text"].endswith("— 0 dossiers")
    alias = single.post_command("alias add Amazon Web Services Canada = Nimbus Cloud").json()
    assert "Alias: " in blocks_text(alias) and "Nimbus Cloud" in blocks_text(alias)
    assert "4 dossiers" in single.post_command('"nimbus cloud" hydro-quebec').json()["text"]


def test_a_slow_search_is_answered_at_response_url_by_a_worker(indexed: Redis, api: SlackAPI, make_settings,
                                                                tmp_path: Path) -> None:
    """A search not done in time acks "working…", and a worker posts the card to response_url once,
    even when Slack delivered the command twice."""
    make_settings()
    web = Web(conftest.test_redis_url(), tmp_path, "--answer-within", "0", SLACK_BOT_TOKEN="xoxb-single",
              SLACK_SIGNING_SECRET=SECRET)
    try:
        url = api.url("/commands/T1/1/slow")
        fields = {"response_url": url, "trigger_id": "555.666.slow"}
        first = web.post_command("amazon hydro-quebec", **fields)
        retried = web.post_command("amazon hydro-quebec", headers={"X-Slack-Retry-Num": "1"}, **fields)
    finally:
        web.stop()

    for response in (first, retried):
        assert response.status_code == 200
        assert response.json() == {"text": WORKING, "response_type": "ephemeral"}
    queue = Queue("default", connection=indexed)
    assert queue.count == 1
    SimpleWorker([queue], connection=indexed).work(burst=True)
    posted = api.wait(urlsplit(url).path)
    assert len(posted) == 1 and posted[0].ok
    assert posted[0].body["response_type"] == "in_channel" and "4 records" in posted[0].body["text"]
    assert "Marie Tremblay" in json.dumps(posted[0].body["blocks"], ensure_ascii=False)


def test_multi_workspace_install_then_command(indexed: Redis, api: SlackAPI, tmp_path: Path) -> None:
    """/slack/install sends the browser to Slack with a state; the redirect exchanges the code at oauth.v2.access,
    the install is kept in Redis, and commands from that workspace are then answered (others are not)."""
    web = Web(conftest.test_redis_url(), tmp_path, SLACK_CLIENT_ID="1111.2222", SLACK_CLIENT_SECRET="client-secret",
              SLACK_SIGNING_SECRET=SECRET, LOBBYBOT_SLACK_API_URL=api.base_url)
    browser = httpx.Client(base_url=web.url, timeout=10)
    try:
        before = web.post_command("amazon hydro-quebec", team="T1", response_url=api.url("/commands/T1/before"))
        start = browser.get("/slack/install")
        authorize = urlsplit(start.headers["location"])
        query = parse_qs(authorize.query)
        # The state cookie is `Secure` (the app is behind https in production): send it back as a browser would.
        cookie = {"Cookie": start.headers["set-cookie"].split(";")[0]}
        params = {"code": "code-123", "state": query["state"][0]}
        back = browser.get("/slack/oauth_redirect", params=params, headers=cookie)
        replayed = browser.get("/slack/oauth_redirect", params=params, headers=cookie)
        after = web.post_command("amazon hydro-quebec", team="T1")
        other = web.post_command("amazon hydro-quebec", team="T9", response_url=api.url("/commands/T9/other"))
    finally:
        browser.close()
        web.stop()

    assert start.status_code == 302 and f"{authorize.netloc}{authorize.path}" == "slack.com/oauth/v2/authorize"
    assert query["client_id"] == ["1111.2222"] and query["scope"] == ["commands,chat:write,chat:write.public"]
    assert back.status_code == 200 and replayed.status_code != 200
    exchanges = api.calls("oauth.v2.access")
    assert len(exchanges) == 1 and exchanges[0].body["code"] == "code-123"
    bot = RedisInstallationStore(indexed, "lobbybot:").find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None and bot.bot_token == "xoxb-installed-token"
    assert after.status_code == 200 and "4 records" in after.json()["text"]
    for response, path in ((before, "/commands/T1/before"), (other, "/commands/T9/other")):
        assert "4 records" not in response.text
        refusal = api.wait(path)  # bolt tells the asker through response_url
        assert len(refusal) == 1 and "install this app" in refusal[0].body["text"]


def test_web_without_slack_serves_healthz_and_says_slack_is_off(redis: Redis, tmp_path: Path) -> None:
    """With no Slack setting, `lobbybot web` still answers /healthz, has no /slack/events, and says Slack is off."""
    web = Web(conftest.test_redis_url(), tmp_path)
    events = web.http.post("/slack/events", content="x")
    err = web.stop()

    assert events.status_code == 404
    assert "Slack is off" in err


def test_a_token_without_signing_secret_stops_with_one_line(tmp_path: Path) -> None:
    """SLACK_BOT_TOKEN without SLACK_SIGNING_SECRET: exit 2 and one line naming SLACK_SIGNING_SECRET."""
    result = run("web", env=clean_env(REDIS_URL=conftest.test_redis_url(), SLACK_BOT_TOKEN="xoxb-1"), cwd=tmp_path,
                 timeout=30)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("lobbybot web: SLACK_SIGNING_SECRET")
    assert "xoxb-1" not in result.stderr

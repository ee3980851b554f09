"""Dedupe against a real Redis: new / updated / duplicate, cross-feed news duplicates, retention, concurrency."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from redis import Redis

from workers.dedupe import Deduper, Verdict
from workers.events import Event
from workers.settings import Settings

DAY = 86400
NOW = datetime(2026, 9, 23, 12, 0, tzinfo=UTC)


def article(native: str, title: str, url: str, *, version: str = "v1", publisher: str = "") -> Event:
    return Event(id=f"news:{native}", version=version, source="news", kind="article", title=title, url=url,
                 published_at=NOW - timedelta(hours=2), publisher=publisher)


def communication(native: str, *, version: str = "1", posted: datetime | None = None) -> Event:
    return Event(id=f"ocl:comm:{native}", version=version, source="ocl", kind="communication",
                 title=f"Communication report {native}", published_at=posted or NOW - timedelta(days=3),
                 occurred_at=(posted or NOW - timedelta(days=3)) - timedelta(days=10))


def lobby_keys(redis: Redis, settings: Settings) -> list[str]:
    return sorted(key.decode() for key in redis.scan_iter(f"{settings.redis_prefix}*"))


def test_new_then_duplicate_then_updated(redis: Redis, make_settings: Callable[..., Settings]) -> None:
    """An unseen id is new, the same version again is a duplicate, a new version is updated (with the old one)."""
    deduper = Deduper(redis, make_settings())
    first = communication("712345", version="1")
    [seen] = deduper.classify([first], now=NOW)
    assert seen.verdict is Verdict.NEW
    [again] = deduper.classify([first], now=NOW)
    assert again.verdict is Verdict.DUPLICATE
    assert again.other == first.id
    amended = communication("712345", version="2")
    [changed] = deduper.classify([amended], now=NOW)
    assert changed.verdict is Verdict.UPDATED
    assert changed.other == "1"
    [after] = deduper.classify([amended], now=NOW)
    assert after.verdict is Verdict.DUPLICATE


def test_repeat_within_one_batch_is_duplicate(redis: Redis, make_settings: Callable[..., Settings]) -> None:
    """The same record twice in one batch is new once, then a duplicate; verdicts keep the batch order."""
    deduper = Deduper(redis, make_settings())
    a, b = communication("1"), communication("2")
    verdicts = [(c.event.id, c.verdict) for c in deduper.classify([a, b, a], now=NOW)]
    assert verdicts == [(a.id, Verdict.NEW), (b.id, Verdict.NEW), (a.id, Verdict.DUPLICATE)]


def test_same_guid_through_two_feeds_is_one_article(redis: Redis, make_settings: Callable[..., Settings]) -> None:
    """A Google News item reached by two searches (same guid, so same id) is alerted once."""
    deduper = Deduper(redis, make_settings())
    via_term_one = article("fe62b5c7017bf4d8", "Hydro-Québec multiplie les rencontres avec les lobbyistes - La Presse",
                           "https://news.google.com/rss/articles/CBMimAFBVV95cUxN?oc=5", publisher="La Presse")
    via_term_two = via_term_one.model_copy()
    first, second = deduper.classify([via_term_one], now=NOW) + deduper.classify([via_term_two], now=NOW)
    assert first.verdict is Verdict.NEW
    assert second.verdict is Verdict.DUPLICATE
    assert second.other == via_term_one.id


def test_same_canonical_url_is_a_duplicate_of_the_first(redis: Redis, make_settings: Callable[..., Settings]) -> None:
    """Articles whose URLs differ only by utm_* / ?cmp=rss / fragment are duplicates of the first one seen."""
    deduper = Deduper(redis, make_settings())
    cbc = article("cbc-1", "Lobbying commissioner opens review of pipeline meetings",
                  "https://www.cbc.ca/news/politics/lobbying-review-1.7311234?cmp=rss")
    shared = article("share-1", "Commissioner to examine pipeline lobbying meetings",
                     "https://WWW.CBC.CA/news/politics/lobbying-review-1.7311234?utm_source=twitter&utm_medium=social")
    anchored = article("anchor-1", "Why the lobbying commissioner is looking at pipelines",
                       "https://www.cbc.ca/news/politics/lobbying-review-1.7311234/#comments")
    results = deduper.classify([cbc], now=NOW) + deduper.classify([shared, anchored], now=NOW)
    assert [r.verdict for r in results] == [Verdict.NEW, Verdict.DUPLICATE, Verdict.DUPLICATE]
    assert results[1].other == cbc.id
    assert results[2].other == cbc.id


def test_meaningful_query_parameters_keep_articles_apart(
    redis: Redis, make_settings: Callable[..., Settings]
) -> None:
    """URLs that differ by a real query parameter (not tracking) are different articles."""
    deduper = Deduper(redis, make_settings())
    one = article("q-1", "Registry update for the first week of September", "https://example.org/story?id=1")
    two = article("q-2", "Registry update for the second week of September", "https://example.org/story?id=2")
    assert [r.verdict for r in deduper.classify([one, two], now=NOW)] == [Verdict.NEW, Verdict.NEW]


def test_same_title_with_publisher_suffix_is_a_duplicate(
    redis: Redis, make_settings: Callable[..., Settings]
) -> None:
    """The Google News copy 'Title - Publisher' of a publisher's own item is a duplicate of that item."""
    deduper = Deduper(redis, make_settings())
    own = article("ledevoir-1", "Hydro-Québec ciblée par un nouveau mandat de lobbyisme",
                  "https://www.ledevoir.com/politique/quebec/812345/hydro-quebec-mandat-lobbyisme")
    google = article("gnews-1", "Hydro-Quebec ciblee par un nouveau mandat de lobbyisme - Le Devoir",
                     "https://news.google.com/rss/articles/CBMiXkFVX3lxTE9?oc=5", publisher="Le Devoir")
    first, second = deduper.classify([own], now=NOW) + deduper.classify([google], now=NOW)
    assert first.verdict is Verdict.NEW
    assert second.verdict is Verdict.DUPLICATE
    assert second.other == own.id


def test_different_titles_from_the_same_publisher_are_not_merged(
    redis: Redis, make_settings: Callable[..., Settings]
) -> None:
    """Two different headlines with the same ' - Publisher' suffix stay two articles."""
    deduper = Deduper(redis, make_settings())
    one = article("g-1", "Ottawa tightens the rules on lobbyist gifts - CBC News", "https://news.google.com/rss/a/1")
    two = article("g-2", "Senate committee studies the lobbying act - CBC News", "https://news.google.com/rss/a/2")
    assert [r.verdict for r in deduper.classify([one, two], now=NOW)] == [Verdict.NEW, Verdict.NEW]


def test_short_titles_are_not_merged(redis: Redis, make_settings: Callable[..., Settings]) -> None:
    """Titles under four words ('Breaking news') are too common to merge articles on."""
    deduper = Deduper(redis, make_settings())
    one = article("short-1", "Breaking news", "https://www.ctvnews.ca/politics/1")
    two = article("short-2", "Breaking news - CTV News", "https://news.google.com/rss/articles/short-2")
    three = article("short-3", "Question Period recap", "https://www.cpac.ca/episode/1")
    four = article("short-4", "Question Period recap", "https://www.cpac.ca/episode/2")
    verdicts = [r.verdict for r in deduper.classify([one, two, three, four], now=NOW)]
    assert verdicts == [Verdict.NEW] * 4


def test_news_keys_expire_after_news_ttl(redis: Redis, make_settings: Callable[..., Settings]) -> None:
    """Every key dedupe writes for news expires after LOBBYBOT_NEWS_TTL_DAYS days."""
    settings = make_settings(news_ttl_days=7)
    deduper = Deduper(redis, settings)
    item = article("ttl-1", "Grocery chains step up lobbying on food prices",
                   "https://lobbymonitor.example.org/2026/09/grocery-chains-lobbying")
    [result] = deduper.classify([item], now=NOW)
    assert result.verdict is Verdict.NEW
    keys = lobby_keys(redis, settings)
    assert f"{settings.redis_prefix}seen:{item.id}" in keys
    assert any(":news:url:" in key for key in keys)
    assert any(":news:title:" in key for key in keys)
    for key in keys:
        assert 7 * DAY - 60 <= redis.ttl(key) <= 7 * DAY, key


def test_registry_record_outside_retention_is_expired_and_leaves_no_key(
    redis: Redis, make_settings: Callable[..., Settings]
) -> None:
    """A registry record whose latest date is older than LOBBYBOT_RETENTION_DAYS is `expired` and not stored."""
    settings = make_settings(retention_days=730)
    deduper = Deduper(redis, settings)
    old = communication("100001", posted=NOW - timedelta(days=731))
    ended = Event(id="ocl:reg:700001-1", version="5", source="ocl", kind="registration", title="Ended",
                  published_at=NOW - timedelta(days=3000), end_date=NOW - timedelta(days=800), status="terminated")
    [first, second] = deduper.classify([old, ended], now=NOW)
    assert first.verdict is Verdict.EXPIRED
    assert second.verdict is Verdict.EXPIRED
    assert lobby_keys(redis, settings) == []


def test_registry_record_is_kept_until_it_leaves_retention(
    redis: Redis, make_settings: Callable[..., Settings]
) -> None:
    """A record inside the window is remembered exactly until its latest date leaves the window."""
    settings = make_settings(retention_days=730)
    deduper = Deduper(redis, settings)
    recent = communication("100002", posted=NOW - timedelta(days=700))
    [result] = deduper.classify([recent], now=NOW)
    assert result.verdict is Verdict.NEW
    assert result.ttl == 30 * DAY
    assert 30 * DAY - 60 <= redis.ttl(f"{settings.redis_prefix}seen:{recent.id}") <= 30 * DAY


def test_active_registration_never_expires(redis: Redis, make_settings: Callable[..., Settings]) -> None:
    """A registration still in force (no end date) is current however old its first posting, and kept forever."""
    settings = make_settings(retention_days=730)
    deduper = Deduper(redis, settings)
    active = Event(id="ocl:reg:781234-361234", version="9", source="ocl", kind="registration",
                   title="Amazon Web Services Canada", published_at=NOW - timedelta(days=3650), status="active")
    [result] = deduper.classify([active], now=NOW)
    assert result.verdict is Verdict.NEW
    assert result.ttl == 0
    assert redis.ttl(f"{settings.redis_prefix}seen:{active.id}") == -1


def test_concurrent_workers_classify_each_event_new_once(
    redis: Redis, redis_url: str, make_settings: Callable[..., Settings]
) -> None:
    """Eight workers classifying the same 200 events at the same moment see each one as new exactly once."""
    settings = make_settings()
    events = [communication(str(900000 + n)) for n in range(100)] + [
        article(f"race-{n}", f"Race article number {n} about lobbying rules", f"https://example.org/race/{n}")
        for n in range(100)
    ]
    workers = 8
    barrier = threading.Barrier(workers)
    verdicts: list[tuple[str, Verdict]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(seed: int) -> None:
        client = Redis.from_url(redis_url)
        try:
            deduper = Deduper(client, settings)
            mine = list(events)
            random.Random(seed).shuffle(mine)
            barrier.wait()
            for start in range(0, len(mine), 20):
                found = deduper.classify(mine[start:start + 20])
                with lock:
                    verdicts.extend((c.event.id, c.verdict) for c in found)
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(verdicts) == workers * len(events)
    new_per_id = Counter(event_id for event_id, verdict in verdicts if verdict is Verdict.NEW)
    assert new_per_id == Counter({event.id: 1 for event in events})
    assert Counter(verdict for _, verdict in verdicts)[Verdict.DUPLICATE] == (workers - 1) * len(events)

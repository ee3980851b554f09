"""Searches answered in Slack's ack run on a few threads; when they are all stuck on slow searches, a new search
is sent to the worker at once instead of waiting behind them."""

from __future__ import annotations

from redis import Redis

from bot.commands import Caller, parse
from bot.slack.commands import SEARCH_THREADS, _search_within, _SearchPool
from tests.records import sample_records
from workers.ingest import ingest

CALLER = Caller(channel="slack:T1/C1", user="slack:U1")


def test_a_search_is_answered_in_the_ack_while_a_thread_is_free(redis: Redis, make_settings) -> None:
    """With a free thread, the card comes back within the time allowed."""
    settings = make_settings()
    ingest(redis, settings, sample_records(), alert=False)
    reply = _search_within(_SearchPool(SEARCH_THREADS), redis, settings, CALLER, parse("amazon"), 5.0)
    assert reply is not None and reply.summary is not None and reply.summary.total > 0


def test_a_search_goes_to_the_worker_when_every_thread_is_busy(redis: Redis, make_settings) -> None:
    """When every search thread is taken, the search is not attempted in the ack (the caller acks "working…")."""
    settings = make_settings()
    ingest(redis, settings, sample_records(), alert=False)
    pool = _SearchPool(SEARCH_THREADS)
    for _ in range(SEARCH_THREADS):
        pool.slots.acquire()  # as if each thread were still running a search that ran out of time
    assert _search_within(pool, redis, settings, CALLER, parse("amazon"), 5.0) is None
    pool.slots.release()
    assert _search_within(pool, redis, settings, CALLER, parse("amazon"), 5.0) is not None

"""Benchmark: 100,000 events through dedupe against the real Redis, beside a pipelined SET rate.

    python bench/dedupe.py [--events N] [--url REDIS_URL]

Uses database 14 of the server (flushed before and after). Prints events/s for a first pass (all new) and a
second pass (all duplicates), and in the same run the rate of pipelined SETs of the same number of keys on the
same server, redis-benchmark style, so the ratio means something on a noisy machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta

from redis import Redis

from workers.connection import with_database
from workers.dedupe import Deduper
from workers.events import Event
from workers.settings import load_settings

BENCH_DB = 14


def synthetic(count: int) -> list[Event]:
    """Registry-like and news-like events, 1 in 4 news (news adds the cross-feed URL and title keys)."""
    start = datetime.now(UTC) - timedelta(days=300)
    events = []
    for i in range(count):
        if i % 4 == 0:
            events.append(Event(id=f"news:{i:016x}", version="1", source="news", kind="article",
                                title=f"Organisation {i % 997} lobbies ministry number {i}",
                                url=f"https://news.example/{i}?utm_source=rss", published_at=start))
        else:
            events.append(Event(id=f"ocl:comm:{i}", version=str(i), source="ocl", kind="communication",
                                title=f"Communication report {i}", published_at=start + timedelta(minutes=i)))
    return events


def pipelined_set_rate(redis: Redis, count: int) -> float:
    started = time.perf_counter()
    for first in range(0, count, 500):
        with redis.pipeline(transaction=False) as pipe:
            for i in range(first, min(first + 500, count)):
                pipe.set(f"bench:set:{i}", "1")
            pipe.execute()
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    url = with_database(args.url, BENCH_DB)
    redis = Redis.from_url(url)
    redis.flushdb()
    try:
        events = synthetic(args.events)
        deduper = Deduper(redis, load_settings(redis_url=url))
        rates = []
        for label in ("first pass (all new)", "second pass (all duplicate)"):
            started = time.perf_counter()
            for first in range(0, len(events), 10_000):
                deduper.classify(events[first:first + 10_000])
                print(f"  {label}: {min(first + 10_000, len(events)):,} events", file=sys.stderr)
            rates.append(len(events) / (time.perf_counter() - started))
        redis.flushdb()
        reference = pipelined_set_rate(redis, args.events)
    finally:
        redis.flushdb()
    print(f"dedupe, {args.events:,} events, new:        {rates[0]:>10,.0f} events/s")
    print(f"dedupe, {args.events:,} events, duplicates: {rates[1]:>10,.0f} events/s")
    print(f"reference: pipelined SET, same server:   {reference:>10,.0f} keys/s")
    print(f"ratio dedupe(new) / pipelined SET: {rates[0] / reference:.2f}")


if __name__ == "__main__":
    main()

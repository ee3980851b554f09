"""Benchmark of the search index: index N synthetic events, run 1,000 queries, report latency and memory.

    python bench/query.py                      # 1,000,000 events (several minutes)
    python bench/query.py --events 20000       # a quick try

Uses Redis DB 12 of `REDIS_URL` (default redis://127.0.0.1:6379), flushed at start and at the end. Events
have a realistic name distribution: a few huge organisations and a long Zipf tail, in-house lobbyists per
organisation, a few dozen institutions, thousands of officials, a mix of sources and kinds over two years.

Prints, beside the Redis PING round trip measured in the same run: indexing rate; query latency p50/p95/p99
(the `workers.query.search` call a chat adapter makes, summary included); Redis memory per indexed event
(INFO used_memory delta / events, i.e. postings + per-document records + id maps), and per event of the
EventStore JSON that ingest also keeps (MEMORY USAGE of a sample of 20,000). Targets: p99 ≤ 20 ms, ≤ 1.5 KB per event.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from redis import Redis

from workers.connection import with_database
from workers.events import Event, Official
from workers.index import SearchIndex
from workers.query import search
from workers.settings import load_settings
from workers.store import EventStore
from workers.terms import Term

DB = 12
BATCH = 2000
BIG = ["Amazon Web Services Canada, Inc.", "Hydro-Québec", "Bombardier Inc.", "Canadian Bankers Association",
       "Enbridge Inc.", "Rogers Communications Inc.", "BCE Inc.", "Suncor Energy Inc.", "Shopify Inc.",
       "Canadian Federation of Independent Business", "Desjardins Group", "Air Canada", "CN Rail", "Telus"]
SECTORS = ["Energy", "Mining", "Health", "Pharma", "Tech", "Foods", "Transport", "Capital", "Farms", "Logistics",
           "Aerospace", "Insurance", "Solutions", "Systems", "Resources", "Association", "Council", "Partners"]
SUFFIXES = ["Inc.", "Ltd.", "Ltée", "LLC", "ULC", "Corp.", "S.E.N.C.", "", "", ""]
INSTITUTIONS = ["Finance Canada", "Treasury Board of Canada Secretariat", "Privy Council Office",
                "Prime Minister's Office", "Innovation, Science and Economic Development Canada",
                "Natural Resources Canada", "Transport Canada", "Health Canada",
                "Environment and Climate Change Canada",
                "Global Affairs Canada", "Canadian Heritage", "Employment and Social Development Canada",
                "Agriculture and Agri-Food Canada", "Fisheries and Oceans Canada", "Public Safety Canada",
                "House of Commons", "Senate of Canada", "Ministère de l'Économie du Québec", "Hydro-Québec",
                "Canada Revenue Agency", "Infrastructure Canada", "Indigenous Services Canada",
                *[f"Regional Development Agency {i}" for i in range(30)]]
SUBJECTS = ["Energy", "Environment", "Taxation and Finance", "Industry", "Transportation", "Health",
            "Telecommunications", "Infrastructure", "International Trade", "Defence", "Agriculture", "Mining",
            "Science and Technology", "Employment and Training", "Intellectual Property", "Privacy and Access to "
            "Information", "Government Procurement", "Regional Development", "Aboriginal Affairs", "Housing",
            *[f"Subject {i}" for i in range(20)]]


def syllables(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(["ka", "lo", "vi", "tra", "mon", "ré", "zen", "qué", "bor", "dal", "fin", "sol",
                               "nor", "ter", "ax", "ly", "po", "gé", "ri", "us"]) for _ in range(n)).capitalize()


def cumulative(weights: list[float]) -> list[float]:
    return list(itertools.accumulate(weights))


class World:
    """The names events are drawn from, with Zipf weights."""

    def __init__(self, rng: random.Random, orgs: int = 20000) -> None:
        self.rng = rng
        self.orgs = BIG + [f"{syllables(rng, rng.randint(2, 3))} {rng.choice(SECTORS)} {rng.choice(SUFFIXES)}".strip()
                           for _ in range(orgs - len(BIG))]
        self.org_weights = cumulative([1 / (rank + 1) ** 1.05 for rank in range(len(self.orgs))])
        people = [f"{syllables(rng, 2)} {syllables(rng, 3)}" for _ in range(13000)]
        self.lobbyists = {org: rng.sample(people[:10000], rng.randint(1, 4)) for org in self.orgs}
        self.officials = people[10000:]
        self.official_weights = cumulative([1 / (rank + 1) ** 0.9 for rank in range(len(self.officials))])
        self.inst_weights = cumulative([1 / (rank + 1) ** 0.8 for rank in range(len(INSTITUTIONS))])
        self.vocabulary = [syllables(rng, rng.randint(2, 4)).lower() for _ in range(5000)]
        self.vocab_weights = cumulative([1 / (rank + 1) for rank in range(len(self.vocabulary))])

    def events(self, count: int, now: datetime) -> Iterator[Event]:
        rng = self.rng
        orgs = rng.choices(self.orgs, cum_weights=self.org_weights, k=count)
        for n, org in enumerate(orgs):
            roll = rng.random()
            source, kind = ("ocl", "communication") if roll < .55 else ("ocl", "registration") if roll < .65 else \
                ("clq", "mandate") if roll < .80 else ("lda", "filing") if roll < .90 else ("news", "article")
            when = now - timedelta(days=rng.uniform(0, 720))
            insts = tuple(set(rng.choices(INSTITUTIONS, cum_weights=self.inst_weights, k=rng.randint(1, 3))))
            subjects = tuple(set(rng.choices(SUBJECTS, k=rng.randint(1, 3))))
            words = " ".join(rng.choices(self.vocabulary, cum_weights=self.vocab_weights, k=12))
            if kind == "article":
                yield Event(id=f"news:{n:x}", version="1", source=source, kind=kind, published_at=when,
                            title=f"{org} {words[:60]}", summary=f"{words} {subjects[0]}",
                            url=f"https://news.example/{n:x}")
                continue
            officials = tuple(Official(name=name) for name in
                              set(rng.choices(self.officials, cum_weights=self.official_weights, k=rng.randint(0, 2))))
            yield Event(
                id=f"{source}:{kind}:{n}", version="1", source=source, kind=kind, occurred_at=when,
                published_at=when, title=f"{kind.capitalize()}: {org} with {insts[0]}", summary=words,
                organization=org, registrant=rng.choice(self.lobbyists[org]), lobbyists=tuple(self.lobbyists[org]),
                institutions=insts, officials=officials, subjects=subjects, status="active",
                url=f"https://lobbycanada.gc.ca/app/secure/ocl/lrs/do/cmmLgPblcVw?comlogId={n}",
            )

    def term(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < .55:
            name = rng.choices(self.orgs, cum_weights=self.org_weights)[0]
            variant = rng.random()
            if variant < .3:
                return name.lower().replace("-", " ")
            if variant < .5:
                return name.split()[0]
            return name.upper() if variant < .6 else name
        if roll < .7:
            return rng.choices(INSTITUTIONS, cum_weights=self.inst_weights)[0]
        if roll < .8:
            return rng.choice(SUBJECTS)
        if roll < .9:
            return rng.choices(self.officials, cum_weights=self.official_weights)[0]
        return rng.choices(self.vocabulary, cum_weights=self.vocab_weights)[0]


def used_memory(redis: Redis) -> int:
    return int(redis.info("memory")["used_memory"])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    url = with_database(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), DB)
    redis = Redis.from_url(url)
    settings = load_settings(redis_url=url, redis_prefix="bench:")
    redis.flushdb()
    try:
        return run(redis, settings, args)
    finally:
        redis.flushdb()


def run(redis: Redis, settings: object, args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    world = World(rng)
    now = datetime.now(UTC)
    index = SearchIndex(redis, "bench:")
    ping = []
    for _ in range(1000):
        start = time.perf_counter()
        redis.ping()
        ping.append(time.perf_counter() - start)

    before = used_memory(redis)
    started = time.perf_counter()
    batch: list[tuple[Event, int]] = []
    done = 0
    sample: list[Event] = []
    for event in world.events(args.events, now):
        batch.append((event, 0 if event.kind == "registration" else 730 * 86400))
        if len(sample) < 20000 and rng.random() < 20000 / args.events:
            sample.append(event)
        if len(batch) == BATCH:
            index.add(batch, now)
            done += len(batch)
            batch = []
            if done % 50000 == 0:
                rate = done / (time.perf_counter() - started)
                print(f"indexed {done:,} events ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    index.add(batch, now)
    elapsed = time.perf_counter() - started
    index_bytes = used_memory(redis) - before

    store = EventStore(redis, "bench:")
    store.save((event, 0) for event in sample)
    with redis.pipeline(transaction=False) as pipe:  # per key, so other clients of a shared server add no noise
        for event in sample:
            pipe.memory_usage(store.key(event.id), samples=0)
        store_bytes = sum(pipe.execute()) / max(1, len(sample))

    latencies, totals, first_time = [], [], []
    asked: set[tuple[str, ...]] = set()
    for n in range(args.queries):
        terms = [world.term() for _ in range(rng.choices([1, 2, 3], [60, 30, 10])[0])]
        meaning = tuple(sorted(Term.parse(term).key for term in terms))
        start = time.perf_counter()
        summary = search(redis, settings, terms, now=now)  # type: ignore[arg-type]
        latencies.append(time.perf_counter() - start)
        totals.append(summary.total)
        if meaning not in asked:  # computed from the index, not answered from the cache
            first_time.append(latencies[-1] * 1000)
            asked.add(meaning)
        if (n + 1) % 200 == 0:
            print(f"queried {n + 1}", file=sys.stderr, flush=True)

    ms = [value * 1000 for value in latencies]
    ping_ms = statistics.median(ping) * 1000
    print(f"events indexed:        {args.events:,} in {elapsed:,.1f} s ({args.events / elapsed:,.0f} events/s)")
    print(f"redis PING round trip: {ping_ms:.3f} ms (median of 1,000)")
    print(f"queries:               {len(ms):,} of 1-3 terms; matches median {statistics.median(totals):,.0f}, "
          f"max {max(totals):,}")
    for p in (50, 95, 99):
        value = percentile(ms, p)
        print(f"query p{p}:             {value:7.2f} ms  ({value / ping_ms:,.0f}× PING)")
    print(f"query max:             {max(ms):7.2f} ms")
    print(f"first-time queries:    {len(first_time):,} of {len(ms):,} (the rest repeat a question and are answered "
          "from the cache while the index is unchanged)")
    for p in (50, 95, 99):
        value = percentile(first_time, p)
        print(f"first-time p{p}:        {value:7.2f} ms  ({value / ping_ms:,.0f}× PING)")
    print(f"index memory:          {index_bytes / args.events:,.0f} B/event "
          f"(used_memory +{index_bytes / 2**20:,.1f} MiB for {args.events:,} events; target ≤ 1,536)")
    print(f"event store JSON:      {store_bytes:,.0f} B/event (sample of {len(sample):,}); "
          f"index + store: {index_bytes / args.events + store_bytes:,.0f} B/event")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: matching events to subscriptions, and the time from a poll to enqueued deliveries.

    python bench/fanout.py [--subscriptions N] [--events N] [--history N] [--url REDIS_URL]

Uses database 5 of the server (flushed before and after). First records a history of events silently (default
20,000: the registries' baseline, which subscriptions are made after, as in real use), then builds N
subscriptions (default 10,000) in about a tenth as many channels — mostly organisations (a fifth of them
"Canadian … Association"-style, a few the huge ones most records name), some institution-and-subject pairs and
topical keywords, 1 to 3 terms each, realtime or digest — and N events (default 100,000) shaped
like registry records and news. Prints:

- the matching rate of `workers.subscriptions.Matcher` (events/s, one matcher per poll of 1,000 events, as
  `workers.fanout` uses it), with the candidates it checked and the matches it found;
- the time from a poll to enqueued deliveries: `workers.ingest.ingest(..., alert=True)` on chunks of 1,000
  (dedupe → store → index → fan-out → RQ delivery jobs), median and 95th percentile per chunk, the share
  spent in fan-out, and the jobs and alerts it produced;
- beside them, the Redis PING round trip measured in the same run (median of 1,000), so the figures can be
  read as "so many round trips" on a noisy machine.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from rq import Queue

from workers import fanout
from workers.connection import with_database
from workers.events import Event
from workers.index import event_tokens
from workers.ingest import ingest
from workers.settings import load_settings
from workers.subscriptions import Matcher, Subscription, SubscriptionStore

BENCH_DB = 5
CHUNK = 1000

HUGE = ["Amazon Web Services Canada", "Hydro-Québec", "Bell Canada", "Rogers Communications",
        "Canadian Bankers Association", "Enbridge Inc.", "Suncor Energy", "Google Canada"]
SYLLABLES = ["ka", "lo", "ve", "tra", "nor", "vi", "sen", "ta", "ro", "mi", "den", "qua", "bel", "zo", "ar", "lux",
             "fen", "dor", "pi", "sol", "mar", "tek", "gra", "cor"]
SECTORS = ["Bankers", "Medical", "Nurses", "Pharmacists", "Manufacturers", "Exporters", "Chemistry", "Steel Producers",
           "Fuels", "Gas", "Electricity", "Water Works", "Dairy Farmers", "Cattlemen", "Grain Growers", "Seafood",
           "Trucking", "Airports", "Ports", "Railway", "Broadcasters", "Cable", "Wireless", "Film", "Music",
           "Publishers", "Retail", "Franchise", "Real Estate", "Home Builders", "Construction", "Cement",
           "Forest Products", "Prospectors", "Petroleum Producers", "Nuclear", "Renewable Energy", "Solar",
           "Wind Energy", "Battery", "Vehicle Manufacturers", "Aerospace", "Shipbuilding", "Generic Pharmaceutical",
           "Dental", "Veterinary", "Life and Health Insurance", "Credit Union", "Payments", "Venture Capital",
           "Pension", "Tourism", "Hotel", "Restaurant", "Beverage", "Brewers", "Spirits", "Cannabis",
           "Convenience Stores", "Grocery", "Food Processors", "Fertilizer", "Crop Protection", "Seed", "Pork",
           "Chicken", "Egg", "Turkey", "Universities", "Colleges", "Teachers", "Students", "Municipalities", "Police",
           "Firefighters", "Taxpayers", "Independent Business"]
BODY = ["Association", "Council", "Federation", "Institute", "Alliance", "Coalition"]
PROVINCES = ["Ontario", "Quebec", "Alberta", "British Columbia", "Manitoba", "Saskatchewan", "Nova Scotia",
             "New Brunswick"]
CORE = ["Energy", "Pharma", "Analytics", "Mining", "Foods", "Airlines", "Telecom", "Robotics", "Capital", "Health",
        "Logistics", "Forestry", "Steel", "Biotech", "Software", "Rail", "Dairy", "Insurance", "Hydrogen", "Media",
        "Technologies", "Resources", "Systems", "Holdings", "Pharmaceuticals", "Networks"]
FAMILY = ["Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin", "Gagné",
          "Smith", "Martin", "Brown", "Wilson", "Taylor", "Campbell", "Anderson", "Leblanc", "Pelletier", "Bélanger"]
SUFFIX = ["Inc.", "Ltd.", "Corporation", "Association", "Ltée", "Group", "Council", "Alliance", "", "Canada"]
INSTITUTIONS = [
    "Finance Canada", "Innovation, Science and Economic Development Canada", "Treasury Board of Canada Secretariat",
    "Privy Council Office", "Prime Minister's Office", "Health Canada", "Environment and Climate Change Canada",
    "Natural Resources Canada", "Transport Canada", "Global Affairs Canada", "Canadian Heritage",
    "Employment and Social Development Canada", "Agriculture and Agri-Food Canada", "Fisheries and Oceans Canada",
    "Public Safety Canada", "National Defence", "Canada Revenue Agency", "Immigration, Refugees and Citizenship "
    "Canada", "Infrastructure Canada", "Indigenous Services Canada", "Crown-Indigenous Relations",
    "Public Services and Procurement Canada", "Canadian Radio-television and Telecommunications Commission",
    "House of Commons", "Senate of Canada", "Bank of Canada", "Export Development Canada", "Statistics Canada",
    "Women and Gender Equality Canada", "Veterans Affairs Canada", "Justice Canada", "Shared Services Canada",
    "Canadian Food Inspection Agency", "Competition Bureau Canada", "Office of the Superintendent of Financial "
    "Institutions", "Canada Mortgage and Housing Corporation", "Western Economic Diversification Canada",
    "Canadian Nuclear Safety Commission", "Impact Assessment Agency of Canada", "Canada Border Services Agency",
]
SUBJECTS = ["Taxation and Finance", "Energy", "Environment", "Telecommunications", "Industry", "Health",
            "International Trade", "Transportation", "Agriculture", "Defence", "Employment and Training",
            "Intellectual Property", "Science and Technology", "Infrastructure", "Mining", "Fisheries",
            "Broadcasting", "Consumer Issues", "Financial Institutions", "Immigration", "Regional Development",
            "Government Procurement", "Privacy and Access to Information", "Climate", "Housing", "Indigenous Affairs",
            "Internal Trade", "Labour", "Small Business", "Research and Development"]
KEYWORDS = ["pipeline", "artificial intelligence", "digital services tax", "carbon pricing", "spectrum auction",
            "critical minerals", "open banking", "pharmacare", "clean fuel", "data centres", "small modular reactors",
            "supply management", "online streaming", "dental care", "softwood lumber", "electric vehicles",
            "interchange fees", "right to repair", "plastic packaging", "capital gains", "cybersecurity",
            "border measures", "rail service", "airport fees", "drug pricing", "broadband", "housing supply",
            "child care", "tariffs", "export controls", "foreign investment", "competition law", "privacy law",
            "greenhouse gas", "hydrogen strategy", "carbon capture", "grocery prices", "wildfire", "ports congestion",
            "news media"]


def organisations(rng: random.Random, count: int) -> list[str]:
    """Names shaped like the registries': a fifth "Canadian … Association" (so "canadian" is a very common word),
    some provincial bodies, and companies with distinctive brand names."""
    names: set[str] = set()
    while len(names) < count:
        roll = rng.random()
        if roll < 0.2:
            names.add(f"Canadian {rng.choice(SECTORS)} {rng.choice(BODY)}")
        elif roll < 0.3:
            names.add(f"{rng.choice(PROVINCES)} {rng.choice(SECTORS)} {rng.choice(BODY)}")
        else:
            brand = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
            names.add(" ".join(part for part in (brand, rng.choice(CORE), rng.choice(SUFFIX)) if part))
    return sorted(names)


def synthetic_events(rng: random.Random, count: int, orgs: list[str], first_id: int = 0) -> list[Event]:
    """Registry-shaped events: a quarter name one of the huge organisations, the rest a long Zipf-like tail."""
    tail_weights = [1 / (rank + 1) ** 0.7 for rank in range(len(orgs))]
    institution_weights = [1 / (rank + 1) ** 0.5 for rank in range(len(INSTITUTIONS))]
    start = datetime.now(UTC) - timedelta(days=300)
    picks = rng.choices(orgs, tail_weights, k=count)
    events = []
    for i in range(count):
        n = first_id + i
        organization = rng.choice(HUGE) if rng.random() < 0.25 else picks[i]
        institutions = tuple(dict.fromkeys(rng.choices(INSTITUTIONS, institution_weights, k=rng.randint(1, 3))))
        subjects = tuple(dict.fromkeys(rng.choices(SUBJECTS, k=rng.randint(1, 2))))
        when = start + timedelta(minutes=2 * i)
        kind_roll = rng.random()
        if kind_roll < 0.1:
            keyword = rng.choice(KEYWORDS)
            events.append(Event(id=f"news:{n:016x}", version="1", source="news", kind="article",
                                title=f"{organization} lobbies {institutions[0]} on {keyword}",
                                summary=f"The {subjects[0].lower()} file: {organization} met officials.",
                                url=f"https://news.example/{n}", published_at=when, occurred_at=when))
        elif kind_roll < 0.2:
            events.append(Event(id=f"ocl:registration:{n}", version="1", source="ocl", kind="registration",
                                title=f"{organization} registers to lobby {institutions[0]}", organization=organization,
                                institutions=institutions, subjects=subjects, published_at=when,
                                registrant=f"{rng.choice(FAMILY)} Public Affairs"))
        else:
            events.append(Event(id=f"ocl:communication:{n}", version="1", source="ocl", kind="communication",
                                title=f"{organization} met {institutions[0]}", organization=organization,
                                institutions=institutions, subjects=subjects, published_at=when, occurred_at=when,
                                lobbyists=(f"{rng.choice(FAMILY)} {rng.choice(FAMILY)}",)))
    return events


def synthetic_subscriptions(rng: random.Random, count: int, orgs: list[str]) -> list[Subscription]:
    """Mostly one organisation (a few the huge ones), some with an institution; institution-and-subject pairs;
    topical keywords; 1 to 3 terms; a fifth on digests, a tenth with quiet hours; ~10 per channel."""
    channels = [f"slack:T{n % 40:03d}/C{n:05d}" if n % 3 else f"discord:{1000 + n % 30}/{900000 + n}"
                for n in range(max(1, count // 10))]
    subs = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.7:
            terms = [rng.choice(HUGE) if rng.random() < 0.05 else rng.choice(orgs)]
            if rng.random() < 0.3:
                terms.append(rng.choice(INSTITUTIONS))
        elif roll < 0.9:
            terms = [rng.choice(INSTITUTIONS), rng.choice(SUBJECTS)]
            if rng.random() < 0.3:
                terms.append(rng.choice(HUGE))
        else:
            terms = [rng.choice(KEYWORDS)]
            if rng.random() < 0.5:
                terms.append(rng.choice(SUBJECTS))
        digest = rng.choices(["realtime", "daily", "weekly"], [80, 12, 8])[0]
        quiet = "22:00-07:00" if rng.random() < 0.1 else None
        subs.append(Subscription(channel=rng.choice(channels), terms=terms, digest=digest,  # type: ignore[arg-type]
                                 quiet=quiet))
    return subs


def candidates_per_event(redis: Redis, prefix: str, sample: list[Event]) -> float:
    """Mean number of subscriptions filed under an event's tokens: what the matcher checks in full."""
    total = 0
    for event in sample:
        with redis.pipeline(transaction=False) as pipe:
            for token in event_tokens(event):
                pipe.scard(f"{prefix}subs:token:{token}")
            total += sum(pipe.execute())
    return total / max(1, len(sample))


def ping_round_trip(redis: Redis, count: int = 1000) -> float:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        redis.ping()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def progress(label: str, done: int, total: int) -> None:
    if done == total or done % (total // 10 or 1) < CHUNK:
        print(f"  {label}: {done:,}/{total:,}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=20_000, help="events recorded silently before subscribing")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    url = with_database(args.url, BENCH_DB)
    redis = Redis.from_url(url)
    settings = load_settings(redis_url=url, alert_channel=None)
    rng = random.Random(args.seed)
    redis.flushdb()
    try:
        ping = ping_round_trip(redis)
        print(f"generating {args.subscriptions:,} subscriptions and {args.events:,} events…", file=sys.stderr)
        orgs = organisations(rng, 3000)
        history = synthetic_events(rng, args.history, orgs, first_id=args.events)
        events = synthetic_events(rng, args.events, orgs)
        for first in range(0, len(history), CHUNK):
            ingest(redis, settings, history[first:first + CHUNK], alert=False)
            progress("history recorded (silent baseline)", min(first + CHUNK, len(history)), len(history))
        store = SubscriptionStore(redis, settings.redis_prefix)
        started = time.perf_counter()
        for n, sub in enumerate(synthetic_subscriptions(rng, args.subscriptions, orgs), 1):
            store.add(sub, actor="bench")
            progress("subscriptions stored", n, args.subscriptions)
        subscribe_seconds = time.perf_counter() - started

        matched = 0
        started = time.perf_counter()
        for first in range(0, len(events), CHUNK):
            chunk = events[first:first + CHUNK]
            matched += sum(len(subs) for subs in Matcher(store).match(chunk))
            progress("events matched", first + len(chunk), len(events))
        match_seconds = time.perf_counter() - started
        candidates = candidates_per_event(redis, settings.redis_prefix, events[:CHUNK])

        in_fanout: list[float] = []
        real_fan_out = fanout.fan_out

        def timed_fan_out(*a: Any, **k: Any) -> int:
            begun = time.perf_counter()
            try:
                return real_fan_out(*a, **k)
            finally:
                in_fanout.append(time.perf_counter() - begun)

        fanout.fan_out = timed_fan_out
        latencies, alerted = [], 0
        started = time.perf_counter()
        for first in range(0, len(events), CHUNK):
            begun = time.perf_counter()
            alerted += ingest(redis, settings, events[first:first + CHUNK], alert=True).alerted
            latencies.append(time.perf_counter() - begun)
            progress("events polled", min(first + CHUNK, len(events)), len(events))
        poll_seconds = time.perf_counter() - started
        fanout.fan_out = real_fan_out
        jobs = Queue(fanout.DELIVER_QUEUE, connection=redis).count
        held = sum(redis.zcard(key) for key in redis.scan_iter(f"{settings.redis_prefix}held:[0-9]*"))
        ping_after = ping_round_trip(redis)
    finally:
        redis.flushdb()

    report(args, ping, ping_after, subscribe_seconds, match_seconds, matched, candidates, latencies, in_fanout,
           poll_seconds, alerted, jobs, held)


def report(args: argparse.Namespace, ping: float, ping_after: float, subscribe_seconds: float, match_seconds: float,
           matched: int, candidates: float, latencies: list[float], in_fanout: list[float], poll_seconds: float,
           alerted: int, jobs: int, held: int) -> None:
    ms: Callable[[float], str] = lambda seconds: f"{seconds * 1000:,.1f} ms"  # noqa: E731
    p95 = sorted(latencies)[max(0, int(len(latencies) * 0.95) - 1)]
    events, subs = args.events, args.subscriptions
    print(f"fan-out benchmark: {subs:,} subscriptions, {events:,} events, polls of {CHUNK:,}")
    print(f"reference: Redis PING round trip, median of 1,000:  {ping * 1e6:,.0f} µs "
          f"(after the run: {ping_after * 1e6:,.0f} µs)")
    print(f"subscribing:  {subs / subscribe_seconds:,.0f} subscriptions/s")
    print(f"matching:     {events / match_seconds:,.0f} events/s  ({matched:,} matches, "
          f"{matched / events:.2f} per event; {candidates:,.0f} candidates checked per event)")
    print(f"poll → enqueued deliveries, per poll of {CHUNK:,} events: median {ms(statistics.median(latencies))}, "
          f"p95 {ms(p95)}  (= {statistics.median(latencies) / ping:,.0f} PING round trips)")
    print(f"  of which fan-out: median {ms(statistics.median(in_fanout))} "
          f"({sum(in_fanout) / poll_seconds:.0%} of the time)")
    print(f"  whole run: {events / poll_seconds:,.0f} events/s; {alerted:,} alerts queued or held, "
          f"{jobs:,} delivery jobs enqueued, {held:,} alerts held for digests or quiet hours")


if __name__ == "__main__":
    main()

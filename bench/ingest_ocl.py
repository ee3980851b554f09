"""Benchmark: ingest a real-scale federal communications ZIP end to end (parse → dedupe → store → index).

    python bench/ingest_ocl.py [--reports 300000] [--url REDIS_URL]

Builds a ZIP in the real export format (300,000 reports, 600,000 official rows, both subject files, the code
list), then in a child process ingests it into database 10 of the server, or `--db N` (flushed before and after), and
reports seconds, rows/s, peak RSS and Redis memory added. In the same run it times a bare `csv.reader` pass over
the same ZIP (every member read once), the reference the ingest is compared with. Targets: ingest ≤ 6× the bare
pass; peak RSS ≤ 300 MB.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from redis import Redis

from workers.connection import with_database

BENCH_DB = 10  # default database; --db picks another on a shared server
PRIMARY = ["COMLOG_ID", "CLIENT_ORG_CORP_NUM", "EN_CLIENT_ORG_CORP_NM_AN", "FR_CLIENT_ORG_CORP_NM",
           "REGISTRANT_NUM_DECLARANT", "RGSTRNT_LAST_NM_DCLRNT", "RGSTRNT_1ST_NM_PRENOM_DCLRNT", "COMM_DATE",
           "REG_TYPE_ENR", "SUBMISSION_DATE_SOUMISSION", "POSTED_DATE_PUBLICATION", "PREV_COMLOG_ID_PRECEDNT"]
DPOH = ["COMLOG_ID", "DPOH_LAST_NM_TCPD", "DPOH_FIRST_NM_PRENOM_TCPD", "DPOH_TITLE_TITRE_TCPD",
        "BRANCH_UNIT_DIRECTION_SERVICE", "OTHER_INSTITUTION_AUTRE", "INSTITUTION"]
INSTITUTIONS = ["House of Commons", "Innovation, Science and Economic Development Canada (ISED)",
                "Treasury Board Of Canada Secretariat (TBS)", "Finance Canada (FIN)", "Shared Services Canada (SSC)",
                "Prime Minister's Office (PMO)", "Senate of Canada", "Health Canada (HC)", "Transport Canada (TC)"]
TITLES = ["Member of Parliament", "Deputy Minister", "Policy Advisor", "Chief of Staff", "Director General"]
LAST = ["Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Smith", "Brown", "Wilson", "Martin", "Lee", "Nguyen"]
FIRST = ["Julie", "Marc", "Sophie", "Pat", "Alex", "Chantal", "David", "Priya", "Jean", "Mei"]


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def build_zip(path: Path, reports: int, seed: int = 7) -> int:
    """Write a communications export; return the number of CSV rows in it."""
    rng = random.Random(seed)
    orgs = [f"Organisation {i} Inc." for i in range(5000)]
    weights = [1 / (i + 1) for i in range(len(orgs))]  # a few huge organisations, a long tail
    clients = rng.choices(range(len(orgs)), weights=weights, k=reports)
    primary, dpoh, old_subjects, new_subjects = [], [], [], []
    first_id = 600_000
    for n in range(reports):
        comlog = str(first_id + n)
        org = orgs[clients[n]]
        day = f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}"
        prev = str(first_id + n - 1) if n and rng.random() < 0.02 else "null"
        primary.append([comlog, str(300000 + clients[n]), org, "null" if n % 3 else org.replace("Inc.", "Ltée"),
                        str(777000 + n % 900), rng.choice(LAST), rng.choice(FIRST), day, rng.choice("123"), day,
                        day, prev])
        for _ in range(2):
            dpoh.append([comlog, rng.choice(LAST), rng.choice(FIRST), rng.choice(TITLES), "null", "null",
                         rng.choice(INSTITUTIONS)])
        codes = rng.sample(range(1, 55), 2)
        if n % 2:
            old_subjects.append([comlog, f"SMT-{codes[0]}", "null"])
        else:
            new_subjects.append([comlog, ", ".join(f"SMT-{c}" for c in codes), "Cloud procurement"])
    codes_rows = [[f"SMT-{i}", f"Subject {i}", f"Objet {i}"] for i in range(1, 55)]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Communication_PrimaryExport.csv", _csv(PRIMARY, primary))
        archive.writestr("Communication_DpohExport.csv", _csv(DPOH, dpoh))
        archive.writestr("Communication_SubjectMattersExport.csv",
                         _csv(["COMLOG_ID", "SUBJECT_CODE_OBJET", "CUSTOM_SUBJ_OBJET_PERSO"], old_subjects))
        archive.writestr("Communication_SubjectMatterDetailsExport.csv",
                         _csv(["COMLOG_ID", "SUBJECT_CODE_OBJET", "DESCRIPTION"], new_subjects))
        archive.writestr("Codes_SubjectMatterTypesExport.csv",
                         _csv(["SUBJECT_CODE_OBJET", "SMT_EN_DESC", "SMT_FR_DESC"], codes_rows))
    return len(primary) + len(dpoh) + len(old_subjects) + len(new_subjects) + len(codes_rows)


def bare_pass(path: Path) -> float:
    """Seconds to read every row of every member with csv.reader (the reference)."""
    started = time.perf_counter()
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            with archive.open(name) as raw:
                for _ in csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline="")):
                    pass
    return time.perf_counter() - started


def peak_rss_mb() -> float:
    """This process's own peak RSS. Not `ru_maxrss`: on Linux that keeps the high-water mark of the parent's
    memory image the child was forked from (the 400 MB that built the export), even across exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ingest_child(path: Path, url: str) -> None:
    """Run in a child process so its peak RSS is the ingest's alone; prints one JSON line."""
    from workers.ingest import ingest_all
    from workers.settings import load_settings
    from workers.sources.ocl import OclSource

    settings = load_settings(redis_url=url, retention_days=3650)
    redis = Redis.from_url(url)
    source = OclSource(settings)
    started = time.perf_counter()

    def progress(done: int) -> None:
        if done % 50_000 == 0:
            print(f"  ingest: {done:,} reports, {time.perf_counter() - started:.0f} s", file=sys.stderr)

    report = ingest_all(redis, settings, source.load(path), alert=False, progress=progress)
    seconds = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "counts": dict(report.counts),
                      "skipped": source.skipped}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=300_000)
    parser.add_argument("--url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--db", type=int, default=BENCH_DB, help=f"Redis database to use (default {BENCH_DB})")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = with_database(args.url, args.db)
    if args.child:
        ingest_child(args.child, url)
        return
    redis = Redis.from_url(url)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "communications_ocl_cal.zip"
        print(f"building a {args.reports:,}-report export…", file=sys.stderr)
        rows = build_zip(path, args.reports)
        reference = bare_pass(path)
        redis.flushdb()
        before = int(redis.info("memory")["used_memory"])
        child = subprocess.run([sys.executable, __file__, "--child", str(path), "--url", args.url,
                                "--db", str(args.db)],
                               stdout=subprocess.PIPE, text=True, check=True)
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        added = int(redis.info("memory")["used_memory"]) - before
        redis.flushdb()
    seconds = figures["seconds"]
    print(f"export: {args.reports:,} reports, {rows:,} CSV rows, {path.name}")
    print(f"ingest (parse + dedupe + store + index): {seconds:8.1f} s  {rows / seconds:>10,.0f} rows/s  "
          f"{args.reports / seconds:>8,.0f} reports/s  counts {figures['counts']}")
    print(f"reference: bare csv.reader pass over the ZIP: {reference:8.1f} s  {rows / reference:>10,.0f} rows/s")
    print(f"ratio ingest / bare pass: {seconds / reference:.1f}x (target <= 6x)")
    print(f"peak RSS of the ingest: {figures['peak_mb']:.0f} MB (target <= 300 MB)")
    print(f"Redis memory added: {added / 1e6:.0f} MB, {added / args.reports:,.0f} bytes per report")


if __name__ == "__main__":
    main()

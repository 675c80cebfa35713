"""Bulk `post` throughput, by hand: python -m bench.post_bench [--entries N] [--db URL]

Generates N deposit/trade entries over 10,000 customers, then posts them as one batch
through the real service (parse, check every invariant, write), on the COPY path and on the
plain INSERT path, each into a fresh database. Without --db it starts a throwaway PostgreSQL
cluster from the local binaries (as tests/pgserver.py does). Prints postings/s per stage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from ledger import service
from ledger.storage.posting import post_batch
from tests.helpers import CHART


def _entries(count: int, path: Path) -> int:
    rng = random.Random(7)
    postings = 0
    with path.open("w") as out:
        for n in range(count):
            # The first 10,000 entries fund every customer, so that later trades can pay.
            customer = f"c-{n}" if n < 10_000 else f"c-{rng.randrange(10_000)}"
            if n < 10_000 or n % 2:
                item = {"key": f"b-{n}", "type": "deposit", "effective_at": "2025-11-25T09:00:00Z",
                        "lines": [{"debit": "custody:customer:trust:JPY",
                                   "credit": f"customer:{customer}:JPY", "amount": "100000"}]}
                postings += 2
            else:
                other = f"c-{(int(customer[2:]) + 1 + rng.randrange(9_999)) % 10_000}"
                item = {"key": f"b-{n}", "type": "trade", "effective_at": "2025-11-25T10:00:00Z",
                        "lines": [{"debit": f"customer:{customer}:JPY",
                                   "credit": f"customer:{other}:JPY", "amount": "1"},
                                  {"debit": f"customer:{customer}:JPY",
                                   "credit": "revenue:fees:JPY", "amount": "1"}]}
                postings += 4
            out.write(json.dumps(item) + "\n")
    return postings


def _fresh(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def run(admin_url: str, count: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="segledger-bench-"))
    entries_path, chart_path = work / "batch.jsonl", work / "chart.json"
    chart_path.write_text(json.dumps(CHART))
    postings = _entries(count, entries_path)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"batch: {count} entries, {postings} postings")
    for use_copy in (True, False):
        engine = service.init(_fresh(admin_url, f"bench_{int(use_copy)}"))
        service.load_chart_file(engine, str(chart_path))
        started = time.perf_counter()
        drafts, digest = service.read_entry_file(str(entries_path))
        parsed = time.perf_counter()
        result = post_batch(engine, drafts, source="bench", sha256=digest, use_copy=use_copy)
        done = time.perf_counter()
        assert result.postings == postings
        print(f"{'COPY ' if use_copy else 'plain'}: parse {parsed - started:.1f} s, "
              f"check+write {done - parsed:.1f} s, total {done - started:.1f} s = "
              f"{postings / (done - started):,.0f} postings/s "
              f"({postings / (done - parsed):,.0f}/s after parsing)")
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--db", help="admin URL of a PostgreSQL that may CREATE DATABASE")
    args = parser.parse_args()
    if args.db:
        run(args.db, args.entries)
        return
    from tests.pgserver import local_cluster

    with local_cluster() as url:
        run(url, args.entries)


if __name__ == "__main__":
    main()

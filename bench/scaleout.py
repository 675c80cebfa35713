"""Scale-out, measured: concurrent `segledger post` processes on disjoint accounts.

Each writer posts its own file of deposits to customers no other writer touches, into its
own custody account, in one of two layouts:
- `same-asset`: every writer posts JPY. A batch locks the asset's coverage row (segregation
  is a property of the asset as a whole, and a breach must open and close in order), so
  batches of one asset take turns however many writers there are;
- `own-asset`: writer k posts asset k (JPY, BTC, ETH, USDC): nothing is shared but the server.
The figure is total postings over the wall time from the first start to the last finish.

python -m bench.scaleout [--entries N] [--writers 1,2,4] [--db ADMIN_URL]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import cluster
from bench.generator import ASSETS, SPECS, customer, hot, stamp, trust, write_chart
from bench.generator import START as T0
from bench.measure import Measured, run
from ledger import service
from ledger.money import format_amount

LAYOUTS = ("same-asset", "own-asset")


def _custody(asset: str, writer: int) -> str:
    return trust(writer) if asset == "JPY" else hot(asset, writer)


def write_batch(path: Path, writer: int, asset: str, entries: int) -> int:
    """Deposits of `asset` to customers only this writer has: returns the posting count."""
    amount = format_amount(SPECS[asset].deposit[0], SPECS[asset].scale)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for n in range(entries):
            out.write(json.dumps({
                "key": f"w{writer}-{asset}-{n}", "type": "deposit", "effective_at": stamp(T0),
                "lines": [{"debit": _custody(asset, writer),
                           "credit": customer(writer * 10_000_000 + n, asset),
                           "amount": amount}]}, separators=(",", ":")) + "\n")
    return 2 * entries


def measure(admin_url: str, work: Path, entries: int, writers: list[int]) -> list[dict[str, Any]]:
    chart = write_chart(work / "chart.json")
    results = []
    for layout in LAYOUTS:
        for count in writers:
            if layout == "own-asset" and count > len(ASSETS):
                continue
            url = cluster.fresh_database(admin_url, f"segledger_bench_scale_{count}")
            engine = service.init(url)
            service.load_chart_file(engine, str(chart))
            engine.dispose()
            files, postings = [], 0
            for writer in range(count):
                asset = "JPY" if layout == "same-asset" else ASSETS[writer].code
                path = work / f"{layout}-{count}-{writer}.jsonl"
                postings += write_batch(path, writer, asset, entries // count)
                files.append(path)
            started = time.perf_counter()
            measured = _concurrently(url, files)
            seconds = time.perf_counter() - started
            failed = [m.tail() for m in measured if m.returncode != 0]
            if failed:
                raise RuntimeError(f"{layout}, {count} writers: {failed[0]}")
            cluster.drop_database(admin_url, f"segledger_bench_scale_{count}")
            results.append({"layout": layout, "writers": count, "postings": postings,
                            "seconds": round(seconds, 3),
                            "postings_per_s": round(postings / seconds),
                            "slowest_writer_s": round(max(m.seconds for m in measured), 3)})
    return results


def _concurrently(url: str, files: list[Path]) -> list[Measured]:
    from concurrent.futures import ThreadPoolExecutor

    command = [sys.executable, "-m", "segledger", "--db", url, "post"]
    with ThreadPoolExecutor(len(files)) as pool:
        return list(pool.map(lambda path: run([*command, str(path)], timeout=3_600), files))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout")
    parser.add_argument("--entries", type=int, default=100_000, help="in all, split among writers")
    parser.add_argument("--writers", default="1,2,4")
    parser.add_argument("--db", help="admin URL of a PostgreSQL that may CREATE DATABASE")
    parser.add_argument("--json", help="write the results there too")
    args = parser.parse_args(argv)
    writers = [int(n) for n in args.writers.split(",")]
    work = Path(__import__("tempfile").mkdtemp(prefix="segledger-bench-scale-"))
    if args.db:
        results = measure(args.db, work, args.entries, writers)
    else:
        with cluster.durable_cluster() as url:
            results = measure(url, work, args.entries, writers)
    print(f"{'layout':<11} {'writers':>7} {'postings':>9} {'seconds':>8} {'postings/s':>11}")
    for r in results:
        print(f"{r['layout']:<11} {r['writers']:>7} {r['postings']:>9,} {r['seconds']:>8.1f} "
              f"{r['postings_per_s']:>11,}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

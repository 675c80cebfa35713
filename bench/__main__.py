"""segledger's benchmark: python -m bench [--full | --size NAME] [--only NAME] [--db URL]
[--json PATH].

Generates a synthetic exchange from a seed (bench.generator), starts a throwaway PostgreSQL on
disk with fsync on (bench.cluster) unless --db names a server that may CREATE DATABASE, and
runs every scenario of issue 11 (bench.scenarios): the raw COPY baseline, `post` on the COPY
and INSERT paths and again on a filled ledger, SQLite, a past balance with a long history, a
trial balance at a past time, `reconcile run` and `report segregation`. Prints a table with
the machine's description; --json writes the same figures as JSON.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import ExitStack
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench import measure
from bench.cluster import durable_cluster
from bench.context import SIZES, Run, Skipped
from bench.dataset import DEFAULT_SEED
from bench.machine import describe_machine, describe_postgres
from bench.measure import StepFailed
from bench.report import table, write_json
from bench.scenarios import POSTGRES_FREE, SCENARIOS


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="default",
                        help="default: a few minutes on 2 cores; full: issue 11's sizes; tiny: "
                        "seconds, for tests")
    parser.add_argument("--full", action="store_true", help="the same as --size full")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help=f"run only this scenario (repeatable, or comma-separated): "
                        f"{', '.join(SCENARIOS)}")
    parser.add_argument("--db", help="admin URL of a PostgreSQL server that may CREATE DATABASE "
                        "(default: a throwaway cluster from the local binaries, on disk)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    parser.add_argument("--customers", type=int, help="override the size's customers")
    parser.add_argument("--entries", type=int, help="override the size's entries per batch")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--breaks", type=int, default=3,
                        help="breaks planted in the reconciliation evidence (default 3)")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds any one measured process may take (default 3600)")
    parser.add_argument("--work", type=Path, help="keep the generated files in this folder")
    parser.add_argument("--data-dir", help="parent folder of the throwaway cluster (on disk)")
    args = parser.parse_args(argv)
    if args.full:
        args.size = "full"
    names = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    args.names = [name for name in SCENARIOS if name in names] if names else list(SCENARIOS)
    if args.db:  # psycopg, psql and segledger all read a plain postgresql:// URL
        args.db = make_url(args.db).set(drivername="postgresql").render_as_string(
            hide_password=False)
    return args


def _shown(argv: list[str]) -> list[str]:
    """The command as run, without the URL of --db (it may hold a password)."""
    shown = []
    for before, arg in zip(["", *argv], argv, strict=False):
        shown.append("URL" if before == "--db" else
                     "--db=URL" if arg.startswith("--db=") else arg)
    return ["python", "-m", "bench", *shown]


def _warnings(postgres: dict[str, Any] | None) -> list[str]:
    """What makes the PostgreSQL figures unlike a production server's."""
    if postgres is None:
        return []
    found = [f"{name}={postgres['settings'].get(name)}: writes are not durable"
             for name in ("fsync", "synchronous_commit", "full_page_writes")
             if postgres["settings"].get(name) not in (None, "on")]
    if "RAM" in str(postgres["disk"].get("kind")):
        found.append("the data directory is in RAM: no disk write is measured")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    size = SIZES[args.size]
    if args.customers:
        size = replace(size, customers=args.customers, sqlite_customers=args.customers)
    if args.entries:
        size = replace(size, entries=args.entries, sqlite_entries=args.entries)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    with ExitStack() as stack:
        if args.work:
            args.work.mkdir(parents=True, exist_ok=True)
            work = args.work
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="segledger-bench-")))
        admin_url, why, server = None, "", ""
        if any(name not in POSTGRES_FREE for name in args.names):
            if args.db:
                admin_url, server = args.db, "the server of --db"
            else:
                try:
                    admin_url = stack.enter_context(durable_cluster(args.data_dir))
                    server = "a throwaway cluster on disk, started for this run"
                except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
                    why = f"no PostgreSQL: {error} (give --db URL)"
        run = Run(work=work, size=size, seed=args.seed, breaks=args.breaks,
                  timeout=args.timeout, admin_url=admin_url, no_postgres=why)
        document: dict[str, Any] = {
            "benchmark": "segledger bench (issue 11)",
            "command": _shown(sys.argv[1:] if argv is None else argv),
            "started_at": started_at.isoformat(timespec="seconds"), "seed": args.seed,
            "size": asdict(size), "machine": describe_machine(), "postgres": None,
            "scenarios": {}}
        if admin_url:
            document["postgres"] = {**describe_postgres(admin_url), "server": server}
        document["warnings"] = _warnings(document["postgres"])
        # What every measured command pays before it starts working: subtract it by eye.
        document["command_start_seconds"] = round(measure.run(
            [sys.executable, "-m", "segledger", "--version"], timeout=60).seconds, 2)
        try:
            for number, name in enumerate(args.names, start=1):
                print(f"[{number}/{len(args.names)}] {name} …", file=sys.stderr, flush=True)
                step = time.perf_counter()
                result = _scenario(run, name)
                run.results[name] = document["scenarios"][name] = result
                print(f"    done in {time.perf_counter() - step:.1f} s", file=sys.stderr,
                      flush=True)
        finally:
            run.drop_all()
        document["datasets"] = run.generated
        document["total_seconds"] = round(time.perf_counter() - started, 1)
        print(table(document))
        if args.json:
            write_json(args.json, document)
    failed = any("error" in result for result in document["scenarios"].values())
    return 1 if failed else 0


def _scenario(run: Run, name: str) -> dict[str, Any]:
    try:
        return SCENARIOS[name](run)
    except Skipped as why:
        return {"skipped": str(why)}
    except StepFailed as error:
        return {"error": str(error)}
    except Exception as error:  # a failed scenario is reported; the others still run
        traceback.print_exc()
        return {"error": f"{type(error).__name__}: {error}"}


if __name__ == "__main__":
    sys.exit(main())

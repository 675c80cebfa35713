"""Bulk `post` throughput, by hand: python -m bench.post_bench [--entries N] [--db URL]

Kept for the command it always was; it now runs the package's own scenarios (see `python -m
bench --help`): the raw COPY baseline, then one batch of N entries posted on the COPY path and
on the plain INSERT path, each into a fresh database of a durable PostgreSQL (a throwaway
cluster on disk with fsync on, unless --db names a server).
"""

from __future__ import annotations

import argparse
import sys

from bench.__main__ import main as bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.post_bench")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--db", help="admin URL of a PostgreSQL that may CREATE DATABASE")
    args = parser.parse_args(argv)
    forwarded = ["--only", "baseline,post_copy,post_insert", "--entries", str(args.entries),
                 "--customers", str(args.customers)]
    return bench([*forwarded, *(["--db", args.db] if args.db else [])])


if __name__ == "__main__":
    sys.exit(main())

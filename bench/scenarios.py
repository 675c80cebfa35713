"""The scenarios of issue 11, one function each; every figure is measured in this run.

Each returns a flat dict of figures (seconds, rates, peak RSS of the measured process, sizes).
Posting goes through the real command line (`segledger post FILE` in a process of its own), so
reading and parsing the file is included, as a user would see it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench import cluster
from bench.context import Run, checkpoint, post
from bench.measure import Measured, StepFailed, segledger, worker


def _rate(count: int, seconds: float) -> int:
    return round(count / seconds) if seconds > 0 else 0


def _ratios(run: Run, postings_per_s: int) -> dict[str, float]:
    """The posting rate against the raw COPY rates measured in this run (if measured)."""
    raw = run.results.get("baseline", {})
    found = {}
    for method in ("psycopg", "psql"):
        rate = raw.get(f"{method}_rows_per_s")
        if rate:
            found[f"ratio_to_{method}_copy"] = round(postings_per_s / rate, 4)
    return found


def _posted(run: Run | None, measured: Measured, entries: int, postings: int) -> dict[str, Any]:
    """A post's figures; with `run`, its ratios to the raw COPY of this run."""
    rate = _rate(postings, measured.seconds)
    return {"entries": entries, "postings": postings, "seconds": round(measured.seconds, 2),
            "postings_per_s": rate, "peak_rss_mb": round(measured.peak_rss_mb, 1),
            **(_ratios(run, rate) if run else {})}


def baseline(run: Run) -> dict[str, Any]:
    """Raw COPY of batch 1's posting rows into an unindexed table: psycopg and psql."""
    url = cluster.fresh_database(run.postgres(), "segledger_bench_raw")
    run.created.add("segledger_bench_raw")
    with tempfile.TemporaryDirectory(prefix="segledger-bench-raw-", dir=run.work) as scratch:
        result, _ = worker("baseline", run.timeout, url=url,
                           batch=run.dataset().batches[0].path, psql=cluster.binary("psql"),
                           scratch=scratch)
    return result


def post_copy(run: Run) -> dict[str, Any]:
    """Batch 1 on a new PostgreSQL database: `segledger post` (the COPY path, its default)."""
    if run.main_posted is not None:  # built already by another scenario: start again
        cluster.drop_database(run.postgres(), "segledger_bench_main")
        run.main_posted = None
    run.main_db(0)
    measured = run.post_main(1)
    batch = run.dataset().batches[0]
    return {**_posted(run, measured, batch.entries, batch.postings),
            "customers": run.dataset().customers}


def post_insert(run: Run) -> dict[str, Any]:
    """Batch 1 on a new PostgreSQL database: `segledger post --no-copy` (plain INSERTs)."""
    dataset = run.dataset()
    url = run.fresh("insert", dataset.chart)
    measured = post(url, dataset.batches[0].path, run.timeout, "--no-copy")
    cluster.drop_database(run.postgres(), "segledger_bench_insert")
    return _posted(run, measured, dataset.batches[0].entries, dataset.batches[0].postings)


def post_again(run: Run) -> dict[str, Any]:
    """Batches 2, 3, … on the database that holds batch 1: each should take about as long as
    the first (psycopg's prepared statements once made later batches stall)."""
    dataset = run.dataset()
    run.main_db(1)
    result: dict[str, Any] = {}
    first = run.batch_seconds[1]
    result["batch_1_seconds"] = round(first, 2)
    result["batch_1_postings_per_s"] = _rate(dataset.batches[0].postings, first)
    for number in range(2, len(dataset.batches) + 1):
        measured = run.post_main(number)
        batch = dataset.batches[number - 1]
        result[f"batch_{number}_seconds"] = round(measured.seconds, 2)
        result[f"batch_{number}_postings_per_s"] = _rate(batch.postings, measured.seconds)
        result[f"batch_{number}_vs_batch_1"] = round(measured.seconds / first, 2)
        result[f"batch_{number}_peak_rss_mb"] = round(measured.peak_rss_mb, 1)
    result["postings_in_ledger"] = dataset.postings
    return result


def sqlite(run: Run) -> dict[str, Any]:
    """Batch 1 of a smaller exchange into a new SQLite file (the embedded path)."""
    dataset = run.sqlite_dataset()
    path = run.work / "sqlite" / "ledger.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    from ledger import service

    service.load_chart_file(service.init(url), dataset.chart)
    measured = post(url, dataset.batches[0].path, run.timeout)
    return {**_posted(None, measured, dataset.batches[0].entries, dataset.batches[0].postings),
            "customers": dataset.customers, "file_mb": round(path.stat().st_size / 1e6, 1)}


def past_balance(run: Run) -> dict[str, Any]:
    """One hot wallet's balance at random past times, with a long history behind it."""
    history = run.history()
    url = run.fresh("history", history.chart)
    posting_seconds = 0.0
    for part in history.files:
        posting_seconds += post(url, part.path, run.timeout).seconds
    checkpoint(run.postgres())
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")  # as autovacuum would have, long before a read
    result, measured = worker("past_balance", run.timeout, url=url, account=history.account,
                              first_at=history.first_at, last_at=history.last_at,
                              times=run.size.balance_calls, seed=run.seed,
                              final_balance=history.balance)
    postings = sum(part.postings for part in history.files)
    return {**result, "postings_on_account": postings // 2, "postings_in_ledger": postings,
            "setup_post_postings_per_s": _rate(postings, posting_seconds),
            "peak_rss_mb": round(measured.peak_rss_mb, 1)}


def trial_balance(run: Run) -> dict[str, Any]:
    """Every account at a past time: the service call, and `segledger balances` as a table."""
    dataset = run.dataset()
    url = run.main_db(len(dataset.batches))
    result, measured = worker("trial_balance", run.timeout, url=url, as_of=dataset.past_as_of)
    with tempfile.TemporaryDirectory(prefix="segledger-bench-tb-", dir=run.work) as scratch:
        table = segledger(url, "balances", "--as-of", dataset.past_as_of, timeout=run.timeout,
                          stdout=Path(scratch) / "balances.txt")
    if table.returncode != 0:
        raise StepFailed("segledger balances", table)
    return {"as_of": dataset.past_as_of, "accounts": result["accounts"],
            "service_seconds": result["seconds"], "service_peak_rss_mb": round(measured.peak_rss_mb, 1),
            "command_table_seconds": round(table.seconds, 2),
            "command_peak_rss_mb": round(table.peak_rss_mb, 1)}


def _evidence_args(dataset: Any) -> list[str]:
    return [arg for path in dataset.evidence for arg in ("--evidence", path)]


def reconcile(run: Run) -> dict[str, Any]:
    """`segledger reconcile run` at the last daily close with the generated evidence."""
    dataset = run.dataset()
    url = run.main_db(len(dataset.batches))
    checkpoint(run.postgres())
    with tempfile.TemporaryDirectory(prefix="segledger-bench-rec-", dir=run.work) as scratch:
        out = Path(scratch) / "run.json"
        measured = segledger(url, "reconcile", "run", "--as-of", dataset.as_of,
                             *_evidence_args(dataset), "--prices", dataset.prices,
                             "--format", "json", timeout=run.timeout, stdout=out)
        if measured.returncode not in (0, 1):  # 1: breaks found, which is a finding
            raise StepFailed("segledger reconcile run", measured)
        document = json.loads(out.read_text())
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT octet_length(result), (SELECT coalesce(sum(size_bytes), 0) FROM recon_evidence"
            " e WHERE e.run_seq = r.seq) FROM recon_runs r WHERE run_id = %s",
            [document["run_id"]]).fetchone()
    assert row is not None
    unmatched = sum(len(m["unmatched_ledger"]) for m in document["matching"].values())
    return {"seconds": round(measured.seconds, 2), "peak_rss_mb": round(measured.peak_rss_mb, 1),
            "exit": measured.returncode, "status": document["status"],
            "breaks": len(document["breaks"]), "planted_breaks": len(dataset.planted),
            "failed_checks": sum(c["status"] == "fail" for c in document["checks"]),
            "custody_accounts": len(document["accounts"]),
            "unmatched_ledger_items": unmatched, "stored_result_bytes": int(row[0]),
            "stored_evidence_bytes": int(row[1]), "customers": dataset.customers,
            "postings_in_ledger": dataset.postings}


def segregation(run: Run) -> dict[str, Any]:
    """`segledger report segregation` at the last daily close."""
    dataset = run.dataset()
    url = run.main_db(len(dataset.batches))
    with tempfile.TemporaryDirectory(prefix="segledger-bench-seg-", dir=run.work) as scratch:
        out = Path(scratch) / "segregation.json"
        measured = segledger(url, "report", "segregation", "--as-of", dataset.as_of,
                             "--prices", dataset.prices, "--format", "json",
                             timeout=run.timeout, stdout=out)
        if measured.returncode not in (0, 1):
            raise StepFailed("segledger report segregation", measured)
        document = json.loads(out.read_text())
    return {"seconds": round(measured.seconds, 2), "peak_rss_mb": round(measured.peak_rss_mb, 1),
            "exit": measured.returncode, "failed_checks": document["failed"],
            "customers": dataset.customers, "postings_in_ledger": dataset.postings}


# In the order a full run takes them: the baseline first, so that every post has its ratio.
SCENARIOS: dict[str, Callable[[Run], dict[str, Any]]] = {
    "baseline": baseline,
    "post_copy": post_copy,
    "post_insert": post_insert,
    "post_again": post_again,
    "sqlite": sqlite,
    "past_balance": past_balance,
    "trial_balance": trial_balance,
    "reconcile": reconcile,
    "segregation": segregation,
}
POSTGRES_FREE = frozenset({"sqlite"})

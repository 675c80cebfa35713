"""What the scenarios of one benchmark run share: the sizes, the generated files, the server,
and the databases built so far (a scenario run alone builds what it needs first)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench import cluster
from bench.dataset import Dataset, History, generate, write_history
from bench.measure import Measured, StepFailed, segledger
from ledger import service


@dataclass(frozen=True)
class Size:
    name: str
    customers: int
    entries: int  # per batch
    batches: int
    sqlite_customers: int
    sqlite_entries: int
    history: int  # postings on the one hot wallet of the past-balance scenario
    balance_calls: int = 50


SIZES = {
    "tiny": Size("tiny", 50, 300, 3, 50, 300, 500, 10),
    "default": Size("default", 20_000, 100_000, 3, 2_000, 20_000, 100_000),
    "full": Size("full", 1_000_000, 1_000_000, 3, 100_000, 200_000, 10_000_000),
}

DB_PREFIX = "segledger_bench_"


@dataclass
class Run:
    work: Path
    size: Size
    seed: int
    breaks: int
    timeout: float
    admin_url: str | None  # a PostgreSQL server that may CREATE DATABASE; None: none
    no_postgres: str = ""  # why there is none
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    _dataset: Dataset | None = None
    _sqlite_dataset: Dataset | None = None
    _history: History | None = None
    main_posted: int | None = None  # batches posted on the main database; None: not created
    batch_seconds: dict[int, float] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)
    generated: dict[str, dict[str, Any]] = field(default_factory=dict)  # what each data set holds

    # -- the generated files (each generated once, the first time a scenario needs it) -----

    def dataset(self) -> Dataset:
        if self._dataset is None:
            started = time.perf_counter()
            self._dataset = generate(self.work / "exchange", customers=self.size.customers,
                                     entries=self.size.entries, batches=self.size.batches,
                                     seed=self.seed, breaks=self.breaks)
            self.generated["exchange"] = _counts(self._dataset, started)
        return self._dataset

    def sqlite_dataset(self) -> Dataset:
        if self._sqlite_dataset is None:
            started = time.perf_counter()
            self._sqlite_dataset = generate(
                self.work / "exchange-sqlite", customers=self.size.sqlite_customers,
                entries=self.size.sqlite_entries, batches=1, seed=self.seed)
            self.generated["sqlite"] = _counts(self._sqlite_dataset, started)
        return self._sqlite_dataset

    def history(self) -> History:
        if self._history is None:
            started = time.perf_counter()
            self._history = write_history(self.work / "history", self.size.history,
                                          seed=self.seed)
            entries = sum(part.entries for part in self._history.files)
            self.generated["history"] = {
                "account": self._history.account, "entries": entries, "postings": 2 * entries,
                "files": len(self._history.files),
                "generate_seconds": round(time.perf_counter() - started, 1)}
        return self._history

    # -- databases -------------------------------------------------------------------------

    def postgres(self) -> str:
        if self.admin_url is None:
            raise Skipped(self.no_postgres or "no PostgreSQL")
        return self.admin_url

    def fresh(self, name: str, chart: str) -> str:
        """A new database with the schema at head and the chart loaded; its URL."""
        url = cluster.fresh_database(self.postgres(), DB_PREFIX + name)
        self.created.add(DB_PREFIX + name)
        engine = service.init(url)
        service.load_chart_file(engine, chart)
        engine.dispose()
        checkpoint(self.postgres())
        return url

    def main_url(self) -> str:
        return cluster.database_url(self.postgres(), DB_PREFIX + "main")

    def main_db(self, batches: int) -> str:
        """The main database with the first `batches` batches posted (posting what is missing,
        each measured and remembered)."""
        if self.main_posted is None:
            self.fresh("main", self.dataset().chart)
            self.main_posted = 0
        while self.main_posted < batches:
            self.post_main(self.main_posted + 1)
        return self.main_url()

    def post_main(self, number: int) -> Measured:
        assert self.main_posted == number - 1, "batches are posted in order"
        checkpoint(self.postgres())
        measured = post(self.main_url(), self.dataset().batches[number - 1].path, self.timeout)
        self.main_posted = number
        self.batch_seconds[number] = measured.seconds
        return measured

    def drop_all(self) -> None:
        if self.admin_url is None:
            return
        for name in sorted(self.created):
            cluster.drop_database(self.admin_url, name)
        self.created.clear()


def _counts(dataset: Dataset, started: float) -> dict[str, Any]:
    return {"customers": dataset.customers, "batches": len(dataset.batches),
            "entries": dataset.entries, "postings": dataset.postings,
            "generate_seconds": round(time.perf_counter() - started, 1)}


def post(url: str, path: str, timeout: float, *options: str) -> Measured:
    """`segledger post FILE`, which must succeed."""
    measured = segledger(url, "post", *options, path, timeout=timeout)
    if measured.returncode != 0:
        raise StepFailed(f"segledger post {Path(path).name}", measured)
    return measured


def checkpoint(admin_url: str) -> None:
    """Write out what earlier steps left dirty, so that no step pays for the one before."""
    with contextlib.suppress(psycopg.Error), \
            psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute("CHECKPOINT")  # fails unless a superuser (--db): measure without


class Skipped(Exception):
    """A scenario that cannot run here (no PostgreSQL, say): reported, not failed."""

"""The files a benchmark run posts and reconciles, written by the generators into one folder.

`generate` writes an exchange: chart.json, batch-1.jsonl … batch-N.jsonl, the evidence of its
last daily close (evidence/), prices.json and manifest.json (counts, times, what the ledger
must show). `write_history` writes a long history on one hot wallet, for past balances.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.chart import hot, write_chart
from bench.evidence import Planted, write_evidence, write_prices
from bench.generator import START, BatchCount, Exchange, stamp
from ledger.entries import MAX_ENTRIES_PER_BATCH
from ledger.money import format_amount

DEFAULT_SEED = 11


@dataclass(frozen=True)
class Dataset:
    directory: str
    seed: int
    customers: int
    chart: str
    batches: list[BatchCount]
    as_of: str  # the last daily close: the evidence's time
    past_as_of: str  # halfway through the entries: a time in the past of most accounts
    evidence: list[str]
    prices: str
    planted: list[Planted]
    expected: dict[str, Any]

    @property
    def entries(self) -> int:
        return sum(batch.entries for batch in self.batches)

    @property
    def postings(self) -> int:
        return sum(batch.postings for batch in self.batches)


def generate(directory: Path, *, customers: int, entries: int, batches: int = 3,
             seed: int = DEFAULT_SEED, breaks: int = 0) -> Dataset:
    """An exchange of `customers` customers, in `batches` files of about `entries` entries each
    (the first funds the customers: it holds more when there are more customers than entries)."""
    if entries > MAX_ENTRIES_PER_BATCH:
        raise ValueError(f"at most {MAX_ENTRIES_PER_BATCH} entries in one batch")
    directory.mkdir(parents=True, exist_ok=True)
    exchange = Exchange(customers, seed)
    chart = write_chart(directory / "chart.json")
    counts = [exchange.write_batch(directory / f"batch-{n}.jsonl", entries)
              for n in range(1, batches + 1)]
    evidence, planted = write_evidence(exchange, directory / "evidence", breaks)
    as_of = exchange.as_of()
    dataset = Dataset(
        directory=str(directory), seed=seed, customers=customers, chart=str(chart),
        batches=counts, as_of=as_of.isoformat(),
        past_as_of=exchange.midpoint().isoformat(),
        evidence=[str(path) for path in evidence],
        prices=str(write_prices(directory / "prices.json", as_of)), planted=planted,
        expected=exchange.expected())
    (directory / "manifest.json").write_text(
        json.dumps(asdict(dataset), indent=1) + "\n", "utf-8")
    return dataset


@dataclass(frozen=True)
class History:
    chart: str
    files: list[BatchCount]
    account: str  # the hot wallet: one posting in every entry
    first_at: str
    last_at: str
    balance: str  # its balance after the last entry


HISTORY_ACCOUNT = hot("BTC", 0)
HISTORY_CUSTOMERS = 1_000
YEAR_S = 365 * 24 * 3600


def write_history(directory: Path, postings: int, *, seed: int = DEFAULT_SEED,
                  per_file: int = 1_000_000) -> History:
    """`postings` entries over a year, each one line between a customer and one hot wallet
    (deposits, and withdrawals of what a customer holds), in files of at most `per_file`."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    held = [0] * HISTORY_CUSTOMERS
    wallet = 0
    step_s = max(1, YEAR_S // max(postings, 1))
    files: list[BatchCount] = []
    written = 0
    while written < postings:
        path = directory / f"history-{len(files) + 1}.jsonl"
        count = min(per_file, postings - written)
        with path.open("w", encoding="utf-8", newline="\n") as out:
            for n in range(written, written + count):
                j = rng.randrange(HISTORY_CUSTOMERS)
                account = f"customer:h{j:04d}:BTC"
                if held[j] and rng.random() < 0.4:
                    amount = held[j] * rng.randint(1, 100) // 100 or held[j]
                    kind, debit, credit = "withdrawal", account, HISTORY_ACCOUNT
                    held[j] -= amount
                    wallet -= amount
                else:
                    amount = rng.randint(1_000, 10_000_000)
                    kind, debit, credit = "deposit", HISTORY_ACCOUNT, account
                    held[j] += amount
                    wallet += amount
                at = START + timedelta(seconds=step_s * n)
                out.write(json.dumps({"key": f"h{n:09d}", "type": kind, "effective_at": stamp(at),
                                      "lines": [{"debit": debit, "credit": credit,
                                                 "amount": format_amount(amount, 8)}]},
                                     separators=(",", ":")) + "\n")
        files.append(BatchCount(str(path), count, 2 * count))
        written += count
    chart = write_chart(directory / "chart.json")
    last = START + timedelta(seconds=step_s * max(postings - 1, 0))
    return History(str(chart), files, HISTORY_ACCOUNT, stamp(START), stamp(last),
                   format_amount(wallet, 8))

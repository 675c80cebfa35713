"""Two processes posting at once to the same accounts: no deadlock, no lost update."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ledger.chart import parse_chart
from ledger.storage.chart_store import load_chart
from ledger.storage.integrity import verify
from tests.helpers import CHART, balance_map, deposit, entry, write_jsonl

ENTRIES_PER_PROCESS = 1500
TRUST = "custody:customer:trust:JPY"


@pytest.fixture
def ledger(engine: Engine) -> Engine:
    load_chart(engine, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    return engine


def _start(db: str, path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "segledger", "--db", db, "post", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _batch(name: str) -> list[dict[str, object]]:
    """Deposits to shared customers (some opened by both processes at once) and fees."""
    items: list[dict[str, object]] = []
    for n in range(ENTRIES_PER_PROCESS):
        customer = f"shared-{n % 7}"
        items.append(deposit(f"{name}-dep-{n}", customer, "1000"))
        if n % 10 == 0:
            items.append(entry(f"{name}-fee-{n}", "fee",
                               (f"customer:{customer}:JPY", "revenue:fees:JPY", "3")))
    return items


def test_two_processes_post_to_the_same_accounts_at_once(ledger: Engine, tmp_path: Path) -> None:
    db = ledger.url.render_as_string(hide_password=False)
    files = [write_jsonl(tmp_path / f"{name}.jsonl", _batch(name)) for name in ("a", "b")]
    processes = [_start(db, path) for path in files]
    results = [process.communicate(timeout=300) for process in processes]
    for process, (out, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
        assert out.startswith(f"posted {ENTRIES_PER_PROCESS + ENTRIES_PER_PROCESS // 10} entries")
    balances = balance_map(ledger)
    fees = 2 * (ENTRIES_PER_PROCESS // 10) * 3
    assert balances[TRUST] == 2 * ENTRIES_PER_PROCESS * 1000
    assert balances["revenue:fees:JPY"] == fees
    customers = sum(v for k, v in balances.items() if k.startswith("customer:shared-"))
    assert customers == 2 * ENTRIES_PER_PROCESS * 1000 - fees
    with ledger.connect() as connection:
        report = verify(connection)
    assert report.ok, report.problems
    assert report.entries_checked == 2 * (ENTRIES_PER_PROCESS + ENTRIES_PER_PROCESS // 10)


def test_the_same_file_posted_twice_at_once_is_posted_exactly_once(
    ledger: Engine, tmp_path: Path
) -> None:
    db = ledger.url.render_as_string(hide_password=False)
    path = write_jsonl(tmp_path / "same.jsonl", _batch("same"))
    processes = [_start(db, path) for _ in range(2)]
    outputs = sorted(process.communicate(timeout=300)[0].strip() for process in processes)
    assert [p.returncode for p in processes] == [0, 0]
    total = ENTRIES_PER_PROCESS + ENTRIES_PER_PROCESS // 10
    assert outputs == sorted([
        f"posted {total} entries ({2 * total} postings), skipped 0 duplicates",
        f"posted 0 entries (0 postings), skipped {total} duplicates"])
    assert balance_map(ledger)[TRUST] == ENTRIES_PER_PROCESS * 1000

"""The benchmark's generator and command (bench/): deterministic, accepted by the real ledger,
reconciled clean by its own evidence. Behaviour only: benchmarks measure, tests never time."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from bench.chart import SPECS, custody_accounts
from bench.dataset import Dataset, generate, write_history
from bench.reads import past_balance
from ledger import service, views
from ledger.model import Role
from ledger.money import parse_amount
from ledger.storage.reading import AccountFilter
from reconcile import service as reconciliation
from tests.helpers import balance_map

REPO = Path(__file__).resolve().parents[1]
TINY = {"customers": 40, "entries": 250, "batches": 3}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()
            and path.name != "manifest.json"}  # the manifest names the folder


def test_the_generator_is_deterministic(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", seed=5, breaks=3, **TINY)
    again = generate(tmp_path / "b", seed=5, breaks=3, **TINY)
    other = generate(tmp_path / "c", seed=6, breaks=3, **TINY)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert first.batches[0].entries >= TINY["entries"]
    assert [b.postings for b in first.batches] == [b.postings for b in again.batches]
    assert (tmp_path / "a" / "batch-1.jsonl").read_bytes() != \
        (tmp_path / "c" / "batch-1.jsonl").read_bytes()
    assert other.customers == first.customers
    write_history(tmp_path / "h1", 300, seed=5)
    write_history(tmp_path / "h2", 300, seed=5)
    assert _files(tmp_path / "h1") == _files(tmp_path / "h2")
    # Amounts are exact decimal strings, never JSON numbers.
    for text in (tmp_path / "a" / "batch-2.jsonl").read_text().splitlines():
        assert all(isinstance(line["amount"], str) for line in json.loads(text)["lines"])


def _minor(amount: str, asset: str) -> int:
    return parse_amount(amount, SPECS[asset].scale, allow_zero=True)


def _post_all(dataset: Dataset, url: str) -> None:
    engine = service.init(url)
    service.load_chart_file(engine, dataset.chart)
    for batch in dataset.batches:
        result = service.post_file(engine, batch.path)
        assert (result.posted, result.postings, result.skipped) == \
            (batch.entries, batch.postings, 0)
    engine.dispose()


def test_the_generated_exchange_posts_cleanly_and_reconciles(tmp_path: Path) -> None:
    planted = generate(tmp_path / "planted", breaks=3, **TINY)
    clean = generate(tmp_path / "clean", breaks=0, **TINY)
    assert [b.postings for b in planted.batches] == [b.postings for b in clean.batches]
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _post_all(clean, url)  # every invariant holds, or the ledger refuses a batch
    engine = service.connect(url)
    stored = balance_map(engine)
    assets = {account["code"]: account["asset"] for account in custody_accounts()}
    assert {code: stored.get(code, 0) for code in assets} == {
        code: _minor(amount, assets[code]) for code, amount in clean.expected["custody"].items()}
    as_of = datetime.fromisoformat(clean.as_of)
    owed = views.balances(engine, as_of, AccountFilter(role=Role.CUSTOMER_LIABILITY))
    assert {total.asset: total.total_minor for total in owed.totals} == {
        asset: _minor(amount, asset)
        for asset, amount in clean.expected["customer_liabilities"].items()}
    assert len({row.account.split(":")[1] for row in owed.rows}) == clean.customers
    # Segregation: every asset covered exactly (fees swept at every batch's end).
    assert [row.coverage_minor for row in views.coverage(engine, as_of).rows] == [0] * len(SPECS)
    assert views.verify(engine).ok
    # The evidence says what the ledger says; planted breaks are found, and only they.
    run = reconciliation.run(engine, as_of=as_of, evidence_paths=clean.evidence,
                             prices_path=clean.prices)
    assert (run.result["status"], run.result["breaks"], run.problems) == ("clean", [], False)
    run = reconciliation.run(engine, as_of=as_of, evidence_paths=planted.evidence,
                             prices_path=planted.prices)
    found = {(b["account"], b["kind"]) for b in run.result["breaks"]}
    assert found == {(p.account, p.kind) for p in planted.planted} and len(found) == 3


def test_a_past_balance_agrees_with_the_generated_history(tmp_path: Path) -> None:
    history = write_history(tmp_path / "history", 400, per_file=150)
    assert [part.entries for part in history.files] == [150, 150, 100]
    url = f"sqlite:///{tmp_path / 'history.db'}"
    engine = service.init(url)
    service.load_chart_file(engine, history.chart)
    for part in history.files:
        assert service.post_file(engine, part.path).postings == part.postings
    engine.dispose()
    # Asserts the balance after the last entry is the generator's.
    result = past_balance(url, history.account, history.first_at, history.last_at, times=5,
                          seed=1, final_balance=history.balance)
    assert result["calls"] == 5 and result["account"] == history.account


def test_the_bench_command_runs_a_scenario_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--only", "sqlite", "--size", "tiny",
                           "--json", str(out), "--work", str(tmp_path / "work")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "post, SQLite" in done.stdout
    document = json.loads(out.read_text())
    assert {"machine", "size", "scenarios", "seed", "total_seconds"} <= document.keys()
    assert {"cpu", "cores", "memory_gb", "os", "python"} <= document["machine"].keys()
    assert document["size"]["name"] == "tiny"
    assert list(document["scenarios"]) == ["sqlite"]
    figures = document["scenarios"]["sqlite"]
    assert {"entries", "postings", "seconds", "postings_per_s", "peak_rss_mb"} <= figures.keys()
    assert figures["postings"] > figures["entries"] > 0

"""Reconciliation whose cost grows with the evidence and the breaks, not with the ledger, on
SQLite and PostgreSQL: balance-only evidence is not matched posting by posting (the run says
matching was not possible, with the count and totals of what it could not pair), the ledger's
figures are summed in the database exactly (past 64 bits too), and runs stored before this
still rerun as they were made. Behaviour only: nothing here times anything."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from ledger.chart import parse_chart
from ledger.model import Role
from ledger.storage.chart_store import load_chart
from ledger.storage.reading import balances_at
from ledger.storage.schema import accounts, entries, postings
from reconcile import reports, service, store
from reconcile.engine import RESULT_VERSION
from reconcile.rules.rulebook import parse_rulebook
from tests.camt import statement
from tests.helpers import CHART, entry, post

AS_OF = datetime(2025, 11, 25, 23, 59, 59, tzinfo=UTC)
COLD = "custody:customer:cold:ETH"
HOT = "custody:customer:hot:ETH"
TRUST = "custody:customer:trust:JPY"
IBAN = "JP12TRUST0000001234567"
ETH_CHART: dict[str, Any] = {
    "assets": [{"code": "ETH", "kind": "crypto", "scale": 18, "chain": "ethereum"},
               {"code": "JPY", "kind": "fiat", "scale": 0}],
    "accounts": [
        {"code": COLD, "asset": "ETH", "pool": "customer", "role": "custody",
         "location": "cold_wallet"},
        {"code": HOT, "asset": "ETH", "pool": "customer", "role": "custody",
         "location": "hot_wallet"}]}
TRUST_CHART: dict[str, Any] = {
    "assets": [{"code": "JPY", "kind": "fiat", "scale": 0}],
    "accounts": [{"code": TRUST, "asset": "JPY", "pool": "customer", "role": "custody",
                  "location": "bank_trust", "external": {"iban": IBAN}}]}
# No trades, so only the reserve formula's floor would fail: set aside, as a small exchange's
# own rulebook would.
NO_FLOOR = json.dumps({"name": "no-floor", "version": "1", "extends": "jp-fsa",
                       "rules": {"JP-RESERVE": {"floor": "0"}}})


def _load(engine: Engine, chart: dict[str, Any]) -> None:
    load_chart(engine, parse_chart(json.dumps(chart), "chart.json"), "chart.json")


def _deposits(first: int, count: int, account: str = COLD, amount: str = "0.15",
              day: int = 20) -> list[dict[str, Any]]:
    return [entry(f"d-{n}", "deposit", (account, f"customer:c-{n}:ETH", amount),
                  at=f"2025-11-{day:02d}T10:00:00+00:00", metadata={"txid": f"tx-{n}"})
            for n in range(first, first + count)]


def _snapshot(tmp_path: Path, name: str, balances: dict[str, str]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"observations": [
        {"account": code, "as_of": "2025-11-25T23:00:00+00:00", "amount": amount,
         "source": "custodian-x"} for code, amount in balances.items()]}))
    return str(path)


def _run(engine: Engine, *evidence: str) -> dict[str, Any]:
    book = parse_rulebook(NO_FLOOR, "no-floor.json")
    return service.run(engine, as_of=AS_OF, evidence_paths=list(evidence), rulebook=book).result


def _stored(engine: Engine, run_id: str) -> str:
    with engine.connect() as connection:
        run = store.load_run(connection, run_id)
    assert run is not None
    return run.result


# --- balance-only evidence -----------------------------------------------------------------

def test_a_snapshot_is_not_matched_posting_by_posting_and_says_so(
        engine: Engine, tmp_path: Path) -> None:
    _load(engine, ETH_CHART)
    post(engine, [*_deposits(0, 20), entry(
        "w-0", "withdrawal", ("customer:c-0:ETH", COLD, "0.1"), at="2025-11-21T10:00:00+00:00",
        metadata={"txid": "tx-w0"})])
    # The custodian holds 0.000000000000000001 ETH less than the ledger says.
    result = _run(engine, _snapshot(tmp_path, "s.json", {COLD: "2.899999999999999999"}))
    assert result["result_version"] == RESULT_VERSION == "2"
    assert [(b["account"], b["kind"], b["difference"]) for b in result["breaks"]] == [
        (COLD, "shortfall", "-0.000000000000000001")]
    assert result["matching"] == {COLD: {
        "possible": False, "reason": service.NOT_MATCHED,
        "ledger_postings": 21, "ledger_in": "3.000000000000000000",
        "ledger_out": "-0.100000000000000000",
        "matched": [], "unmatched_external": [], "unmatched_ledger": [],
        "explained": "0.000000000000000000", "unexplained": "-0.000000000000000001"}}
    [cold] = [a for a in result["accounts"] if a["account"] == COLD]
    assert cold["ledger"] == "2.900000000000000000"  # = ledger_in + ledger_out
    # No posting is named anywhere in what is stored.
    stored = _stored(engine, result["run_id"])
    assert "d-0#" not in stored and "tx-1" not in stored and "w-0" not in stored
    again = service.rerun(engine, result["run_id"])
    assert (again.same, again.differences) == (True, [])


def test_the_stored_result_of_a_snapshot_run_does_not_grow_with_the_postings(
        engine: Engine, tmp_path: Path) -> None:
    _load(engine, ETH_CHART)
    post(engine, _deposits(0, 10, amount="0.015") + _deposits(10, 5, HOT, "0.015"))
    small = _run(engine, _snapshot(tmp_path, "small.json", {COLD: "0.15", HOT: "0.075"}))
    post(engine, _deposits(15, 150, amount="0.015") + _deposits(165, 75, HOT, "0.015"),
         source="more.jsonl")
    large = _run(engine, _snapshot(tmp_path, "large.json", {COLD: "2.4", HOT: "1.2"}))
    assert {code: m["ledger_postings"] for code, m in small["matching"].items()} == {
        COLD: 10, HOT: 5}
    assert {code: (m["ledger_postings"], m["ledger_in"]) for code, m in
            large["matching"].items()} == {COLD: (160, "2.400000000000000000"),
                                           HOT: (80, "1.200000000000000000")}
    assert small["breaks"] == large["breaks"] == []
    # Sixteen times the postings: the same document but for a few digits (one posting listed
    # would take some 150 bytes).
    assert len(_stored(engine, large["run_id"])) - len(_stored(engine, small["run_id"])) < 40
    assert len(json.dumps(large["matching"])) - len(json.dumps(small["matching"])) < 10
    # The postings added since (dated before the as-of) are left out of the first run's rerun.
    for run in (small, large):
        again = service.rerun(engine, run["run_id"])
        assert (again.same, again.differences) == (True, [])


def test_a_snapshot_of_an_account_without_postings_has_no_matching(
        engine: Engine, tmp_path: Path) -> None:
    _load(engine, ETH_CHART)
    post(engine, _deposits(0, 2))
    result = _run(engine, _snapshot(tmp_path, "s.json", {COLD: "0.3", HOT: "0"}))
    assert set(result["matching"]) == {COLD}


def test_a_statement_without_lines_is_matched_over_its_own_days_not_the_whole_history(
        engine: Engine, tmp_path: Path) -> None:
    _load(engine, TRUST_CHART)
    post(engine, [
        entry("old", "deposit", (TRUST, "customer:c-1:JPY", "700000"),
              at="2025-10-01T10:00:00+00:00", metadata={"end_to_end_id": "E2E-OLD"}),
        entry("recent", "deposit", (TRUST, "customer:c-2:JPY", "50000"),
              at="2025-11-24T10:00:00+00:00", metadata={"end_to_end_id": "E2E-NEW"})])
    path = tmp_path / "s.xml"
    path.write_bytes(statement(IBAN, "JPY", "750000", "2025-11-25", []))
    result = _run(engine, str(path))
    matching = result["matching"][TRUST]
    # The statement of the 25th shows no line: the 24th's deposit (within the three-day
    # window) is not on it; October's is outside what the statement speaks for.
    assert [(i["amount"], i["reference"]) for i in matching["unmatched_ledger"]] == [
        ("50000", "E2E-NEW")]
    assert (matching["explained"], matching["unexplained"]) == ("-50000", "50000")
    assert service.rerun(engine, result["run_id"]).same


# --- runs stored before result versions --------------------------------------------------------

def _items(engine: Engine, account_code: str) -> list[dict[str, Any]]:
    """Every posting of the account as a run before result versions listed it unmatched."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(postings.c.id, postings.c.line_no, postings.c.amount_minor,
                   postings.c.effective_at, entries.c.key, entries.c.metadata, entries.c.memo)
            .join(entries, entries.c.id == postings.c.entry_id)
            .join(accounts, accounts.c.id == postings.c.account_id)
            .where(accounts.c.code == account_code).order_by(postings.c.effective_at,
                                                             postings.c.id)).all()
    return [{"id": f"{row.key}#{row.line_no}:{row.id}",
             "amount": _eth(row.amount_minor), "on": row.effective_at.date().isoformat(),
             "reference": (row.metadata or {}).get("txid"), "description": row.memo or ""}
            for row in rows]


def _eth(minor: int) -> str:
    sign, digits = ("-" if minor < 0 else ""), str(abs(minor)).rjust(19, "0")
    return f"{sign}{digits[:-18]}.{digits[-18:]}"


def test_a_snapshot_run_stored_before_result_versions_reruns_as_it_was_made(
        engine: Engine, tmp_path: Path) -> None:
    _load(engine, ETH_CHART)
    post(engine, _deposits(0, 3))
    new = _run(engine, _snapshot(tmp_path, "s.json", {COLD: "0.45"}))
    # As segledger stored it before: no version, and every posting listed as unmatched.
    old = {key: value for key, value in new.items() if key != "result_version"}
    old["run_id"] = "run-before-versions"
    old["matching"] = {COLD: {"matched": [], "unmatched_external": [],
                              "unmatched_ledger": _items(engine, COLD),
                              "explained": "-0.450000000000000000",
                              "unexplained": "0.450000000000000000"}}
    stored_text = service.canonical(old)
    with engine.begin() as connection:
        [run] = [r for r in store.history(connection, 10) if r.run_id == new["run_id"]]
        evidence = store.load_evidence(connection, run.seq)
        store.save_run(connection, store.StoredRun(
            0, old["run_id"], run.created_at, run.as_of, run.status, run.rulebook,
            stored_text, store.sha256_text(stored_text)), evidence, old["breaks"])
    again = service.rerun(engine, "run-before-versions")
    assert (again.same, again.differences) == (True, [])
    assert "result_version" not in again.outcome.result
    assert len(again.outcome.result["matching"][COLD]["unmatched_ledger"]) == 3
    # And the new run reruns as the new one.
    assert service.rerun(engine, new["run_id"]).same


# --- the ledger's figures, summed in the database ----------------------------------------------

def test_totals_past_64_bits_are_exact(engine: Engine, tmp_path: Path) -> None:
    """Two customers holding 6 ETH each (6 × 10**18 wei: within SQLite's 64 bits), 12 ETH owed
    in all (past 2**63), and a wallet that has taken in 12 ETH and paid out 6."""
    _load(engine, ETH_CHART)
    post(engine, [
        entry("a", "deposit", (COLD, "customer:a:ETH", "6"), at="2025-11-20T10:00:00+00:00"),
        entry("a-out", "withdrawal", ("customer:a:ETH", COLD, "6"),
              at="2025-11-21T10:00:00+00:00"),
        entry("a-back", "deposit", (COLD, "customer:a:ETH", "6"),
              at="2025-11-22T10:00:00+00:00"),
        entry("b", "deposit", (HOT, "customer:b:ETH", "6"), at="2025-11-20T10:00:00+00:00")])
    assert 12 * 10**18 > 2**63 - 1
    result = _run(engine, _snapshot(tmp_path, "s.json", {COLD: "6", HOT: "6"}))
    [coverage] = [c for c in result["checks"]
                  if c["rule"] == "SEG-COVERAGE" and c["asset"] == "ETH"]
    assert coverage["numbers"] == {"customer_custody": "12.000000000000000000",
                                   "customer_liabilities": "12.000000000000000000"}
    assert (result["matching"][COLD]["ledger_postings"], result["matching"][COLD]["ledger_in"],
            result["matching"][COLD]["ledger_out"]) == (
        3, "12.000000000000000000", "-6.000000000000000000")
    assert service.rerun(engine, result["run_id"]).same  # summed from the postings there
    report = reports.segregation(engine, AS_OF, None)
    [eth] = [row for row in report["assets"] if row["asset"] == "ETH"]
    assert (eth["customer_liabilities"], eth["customer_custody_total"]) == (
        "12.000000000000000000", "12.000000000000000000")


SUSPENSE = "suspense:customer:JPY"


def test_totals_in_the_database_are_the_sums_of_the_balances_at_every_time(
        engine: Engine) -> None:
    """balance_totals_at against balances_at, account by account summed in Python: at times
    before, between and after postings, backdated ones included, and as known at a moment."""
    chart = json.loads(json.dumps(CHART))
    chart["accounts"].append({"code": SUSPENSE, "asset": "JPY", "pool": "customer",
                              "role": "suspense"})
    _load(engine, chart)
    trust, hot = "custody:customer:trust:JPY", "custody:customer:hot:BTC"
    post(engine, [
        entry("d1", "deposit", (trust, "customer:c-1:JPY", "500000"), at="2025-11-20T09:00:00Z"),
        entry("d2", "deposit", (trust, SUSPENSE, "7000"), at="2025-11-21T09:00:00Z"),
        entry("b1", "deposit", (hot, "customer:c-2:BTC", "1.5"), at="2025-11-21T09:00:00Z"),
        entry("cap", "adjustment", ("custody:company:reserve:JPY", "equity:capital:JPY",
                                    "9000000"), at="2025-11-19T09:00:00Z"),
        entry("prov", "reserve_provision", ("equity:capital:JPY", "reserve:liability:JPY",
                                            "2000000"), at="2025-11-19T10:00:00Z"),
        entry("fee", "fee", ("customer:c-1:JPY", "revenue:fees:JPY", "300"),
              at="2025-11-23T09:00:00Z"),
        entry("w1", "withdrawal", ("customer:c-2:BTC", hot, "0.5"), at="2025-11-24T09:00:00Z")])
    with engine.connect() as connection:
        between = connection.execute(text("SELECT max(recorded_at) FROM entries")).scalar()
    known = _as_time(between)
    post(engine, [
        entry("late", "deposit", (trust, "customer:c-3:JPY", "42"), at="2025-11-20T12:00:00Z"),
        # The first posting of its class, backdated: the class is there only once known.
        entry("rent", "adjustment", ("expense:rent:JPY", "equity:capital:JPY", "500"),
              at="2025-11-20T13:00:00Z"),
        entry("w2", "withdrawal", ("customer:c-1:JPY", trust, "100000"),
              at="2025-11-26T09:00:00Z")], source="later.jsonl")
    times = [datetime(2025, 11, day, hour, tzinfo=UTC) for day in (18, 19, 20, 21, 23, 24, 27)
             for hour in (9, 12)]
    with engine.connect() as connection:
        for as_of in times:
            for known_at in (None, known, known + timedelta(days=365)):
                assert _totals(connection, as_of, known_at) == _python(connection, as_of,
                                                                       known_at), (as_of, known_at)


def _as_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _totals(connection: Any, as_of: datetime, known_at: datetime | None) -> dict[Any, int]:
    found = {("class", t.kind.asset, t.kind.pool, t.kind.role): t.balance_minor
             for t in store.balance_totals_at(connection, as_of, known_at)}
    ids = [account_id for account_id, _ in store.custody_accounts(connection)]
    custody = store.custody_balances_at(connection, ids, as_of, known_at)
    return {**found, **{("custody", account_id): minor for account_id, minor in custody.items()}}


def _python(connection: Any, as_of: datetime, known_at: datetime | None) -> dict[Any, int]:
    ids = {row.code: row.id for row in connection.execute(select(accounts.c.code, accounts.c.id))}
    found: dict[Any, int] = defaultdict(int)
    for row in balances_at(connection, as_of, known_at=known_at):
        account = row.account
        found[("class", account.asset, account.pool, account.role)] += row.balance_minor
        if account.role is Role.CUSTODY:
            found[("custody", ids[account.code])] += row.balance_minor
    return dict(found)


def test_a_snapshot_run_and_its_rerun_list_no_posting(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against balance-only evidence the reader of posting rows is never called, in a run or
    in its rerun: only the count and the totals are read."""
    _load(engine, ETH_CHART)
    post(engine, _deposits(0, 5))

    def refused(*_: Any, **__: Any) -> Any:
        raise AssertionError("postings listed for balance-only evidence")

    monkeypatch.setattr(store, "_custody_items", refused)
    result = _run(engine, _snapshot(tmp_path, "s.json", {COLD: "0.75"}))
    assert result["matching"][COLD]["ledger_postings"] == 5
    assert service.rerun(engine, result["run_id"]).same

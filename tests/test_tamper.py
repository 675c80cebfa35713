"""An insider with the database superuser's power, the triggers off, changes history and
rewrites the stored balances to match: `verify` names each change (the hash chain,
docs/integrity.md). On PostgreSQL the session replication role turns every trigger off (as a
superuser can); on SQLite the insider drops the triggers."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select, text

from ledger.chart import parse_chart
from ledger.json_input import parse_time
from ledger.reserves import parse_register
from ledger.storage.chart_store import load_chart
from ledger.storage.integrity import verify
from ledger.storage.reserve_store import load_register
from ledger.storage.rows import account_from_row
from ledger.storage.schema import accounts, balances, coverage, postings
from reconcile import service as reconcile_service
from tests.helpers import AS_OF, CHART, THEFT, deposit, entry, post

TRUST, HOT = "custody:customer:trust:JPY", "custody:customer:hot:BTC"

POLICIES = """{"policies": [{"policy_id": "P-1", "insurer": "Tokio Marine", "currency": "JPY",
"limit": "1000", "covered_share": "0.8", "period_start": "2025-01-01T00:00:00Z",
"period_end": "2026-01-01T00:00:00Z"}]}"""


@pytest.fixture
def history(engine: Engine, tmp_path: Path) -> Engine:
    return build_history(engine, tmp_path)


def build_history(ledger: Engine, tmp_path: Path) -> Engine:
    """Two batches (one opening an incident), a reconciliation run and an insurance policy."""
    load_chart(ledger, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    post(ledger, [deposit("d1", "c-001", "100"), deposit("d2", "c-002", "50"),
                  deposit("d3", "c-003", "20")])
    post(ledger, [deposit("b1", "c-001", "1", asset="BTC"),
                  entry("hack", "incident", ("loss:incident:BTC", HOT, "0.1"), metadata=THEFT)])
    observed = tmp_path / "trust.json"
    observed.write_text(json.dumps({"observations": [
        {"account": TRUST, "amount": "160", "as_of": AS_OF, "source": "trust bank"}]}))
    reconcile_service.run(ledger, as_of=parse_time(AS_OF), evidence_paths=[str(observed)])
    policies = tmp_path / "policies.json"
    policies.write_text(POLICIES)
    load_register(ledger, parse_register(policies.read_bytes(), str(policies)), str(policies))
    with ledger.connect() as connection:
        report = verify(connection)
    assert report.ok, report.problems
    return ledger


def _as_insider(engine: Engine, change: Callable[[Connection], None]) -> set[tuple[str, str]]:
    """Make the change with every trigger off, rewrite balances and coverage to match the
    postings (so the sums agree), and return what verify names."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            for name in list(connection.execute(text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars()):
                connection.execute(text(f'DROP TRIGGER "{name}"'))
        change(connection)
        _rebalance(connection)
    with engine.connect() as connection:
        return {(problem.check, problem.subject) for problem in verify(connection).problems}


def _rebalance(connection: Connection) -> None:
    sums: dict[int, Any] = {}
    for row in connection.execute(select(
            postings.c.account_id, func.sum(postings.c.amount_minor), func.count(),
            func.min(postings.c.effective_at), func.max(postings.c.effective_at))
            .group_by(postings.c.account_id)):
        sums[row[0]] = (int(row[1]), int(row[2]), row[3], row[4])
    covered: dict[str, int] = defaultdict(int)
    for row in connection.execute(select(accounts)):
        account = account_from_row(row)
        total, count, first, last = sums.get(row.id, (0, 0, None, None))
        connection.execute(balances.update().where(balances.c.account_id == row.id).values(
            balance_minor=total * account.normal_sign, posting_count=count,
            first_effective_at=first, last_effective_at=last))
        covered[account.asset] += account.coverage_sign * total * account.normal_sign
    for asset, value in covered.items():
        connection.execute(coverage.update().where(coverage.c.asset == asset)
                           .values(coverage_minor=value))


def _entry_id(connection: Connection, key: str) -> int:
    return int(connection.execute(text("SELECT id FROM entries WHERE key = :k"), {"k": key})
               .scalar_one())


def test_an_amount_moved_between_two_customers(history: Engine) -> None:
    def change(connection: Connection) -> None:
        for key, delta in (("d1", -10), ("d2", 10)):
            connection.execute(text(
                "UPDATE postings SET amount_minor = amount_minor + "
                "(CASE WHEN amount_minor > 0 THEN :d ELSE -:d END) WHERE entry_id = :e"),
                {"d": delta, "e": _entry_id(connection, key)})
    assert _as_insider(history, change) == {
        ("entry_hash", "d1"), ("entry_hash", "d2"), ("sealed_batch", "batch 1")}


def test_a_posting_deleted(history: Engine) -> None:
    def change(connection: Connection) -> None:
        connection.execute(text("DELETE FROM postings WHERE entry_id = :e AND amount_minor < 0"),
                           {"e": _entry_id(connection, "d3")})
    found = _as_insider(history, change)
    assert {("entry_hash", "d3"), ("sealed_batch", "batch 1")} <= found
    assert {check for check, _ in found} <= {"entry_hash", "sealed_batch", "entry_balanced",
                                              "entry_postings"}


def test_a_deposit_deleted(history: Engine) -> None:
    def change(connection: Connection) -> None:
        entry_id = _entry_id(connection, "d3")
        connection.execute(text("DELETE FROM postings WHERE entry_id = :e"), {"e": entry_id})
        connection.execute(text("DELETE FROM entries WHERE id = :e"), {"e": entry_id})
    assert _as_insider(history, change) == {("sealed_batch", "batch 1")}


def test_an_entry_inserted_in_the_past(history: Engine) -> None:
    def change(connection: Connection) -> None:
        row = connection.execute(text("SELECT * FROM entries WHERE key = 'd2'")).mappings().one()
        new_id = 1000
        connection.execute(text(
            "INSERT INTO entries (id, key, type, effective_at, recorded_at, memo, metadata, "
            "content_hash, batch_id) VALUES (:id, 'forged', 'deposit', :at, :rec, NULL, '{}', "
            ":h, 1)"), {"id": new_id, "at": row["effective_at"], "rec": row["recorded_at"],
                        "h": row["content_hash"]})
        connection.execute(text(
            "INSERT INTO postings (entry_id, line_no, account_id, asset, amount_minor, "
            "effective_at) SELECT :id, line_no, account_id, asset, amount_minor, effective_at "
            "FROM postings WHERE entry_id = :old"), {"id": new_id, "old": row["id"]})
    assert _as_insider(history, change) == {("sealed_batch", "batch 1")}


def test_an_entry_inserted_in_a_batch_of_its_own(history: Engine) -> None:
    def change(connection: Connection) -> None:
        connection.execute(text(
            "INSERT INTO batches (id, source, sha256, entry_count, posting_count, skipped_count, "
            "recorded_at) SELECT 99, source, sha256, 1, 2, 0, recorded_at FROM batches "
            "WHERE id = 1"))
        connection.execute(text(
            "UPDATE entries SET batch_id = 99 WHERE key = 'd3'"))
    found = _as_insider(history, change)
    assert {("unsealed", "batch 99"), ("entry_hash", "d3"), ("sealed_batch", "batch 1")} <= found


@pytest.mark.parametrize("column, value", [
    ("memo", "'rewritten'"), ("type", "'adjustment'"), ("content_hash", "'" + "0" * 64 + "'"),
    ("metadata", "'{\"note\": \"x\"}'")])
def test_an_entry_field_changed(history: Engine, column: str, value: str) -> None:
    def change(connection: Connection) -> None:
        connection.execute(text(f"UPDATE entries SET {column} = {value} WHERE key = 'd2'"))
    assert _as_insider(history, change) == {("entry_hash", "d2"), ("sealed_batch", "batch 1")}


def test_an_effective_time_moved_30_days(history: Engine) -> None:
    def change(connection: Connection) -> None:
        moved = ("effective_at - INTERVAL '30 days'" if connection.dialect.name == "postgresql"
                 else "strftime('%Y-%m-%d %H:%M:%f000', effective_at, '-30 days')")
        connection.execute(text(f"UPDATE entries SET effective_at = {moved} WHERE key = 'd2'"))
    assert _as_insider(history, change) == {("entry_hash", "d2"), ("sealed_batch", "batch 1")}


def test_entries_reordered(history: Engine) -> None:
    def change(connection: Connection) -> None:
        connection.execute(text("UPDATE entries SET key = 'tmp' WHERE key = 'd1'"))
        connection.execute(text("UPDATE entries SET key = 'd1' WHERE key = 'd2'"))
        connection.execute(text("UPDATE entries SET key = 'd2' WHERE key = 'tmp'"))
    assert _as_insider(history, change) == {
        ("entry_hash", "d1"), ("entry_hash", "d2"), ("sealed_batch", "batch 1")}


def test_a_stored_balance_no_longer_its_postings(history: Engine) -> None:
    with history.begin() as connection:
        connection.execute(text("UPDATE balances SET balance_minor = balance_minor + 1 "
                                "WHERE account_id = (SELECT id FROM accounts "
                                "WHERE code = 'customer:c-001:JPY')"))
    with history.connect() as connection:
        found = {(p.check, p.subject) for p in verify(connection).problems}
    assert ("stored_balance", "customer:c-001:JPY") in found


def test_a_run_edited_to_clean_with_its_breaks_deleted(history: Engine) -> None:
    def change(connection: Connection) -> None:
        result = json.loads(connection.execute(text("SELECT result FROM recon_runs")).scalar_one())
        result["status"], result["breaks"] = "clean", []
        edited = json.dumps(result)
        import hashlib
        connection.execute(text("UPDATE recon_runs SET status = 'clean', result = :r, "
                                "result_sha256 = :h"),
                           {"r": edited, "h": hashlib.sha256(edited.encode()).hexdigest()})
        connection.execute(text("DELETE FROM recon_breaks"))
    assert {check for check, _ in _as_insider(history, change)} == {"sealed_record"}


def test_a_run_deleted_with_its_evidence(history: Engine) -> None:
    def change(connection: Connection) -> None:
        for table in ("recon_evidence", "recon_breaks", "recon_runs"):
            connection.execute(text(f"DELETE FROM {table}"))
    found = _as_insider(history, change)
    assert {check for check, _ in found} == {"sealed_record"}


def test_evidence_content_replaced(history: Engine) -> None:
    def change(connection: Connection) -> None:
        connection.execute(text("UPDATE recon_evidence SET content = :c"),
                           {"c": b'[{"account": "x"}]'})
    assert {check for check, _ in _as_insider(history, change)} == {"sealed_record", "run_hash"}


def test_an_insurance_policy_deleted_or_changed(history: Engine) -> None:
    found = _as_insider(history, lambda c: c.execute(text(
        "UPDATE insurance_policies SET covered_share = '1'")))
    assert {check for check, _ in found} == {"sealed_record"}
    found = _as_insider(history, lambda c: c.execute(text("DELETE FROM insurance_policies")))
    assert {check for check, _ in found} == {"sealed_record"}


def test_an_incident_changed(history: Engine) -> None:
    found = _as_insider(history, lambda c: c.execute(text("UPDATE incidents SET kind = 'operational_loss'")))
    assert found == {("sealed_batch", "batch 2")}


def test_a_link_removed_or_rewritten(history: Engine) -> None:
    found = _as_insider(history, lambda c: c.execute(text(
        "DELETE FROM chain_links WHERE seq = 2")))
    # Link 3 no longer follows link 1, and batch 2 (sealed by link 2) is in no link now.
    assert {("chain", "link 3"), ("unsealed", "batch 2")} <= found
    found = _as_insider(history, lambda c: c.execute(text(
        "UPDATE chain_links SET digest = :d WHERE seq = 1"), {"d": "1" * 64}))
    assert ("chain", "link 1") in found


def test_postings_and_their_entry_hashes_rewritten_still_break_the_batch(history: Engine) -> None:
    """An insider who recomputes the entry's own hashes still cannot match its batch's seal."""
    from ledger.storage import journal

    def change(connection: Connection) -> None:
        entry_id = _entry_id(connection, "d1")
        connection.execute(text("UPDATE postings SET amount_minor = amount_minor * 2 "
                                "WHERE entry_id = :e"), {"e": entry_id})
        fresh = next(e for e in journal.recomputed_entries(connection) if e.id == entry_id)
        connection.execute(text("UPDATE entries SET postings_hash = :p, entry_hash = :h "
                                "WHERE id = :e"),
                           {"p": fresh.postings_hash, "h": fresh.entry_hash, "e": entry_id})
    assert _as_insider(history, change) == {("sealed_batch", "batch 1")}


def test_an_untouched_ledger_has_every_row_sealed(history: Engine) -> None:
    with history.connect() as connection:
        kinds = [row[0] for row in connection.execute(
            select(text("kind")).select_from(text("chain_links")).order_by(text("seq")))]
        assert connection.execute(select(postings.c.id).limit(1)).first() is not None
    assert kinds == ["batch", "batch", "run", "insurance"]


def test_show_and_export_refuse_a_run_edited_behind_the_ledgers_back(
        history: Engine, tmp_path: Path) -> None:
    from tests.helpers import cli

    url = history.url.render_as_string(hide_password=False)
    with history.connect() as connection:
        run_id = connection.execute(text("SELECT run_id FROM recon_runs")).scalar_one()
    assert cli("--db", url, "reconcile", "show", run_id).returncode == 0
    _as_insider(history, lambda c: c.execute(text("DELETE FROM recon_breaks")))
    shown = cli("--db", url, "reconcile", "show", run_id)
    assert (shown.returncode, shown.stdout) == (1, "")
    assert shown.stderr == (f"error: run {run_id} changed since it was sealed in link 3 of the "
                            "hash chain; run `segledger verify`\n")
    exported = cli("--db", url, "reconcile", "export", run_id, "--out", str(tmp_path / "x"))
    assert exported.returncode == 1 and not (tmp_path / "x").exists()

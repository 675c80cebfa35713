"""Reconciliation runs end to end, on SQLite and PostgreSQL: the scenarios an exchange meets,
the stored history, re-runs, and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from ledger.chart import parse_chart
from ledger.errors import EnvironmentFailure, InputError
from ledger.storage.chart_store import load_chart
from reconcile import service
from reconcile.rules.rulebook import parse_rulebook
from tests.camt import statement
from tests.chainnodes import RegtestNode
from tests.helpers import cli, entry, post

IBAN = "JP12TRUST0000001234567"
AS_OF = datetime(2025, 11, 25, 23, 59, 59, tzinfo=UTC)
TRUST = "custody:customer:trust:JPY"


def _chart(btc_addresses: dict[str, list[str]] | None = None) -> dict[str, Any]:
    accounts = [
        {"code": TRUST, "asset": "JPY", "pool": "customer", "role": "custody",
         "location": "bank_trust", "external": {"iban": IBAN}},
        {"code": "revenue:fees:JPY", "asset": "JPY", "pool": "company", "role": "revenue"},
    ]
    for code, addresses in (btc_addresses or {}).items():
        accounts.append({"code": code, "asset": "BTC", "pool": "customer", "role": "custody",
                         "location": "hot_wallet", "external": {"addresses": addresses}})
    return {"assets": [{"code": "JPY", "kind": "fiat", "scale": 0},
                       {"code": "BTC", "kind": "crypto", "scale": 8, "chain": "bitcoin"}],
            "accounts": accounts}


def _load(engine: Engine, chart: dict[str, Any]) -> None:
    load_chart(engine, parse_chart(json.dumps(chart), "chart.json"), "chart.json")


def _deposit(key: str, customer: str, amount: str, reference: str, account: str = TRUST,
             asset: str = "JPY", ref_key: str = "end_to_end_id") -> dict[str, Any]:
    return entry(key, "deposit", (account, f"customer:{customer}:{asset}", amount),
                 at="2025-11-25T10:00:00+00:00", metadata={ref_key: reference})


@pytest.fixture
def bank_ledger(engine: Engine) -> Engine:
    _load(engine, _chart())
    post(engine, [_deposit("d1", "c-1", "200000", "E2E-1"), _deposit("d2", "c-2", "50000", "E2E-2")])
    return engine


def _write(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def _runs(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM recon_runs")).scalar_one())


def test_clean_statement_gives_a_clean_run(bank_ledger: Engine, tmp_path: Path) -> None:
    camt = _write(tmp_path, "s.xml", statement(IBAN, "JPY", "250000", "2025-11-25", [
        ("200000", "E2E-1", "deposit c-1"), ("50000", "E2E-2", "deposit c-2")]))
    # No trades, so only the formula's floor would require a reserve: a small exchange's own
    # rulebook sets it to zero, and then nothing is left to fail.
    no_floor = parse_rulebook(json.dumps({"name": "no-floor", "version": "1", "extends": "jp-fsa",
                                          "rules": {"JP-RESERVE": {"floor": "0"}}}), "test")
    outcome = service.run(bank_ledger, as_of=AS_OF, evidence_paths=[camt], rulebook=no_floor)
    result = outcome.result
    assert (result["status"], outcome.problems) == ("clean", False)
    [trust] = result["accounts"]
    assert (trust["ledger"], trust["external"], trust["difference"]) == ("250000", "250000", "0")
    assert {(c["rule"], c["asset"], c["status"]) for c in result["checks"]} == {
        ("SEG-COVERAGE", "JPY", "pass"), ("SEG-COVERAGE", "BTC", "pass"),
        ("SEG-EXTERNAL", "JPY", "pass"), ("JP-FIAT-TRUST", "JPY", "pass"),
        ("JP-COLD-95", "*", "pass"), ("SEG-EXCESS", "JPY", "pass"),
        ("JP-RESERVE", "JPY", "pass"), ("RESERVE-DRAW", "*", "pass"),
        ("WALLET-DISJOINT", "*", "pass")}
    assert [m["rule"] for m in result["matching"][TRUST]["matched"]] == ["reference", "reference"]


def test_bank_fee_charged_to_the_trust_account_is_a_shortfall_explained_by_the_statement(
    bank_ledger: Engine, tmp_path: Path
) -> None:
    camt = _write(tmp_path, "s.xml", statement(IBAN, "JPY", "249670", "2025-11-25", [
        ("200000", "E2E-1", "deposit c-1"), ("50000", "E2E-2", "deposit c-2"),
        ("-330", None, "transfer fee")]))
    outcome = service.run(bank_ledger, as_of=AS_OF, evidence_paths=[camt])
    result = outcome.result
    assert outcome.problems and result["status"] == "breaks"
    assert [(b["account"], b["kind"], b["difference"]) for b in result["breaks"]] == [
        (TRUST, "shortfall", "-330")]
    matching = result["matching"][TRUST]
    assert [(i["amount"], i["description"]) for i in matching["unmatched_external"]] == [
        ("-330", "transfer fee")]
    assert matching["unmatched_ledger"] == []
    assert (matching["explained"], matching["unexplained"]) == ("-330", "0")
    coverage = next(c for c in result["checks"] if c["rule"] == "SEG-COVERAGE" and c["asset"] == "JPY")
    assert (coverage["status"], coverage["value"]) == ("fail", "-330")


def test_a_break_keeps_the_run_where_it_first_appeared(bank_ledger: Engine, tmp_path: Path) -> None:
    short = _write(tmp_path, "short.xml", statement(IBAN, "JPY", "249670", "2025-11-25", []))
    clean = _write(tmp_path, "clean.xml", statement(IBAN, "JPY", "250000", "2025-11-25", []))
    first = service.run(bank_ledger, as_of=AS_OF, evidence_paths=[short]).result
    second = service.run(bank_ledger, as_of=AS_OF, evidence_paths=[short]).result
    assert second["breaks"][0]["open_since"] == first["run_id"] != second["run_id"]
    assert service.run(bank_ledger, as_of=AS_OF, evidence_paths=[clean]).result["breaks"] == []
    fourth = service.run(bank_ledger, as_of=AS_OF, evidence_paths=[short]).result
    assert fourth["breaks"][0]["open_since"] == fourth["run_id"]


def test_rerun_reproduces_the_stored_result_even_after_later_postings(
    bank_ledger: Engine, tmp_path: Path
) -> None:
    camt = _write(tmp_path, "s.xml", statement(IBAN, "JPY", "249670", "2025-11-25", [
        ("-330", None, "transfer fee")]))
    stored = service.run(bank_ledger, as_of=AS_OF, evidence_paths=[camt]).result
    Path(camt).unlink()  # months later: the bank file is gone
    # A backdated entry recorded after the run must not change what the run saw.
    post(bank_ledger, [_deposit("late", "c-3", "999", "E2E-LATE")])
    again = service.rerun(bank_ledger, stored["run_id"])
    assert again.same, again.differences
    assert again.outcome.result == stored


def test_runs_are_append_only_in_the_database(bank_ledger: Engine, tmp_path: Path) -> None:
    camt = _write(tmp_path, "s.xml", statement(IBAN, "JPY", "249670", "2025-11-25", []))
    service.run(bank_ledger, as_of=AS_OF, evidence_paths=[camt])
    for statement_sql in ("UPDATE recon_runs SET status = 'clean'", "DELETE FROM recon_breaks",
                          "DELETE FROM recon_evidence"):
        with pytest.raises(DBAPIError, match="append-only"), bank_ledger.begin() as connection:
            connection.execute(text(statement_sql))


def test_statement_for_an_unknown_account_is_a_break_not_a_crash(
    bank_ledger: Engine, tmp_path: Path
) -> None:
    camt = _write(tmp_path, "s.xml", statement("DE00UNKNOWN0000000001", "JPY", "5", "2025-11-25", []))
    result = service.run(bank_ledger, as_of=AS_OF, evidence_paths=[camt]).result
    kinds = {(b["account"], b["kind"]) for b in result["breaks"]}
    assert ("iban:DE00UNKNOWN0000000001", "unknown_account") in kinds
    assert (TRUST, "missing_evidence") in kinds


@pytest.mark.parametrize(("name", "make", "reason"), [
    ("currency", lambda p: [_write(p, "s.xml", statement(IBAN, "EUR", "1", "2025-11-25", []))],
     "currency mismatch"),
    ("twice", lambda p: [_write(p, "a.xml", statement(IBAN, "JPY", "1", "2025-11-25", [])),
                         _write(p, "b.xml", statement(IBAN, "JPY", "1", "2025-11-25", []))],
     "given twice"),
    ("hostile", lambda p: [_write(p, "x.xml", b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x '
                                  b'SYSTEM "file:///etc/passwd">]><Document xmlns="urn:iso:std:'
                                  b'iso:20022:tech:xsd:camt.053.001.02">&x;</Document>')],
     "refused unsafe XML"),
    ("too_big", lambda p: [_sparse(p / "huge.xml", 60_000_000)], "limit"),
    ("missing", lambda p: [str(p / "nope.xml")], "cannot read"),
])
def test_bad_evidence_is_exit_2_and_stores_no_run(
    name: str, make: Any, reason: str, bank_ledger: Engine, tmp_path: Path
) -> None:
    paths = make(tmp_path)
    args = [arg for path in paths for arg in ("--evidence", path)]
    db = bank_ledger.url.render_as_string(hide_password=False)
    refused = cli("--db", db, "reconcile", "run", "--as-of", "2025-11-25T23:59:59Z", *args)
    assert refused.returncode == 2, refused.stderr
    assert reason in refused.stderr and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert _runs(bank_ledger) == 0


def _sparse(path: Path, size: int) -> str:
    with path.open("wb") as handle:
        handle.truncate(size)
    return str(path)


def test_cli_run_show_history_rerun_export(bank_ledger: Engine, tmp_path: Path) -> None:
    db = bank_ledger.url.render_as_string(hide_password=False)
    camt = _write(tmp_path, "s.xml", statement(IBAN, "JPY", "250000", "2025-11-25", []))
    rulebook = _write(tmp_path, "rulebook.yaml", (
        b"name: small-exchange\nversion: '2026-11'\nextends: jp-fsa\n"
        b"rules:\n  JP-RESERVE: {floor: '0'}\n"))
    done = cli("--db", db, "reconcile", "run", "--as-of", "2025-11-25T23:59:59Z",
               "--evidence", camt, "--rulebook", rulebook, "--format", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["rulebook"]["name"], result["rulebook"]["extends"]) == ("small-exchange",
                                                                         "jp-fsa")
    assert result["rulebook"]["rules"]["JP-RESERVE"]["floor"] == "0"
    assert set(result) >= {"run_id", "as_of", "status", "accounts", "breaks", "checks"}
    run_id = result["run_id"]
    history = json.loads(cli("--db", db, "reconcile", "history", "--format", "json").stdout)
    assert [h["run_id"] for h in history] == [run_id]
    shown = cli("--db", db, "reconcile", "show", run_id, "--format", "json")
    assert json.loads(shown.stdout) == result
    rerun = cli("--db", db, "reconcile", "rerun", run_id, "--format", "json")
    assert rerun.returncode == 0 and json.loads(rerun.stdout)["same"] is True
    exported = cli("--db", db, "reconcile", "export", run_id, "--out", str(tmp_path / "audit"))
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "audit" / "evidence" / "000-s.xml").read_bytes() == Path(camt).read_bytes()
    assert (tmp_path / "audit" / "accounts.csv").read_text().startswith("account,asset,")
    unknown = cli("--db", db, "reconcile", "show", "run-nope")
    assert unknown.returncode == 2 and "no reconciliation run" in unknown.stderr


# Chain scenarios on a real litecoind -regtest node, reached over HTTP as in production.

def _fund(node: RegtestNode, address: str, amount: str) -> str:
    txid = node.call("sendtoaddress", address, amount, wallet="exchange")
    node.call("generatetoaddress", 1, node.call("getnewaddress", wallet="exchange"),
              wallet="exchange")
    return str(txid)


def _chain_config(tmp_path: Path, node: RegtestNode) -> str:
    return _write(tmp_path, "chains.json", json.dumps({"chains": {"bitcoin": {
        "kind": "bitcoin", "url": node.url, "user_env": "SEG_TEST_LTC_USER",
        "password_env": "SEG_TEST_LTC_PASSWORD"}}}).encode())


@pytest.fixture
def chain_env(regtest: RegtestNode, monkeypatch: pytest.MonkeyPatch) -> RegtestNode:
    monkeypatch.setenv("SEG_TEST_LTC_USER", regtest.user)
    monkeypatch.setenv("SEG_TEST_LTC_PASSWORD", regtest.password)
    return regtest


def test_deposit_on_chain_not_booked_is_an_excess_explained_by_the_transfer(
    engine: Engine, chain_env: RegtestNode, tmp_path: Path
) -> None:
    from tests.test_chains import custody_addresses

    [address] = custody_addresses(chain_env, 1)
    hot = "custody:customer:hot:BTC"
    _load(engine, _chart({hot: [address]}))
    booked = _fund(chain_env, address, "1.0")
    missed = _fund(chain_env, address, "0.3")
    post(engine, [_deposit("b1", "c-1", "1.0", booked, hot, "BTC", "txid")])
    result = service.run(engine, as_of=datetime.now(UTC), evidence_paths=[],
                         chain_config_path=_chain_config(tmp_path, chain_env)).result
    account = next(a for a in result["accounts"] if a["account"] == hot)
    assert (account["ledger"], account["external"], account["difference"]) == (
        "1.00000000", "1.30000000", "0.30000000")
    assert account["facts"]["block_hash"] == chain_env.call("getbestblockhash")
    assert [(b["kind"], b["difference"]) for b in result["breaks"] if b["account"] == hot] == [
        ("excess", "0.30000000")]
    matching = result["matching"][hot]
    assert [i["reference"] for i in matching["unmatched_external"]] == [missed]
    assert (matching["explained"], matching["unexplained"]) == ("0.30000000", "0.00000000")
    again = service.rerun(engine, result["run_id"])
    assert again.same, again.differences


def test_withdrawal_recorded_but_never_broadcast_is_explained_by_the_ledger_side(
    engine: Engine, chain_env: RegtestNode, tmp_path: Path
) -> None:
    from tests.test_chains import custody_addresses

    [address] = custody_addresses(chain_env, 1)
    hot = "custody:customer:hot:BTC"
    _load(engine, _chart({hot: [address]}))
    funded = _fund(chain_env, address, "2.0")
    post(engine, [
        _deposit("b1", "c-1", "2.0", funded, hot, "BTC", "txid"),
        entry("w1", "withdrawal", ("customer:c-1:BTC", hot, "0.5"),
              at="2025-11-25T11:00:00+00:00", metadata={"txid": "f" * 64})])
    result = service.run(engine, as_of=datetime.now(UTC), evidence_paths=[],
                         chain_config_path=_chain_config(tmp_path, chain_env)).result
    assert [(b["kind"], b["difference"]) for b in result["breaks"] if b["account"] == hot] == [
        ("excess", "0.50000000")]
    matching = result["matching"][hot]
    assert [(i["amount"], i["reference"]) for i in matching["unmatched_ledger"]] == [
        ("-0.50000000", "f" * 64)]
    assert matching["unexplained"] == "0.00000000"


def test_a_chain_node_that_is_down_is_exit_3_and_stores_no_run(
    bank_ledger: Engine, tmp_path: Path
) -> None:
    _load(bank_ledger, _chart({"custody:customer:hot:BTC": ["rltc1qdown"]}))
    config = _write(tmp_path, "chains.json", json.dumps({"chains": {"bitcoin": {
        "kind": "bitcoin", "url": "http://127.0.0.1:9"}}}).encode())
    with pytest.raises(EnvironmentFailure, match="unreachable"):
        service.run(bank_ledger, as_of=AS_OF, evidence_paths=[], chain_config_path=config)
    db = bank_ledger.url.render_as_string(hide_password=False)
    down = cli("--db", db, "reconcile", "run", "--as-of", "2025-11-25T23:59:59Z",
               "--chain-config", config)
    assert down.returncode == 3 and "unreachable" in down.stderr
    assert _runs(bank_ledger) == 0
    with pytest.raises(InputError):
        service.rerun(bank_ledger, "run-missing")

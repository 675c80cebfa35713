"""A customer liability is an account with that role (or a suspense account of the customer
pool), never an account whose name starts with `customer:`. With a chart whose codes follow
no naming scheme (`owed:c-9:JPY`, `unidentified:JPY`, custody under `vault:`), coverage,
`report segregation`, `reconcile run` and `verify` give the same numbers, on SQLite and
PostgreSQL.

The ledger worked out here, all JPY (scale 0):

    vault:trust:JPY (customer custody, in trust)   1,000,000 + 50,000 + 200,000 = 1,250,000
    owed:c-9:JPY     (declared customer_liability)  1,000,000 − 3,000 fee        =   997,000
    unidentified:JPY (suspense, customer pool)                                        50,000
    customer:c-1:JPY (implicit customer_liability)                                  200,000
    customer liabilities                                                           1,247,000
    coverage = 1,250,000 − 1,247,000 = 3,000: the fee, company money in the customer pool.

Read by name (the old `customer:`/`suspense:` prefixes) the liabilities would be 200,000 and
the coverage a surplus of 1,050,000 that does not exist.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from ledger.chart import parse_chart
from ledger.model import Account, Pool, Role
from ledger.storage.chart_store import load_chart
from ledger.views import coverage, verify
from reconcile import reports, service
from reconcile.rules.rulebook import parse_rulebook
from tests.camt import statement
from tests.helpers import cli, entry, post

IBAN = "JP12VAULT0000000009999"
VAULT, OWED, UNIDENTIFIED = "vault:trust:JPY", "owed:c-9:JPY", "unidentified:JPY"
AS_OF = datetime(2025, 11, 25, 23, 59, 59, tzinfo=UTC)
AT = "2025-11-25T10:00:00+00:00"
CHART: dict[str, Any] = {
    "assets": [{"code": "JPY", "kind": "fiat", "scale": 0}],
    "accounts": [
        {"code": VAULT, "asset": "JPY", "pool": "customer", "role": "custody",
         "location": "bank_trust", "external": {"iban": IBAN}},
        {"code": OWED, "asset": "JPY", "pool": "customer", "role": "customer_liability",
         "customer": "c-9"},
        {"code": UNIDENTIFIED, "asset": "JPY", "pool": "customer", "role": "suspense"},
        {"code": "income:fees:JPY", "asset": "JPY", "pool": "company", "role": "revenue"},
    ]}
# The fee (3,000) may wait in the customer pool up to 5,000; the reserve floor is set aside.
RULEBOOK = {"name": "own-names", "version": "1", "extends": "jp-fsa",
            "rules": {"SEG-EXCESS": {"tolerance": {"JPY": "5000"}}, "JP-RESERVE": {"floor": "0"}}}


@pytest.fixture
def ledger(engine: Engine) -> Engine:
    load_chart(engine, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    post(engine, [
        entry("d-owed", "deposit", (VAULT, OWED, "1000000"), at=AT),
        entry("d-unknown", "deposit", (VAULT, UNIDENTIFIED, "50000"), at=AT),
        entry("d-c1", "deposit", (VAULT, "customer:c-1:JPY", "200000"), at=AT),
        entry("fee", "fee", (OWED, "income:fees:JPY", "3000"), at=AT),
    ])
    return engine


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _checks(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["rule"], c["asset"]): c for c in document["checks"]}


def test_the_role_decides_never_the_name() -> None:
    owed = Account(OWED, "JPY", Pool.CUSTOMER, Role.CUSTOMER_LIABILITY, customer="c-9")
    suspense = Account(UNIDENTIFIED, "JPY", Pool.CUSTOMER, Role.SUSPENSE)
    named_like_one = Account("customer:fees:JPY", "JPY", Pool.COMPANY, Role.REVENUE)
    custody = Account(VAULT, "JPY", Pool.CUSTOMER, Role.CUSTODY)
    assert (owed.is_customer_liability, suspense.is_customer_liability) == (True, True)
    assert (named_like_one.is_customer_liability, custody.is_customer_liability) == (False, False)
    assert [a.coverage_sign for a in (owed, suspense, named_like_one, custody)] == [-1, -1, 0, 1]


def test_coverage_counts_declared_liabilities_and_suspense_by_role(ledger: Engine) -> None:
    [row] = coverage(ledger, AS_OF).rows
    assert (row.custody_by_location_minor, row.liabilities_minor, row.coverage_minor) == (
        {"bank_trust": 1_250_000}, 1_247_000, 3_000)


def test_segregation_report_agrees_with_coverage(ledger: Engine) -> None:
    book = parse_rulebook(json.dumps(RULEBOOK), "own-names.json")
    report = reports.segregation(ledger, AS_OF, None, book)
    [jpy] = report["assets"]
    assert (jpy["customer_liabilities"], jpy["customer_custody_total"], jpy["coverage"],
            jpy["excess"], jpy["in_trust"]) == ("1247000", "1250000", "3000", "3000", "1250000")
    checks = _checks(report)
    assert (checks["SEG-COVERAGE", "JPY"]["status"], checks["SEG-COVERAGE", "JPY"]["value"]) == (
        "pass", "3000")
    assert checks["SEG-COVERAGE", "JPY"]["numbers"] == {
        "customer_custody": "1250000", "customer_liabilities": "1247000"}
    # 3,000 of company money within the 5,000 tolerance: by name it would be 1,050,000 and fail.
    assert (checks["SEG-EXCESS", "JPY"]["status"], checks["SEG-EXCESS", "JPY"]["value"]) == (
        "pass", "3000")
    assert (checks["JP-FIAT-TRUST", "JPY"]["value"],
            checks["JP-FIAT-TRUST", "JPY"]["threshold"]) == ("1250000", "1247000")


def test_a_reconciliation_run_agrees_with_coverage(ledger: Engine, tmp_path: Path) -> None:
    path = tmp_path / "vault.xml"
    path.write_bytes(statement(IBAN, "JPY", "1250000", "2025-11-25", [
        ("1000000", "E2E-1", "c-9"), ("50000", None, "unknown payer"), ("200000", "E2E-2", "c-1")]))
    book = parse_rulebook(json.dumps(RULEBOOK), "own-names.json")
    outcome = service.run(ledger, as_of=AS_OF, evidence_paths=[str(path)], rulebook=book)
    result = outcome.result
    assert (result["status"], result["breaks"], outcome.problems) == ("clean", [], False)
    [vault] = result["accounts"]
    assert (vault["account"], vault["ledger"], vault["external"], vault["difference"]) == (
        VAULT, "1250000", "1250000", "0")
    checks = _checks(result)
    assert (checks["SEG-COVERAGE", "JPY"]["value"],
            checks["SEG-COVERAGE", "JPY"]["numbers"]["customer_liabilities"]) == ("3000", "1247000")
    assert (checks["SEG-EXCESS", "JPY"]["status"], checks["SEG-EXCESS", "JPY"]["value"]) == (
        "pass", "3000")
    assert service.rerun(ledger, result["run_id"]).same


def test_verify_recomputes_coverage_by_role(ledger: Engine) -> None:
    report = verify(ledger)
    assert (report.ok, report.problems) == (True, [])
    # The stored coverage set behind the ledger's back to what reading liabilities by name
    # would give: verify recomputes 3,000 from the balances, by role, and names the row.
    with ledger.begin() as connection:
        connection.execute(text("UPDATE coverage SET coverage_minor = 1050000 WHERE asset = 'JPY'"))
    [problem] = verify(ledger).problems
    assert (problem.check, problem.subject, problem.detail) == (
        "coverage", "JPY", "stored coverage 1050000, balances give 3000")


def test_the_commands_give_the_same_numbers(ledger: Engine, tmp_path: Path) -> None:
    db = _url(ledger)
    at = AS_OF.isoformat()
    [shown] = json.loads(cli("--db", db, "coverage", "--as-of", at, "--format", "json").stdout)
    assert (shown["customer_liabilities"], shown["coverage"], shown["status"]) == (
        "1247000", "3000", "excess")
    book = tmp_path / "own-names.json"
    book.write_text(json.dumps(RULEBOOK))
    report = cli("--db", db, "report", "segregation", "--as-of", at, "--rulebook", str(book),
                 "--format", "json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["assets"][0]["coverage"] == "3000"
    done = cli("--db", db, "reconcile", "run", "--as-of", at, "--rulebook", str(book),
               "--format", "json")
    # No evidence: SEG-EXTERNAL fails for the vault, and only that.
    assert done.returncode == 1, done.stderr
    checks = _checks(json.loads(done.stdout))
    assert checks["SEG-COVERAGE", "JPY"]["value"] == "3000"
    assert checks["SEG-EXCESS", "JPY"]["status"] == "pass"
    assert {rule for (rule, _), c in checks.items() if c["status"] == "fail"} == {"SEG-EXTERNAL"}
    verified = cli("--db", db, "verify", "--format", "json")
    assert (verified.returncode, json.loads(verified.stdout)["problems"]) == (0, [])

"""The `segledger` command through a subprocess: CONTRACT.md's interface and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger import service
from ledger.chart import parse_chart
from ledger.storage.chart_store import load_chart
from ledger.storage.reading import close_period
from tests.helpers import CHART, cli, deposit, entry, post, snapshot, write_jsonl

TRUST, HOT = "custody:customer:trust:JPY", "custody:customer:hot:BTC"


@pytest.fixture
def ledger(engine: Engine) -> Engine:
    load_chart(engine, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    return engine


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_init_twice_is_harmless_and_loads_a_chart(db_url: str, tmp_path: Path) -> None:
    chart = tmp_path / "chart.json"
    chart.write_text(json.dumps(CHART))
    first = cli("--db", db_url, "init", "--chart", str(chart))
    assert first.returncode == 0, first.stderr
    assert f"{len(CHART['assets'])} assets and {len(CHART['accounts'])} accounts added" in first.stdout
    second = cli("--db", db_url, "init", "--chart", str(chart))
    assert second.returncode == 0, second.stderr
    assert "0 assets and 0 accounts added" in second.stdout


def test_post_balances_and_verify(ledger: Engine, tmp_path: Path) -> None:
    db = _url(ledger)
    batch = write_jsonl(tmp_path / "day.jsonl", [
        deposit("d1", "c-001", "100000"), deposit("d2", "c-001", "0.5", asset="BTC"),
        entry("f1", "fee", ("customer:c-001:JPY", "revenue:fees:JPY", "500"))])
    posted = cli("--db", db, "post", str(batch))
    assert posted.returncode == 0, posted.stderr
    assert posted.stdout.strip() == "posted 3 entries (6 postings), skipped 0 duplicates"
    again = cli("--db", db, "post", str(batch))
    assert again.stdout.strip() == "posted 0 entries (0 postings), skipped 3 duplicates"

    shown = cli("--db", db, "balances", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == [
        {"account": HOT, "asset": "BTC", "balance": "0.50000000"},
        {"account": TRUST, "asset": "JPY", "balance": "100000"},
        {"account": "customer:c-001:BTC", "asset": "BTC", "balance": "0.50000000"},
        {"account": "customer:c-001:JPY", "asset": "JPY", "balance": "99500"},
        {"account": "revenue:fees:JPY", "asset": "JPY", "balance": "500"},
    ]
    earlier = cli("--db", db, "balances", "--as-of", "2025-11-24T00:00:00+09:00", "--format", "json")
    assert json.loads(earlier.stdout) == []
    csv = cli("--db", db, "balances", "--prefix", "customer:", "--format", "csv")
    assert csv.stdout.splitlines() == ["account,asset,balance", "customer:c-001:BTC,BTC,0.50000000",
                                       "customer:c-001:JPY,JPY,99500"]
    verified = cli("--db", db, "verify", "--format", "json")
    assert verified.returncode == 0, verified.stdout
    report = json.loads(verified.stdout)
    assert (report["ok"], report["entries_checked"], report["postings_checked"]) == (True, 3, 6)
    cover = cli("--db", db, "coverage", "--format", "json")
    assert [(r["asset"], r["coverage"], r["status"]) for r in json.loads(cover.stdout)] == [
        ("BTC", "0.00000000", "exact"), ("JPY", "500", "excess")]


def test_post_reads_stdin(ledger: Engine) -> None:
    done = cli("--db", _url(ledger), "post", "-",
               stdin=json.dumps(deposit("d1", "c-1", "5")) + "\n")
    assert done.returncode == 0, done.stderr
    assert "posted 1 entries (2 postings)" in done.stdout


def test_unreachable_database_is_exit_3() -> None:
    failed = cli("--db", "postgresql://segledger@127.0.0.1:1/none", "balances")
    assert failed.returncode == 3
    assert failed.stderr.startswith("error: database unreachable")


def test_database_without_schema_is_exit_2(tmp_path: Path) -> None:
    failed = cli("--db", f"sqlite:///{tmp_path / 'empty.db'}", "balances")
    assert failed.returncode == 2
    assert "run `segledger init` first" in failed.stderr


def test_verify_exit_1_names_the_broken_entry(ledger: Engine, tmp_path: Path) -> None:
    from sqlalchemy import text

    post(ledger, [deposit("d1", "c-001", "100")])
    with ledger.begin() as connection:
        connection.execute(text("UPDATE balances SET balance_minor = 7 WHERE balance_minor = 100"
                                " AND account_id = (SELECT id FROM accounts WHERE code = :c)"),
                           {"c": TRUST})
    failed = cli("--db", _url(ledger), "verify")
    assert failed.returncode == 1
    assert f"BROKEN stored_balance: {TRUST}: stored balance 7" in failed.stdout


def test_demo_runs_twice_in_its_own_file(tmp_path: Path) -> None:
    first = cli("demo", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Refused, as it must be" in first.stdout and "segregation firewall" in first.stdout
    assert (tmp_path / "segledger-demo" / "ledger.db").exists()
    assert not (tmp_path / "segledger.db").exists()
    second = cli("demo", cwd=tmp_path)
    assert "posted 0 entries (0 postings), skipped" in second.stdout
    verified = cli("--db", "sqlite:///segledger-demo/ledger.db", "verify", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout


def test_demo_ignores_the_configured_ledger(tmp_path: Path) -> None:
    """SEGLEDGER_DATABASE_URL names the exchange's own ledger: the demo never touches it."""
    ledger = tmp_path / "production.db"
    run = cli("demo", cwd=tmp_path, env={"SEGLEDGER_DATABASE_URL": f"sqlite:///{ledger}"})
    assert run.returncode == 0, run.stderr
    assert not ledger.exists()


def test_demo_refuses_a_ledger_that_is_not_a_demo(db_url: str, tmp_path: Path) -> None:
    assert cli("--db", db_url, "init").returncode == 0
    chart = tmp_path / "chart.json"
    chart.write_text(json.dumps(CHART))
    assert cli("--db", db_url, "chart", "load", str(chart)).returncode == 0
    engine = service.connect(db_url)
    before = snapshot(engine)
    refused = cli("--db", db_url, "demo", cwd=tmp_path)
    assert refused.returncode == 2, refused.stdout
    assert refused.stderr.strip().splitlines() == [
        "error: --db: this database holds a ledger that is not the demo's (assets, accounts not "
        "empty); the demo writes only into an empty database or its own file (run it without "
        "--db)"]
    assert snapshot(engine) == before
    assert not (tmp_path / "segledger-demo").exists()


def test_demo_runs_on_an_empty_database_it_is_pointed_at(db_url: str, tmp_path: Path) -> None:
    first = cli("--db", db_url, "demo", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = cli("--db", db_url, "demo", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "posted 0 entries (0 postings), skipped" in again.stdout


# One case per reason a batch is refused: the bad entry sits on line 7 of the file, after six
# valid ones (two of them opening new customer accounts), so "nothing written" is tested too.
BAD_LINES: dict[str, tuple[Any, str, str]] = {
    "unknown_account": (entry("x", "deposit", ("custody:customer:nowhere:JPY", "customer:c-1:JPY",
                                                 "1")), "lines[0].debit", "unknown account"),
    "unknown_asset": (entry("x", "deposit", (TRUST, "customer:c-1:XYZ", "1")),
                      "lines[0].credit", "unknown asset"),
    "mixed_assets": (entry("x", "deposit", (HOT, "customer:c-1:JPY", "1")),
                     "lines[0].credit", "mixed assets in one line"),
    "zero_amount": (deposit("x", "c-1", "0"), "lines[0].amount", "greater than zero"),
    "negative_amount": (deposit("x", "c-1", "-5"), "lines[0].amount", "greater than zero"),
    "too_many_decimals": (deposit("x", "c-1", "0.123456789", asset="BTC"), "lines[0].amount",
                          "has 9 decimals, the asset allows 8"),
    "amount_out_of_range": (deposit("x", "c-1", "1" + "0" * 80), "lines[0].amount",
                            "outside the database's range"),
    "float_amount": ({**deposit("x", "c-1", "1"), "lines": [
        {"debit": TRUST, "credit": "customer:c-1:JPY", "amount": 0.5}]},
        "lines[0].amount", "decimal string"),
    "unbalanced_line": ({**deposit("x", "c-1", "1"), "lines": [{"debit": TRUST, "amount": "1"}]},
                        "lines[0].credit", "missing: this field is required"),
    "empty_entry": ({**deposit("x", "c-1", "1"), "lines": []}, "lines", "at least one line"),
    "key_reused": (deposit("base-1", "c-1", "2"), "key", "already posted with other content"),
    "reversal_of_unknown": ({"key": "x", "type": "reversal", "effective_at": "2025-11-25T10:00:00Z",
                             "reverses": "nope"}, "reverses", "not in the ledger"),
    "reversal_twice": ({"key": "x", "type": "reversal", "effective_at": "2025-11-25T10:00:00Z",
                        "reverses": "base-2"}, "reverses", "already reversed"),
    "closed_period": (deposit("x", "c-1", "1", at="2025-11-19T12:00:00+09:00"), "effective_at",
                      "closed period"),
    "no_utc_offset": (deposit("x", "c-1", "1", at="2025-11-25T09:00:00"), "effective_at",
                      "has no UTC offset"),
    "unknown_type": ({**deposit("x", "c-1", "1"), "type": "gift"}, "type",
                     '"gift" is not one of: deposit, withdrawal'),
    "unknown_field": ({**deposit("x", "c-1", "1"), "amount": "1"}, "amount",
                      "unknown field (the fields here are: key, type"),
    "firewall": (entry("x", "adjustment", ("expense:rent:JPY", TRUST, "1")), "lines",
                 "segregation firewall"),
    "below_zero": (entry("x", "withdrawal", ("customer:c-1:JPY", TRUST, "5")), "lines",
                   "customer:c-1:JPY would fall below zero"),
    "malformed_json": ('{"key": "x", "type": ', "", "malformed JSON"),
    "duplicate_json_key": ('{"key": "x", "key": "y", "type": "deposit", "effective_at": '
                           '"2025-11-25T09:00:00Z", "lines": []}', "", "appears twice"),
    "nan_in_metadata": ('{"key": "x", "type": "deposit", "effective_at": "2025-11-25T09:00:00Z",'
                        ' "metadata": {"rate": NaN}, "lines": []}', "", "NaN"),
    "nul_in_memo": ({**deposit("x", "c-1", "1"), "memo": "a\u0000b"}, "", "NUL"),
    "lone_surrogate": ('{"key": "x", "type": "deposit", "effective_at": "2025-11-25T09:00:00Z",'
                       ' "memo": "\\ud800", "lines": []}', "", "surrogate"),
    "huge_integer": ('{"key": "x", "metadata": {"n": ' + "9" * 5000 + "}}", "", "unreadable JSON"),
    "deep_nesting": ('{"key": "x", "metadata": ' + "[" * 100 + "]" * 100 + "}", "", "nested deeper"),
    "exponent_amount": (deposit("x", "c-1", "1e999999999"), "lines[0].amount",
                        "not a plain decimal number"),
    "unix_time": ({**deposit("x", "c-1", "1"), "effective_at": 1764000000}, "effective_at",
                  "ISO 8601"),
    "year_one": (deposit("x", "c-1", "1", at="0001-01-01T00:00:00+09:00"), "effective_at",
                 "between 1900 and 2999"),
    "newline_in_account": (entry("x", "deposit", (TRUST, "customer:c-1:JPY\n", "1")),
                           "lines[0].credit", '"customer:c-1:JPY\\n" is not an account code: '),
    "not_an_object": ("[1, 2]", "", "must be a JSON object"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_line_7_is_exit_2_naming_it_and_writes_nothing(
    case: str, ledger: Engine, tmp_path: Path
) -> None:
    post(ledger, [deposit("base-1", "c-1", "1"), deposit("base-2", "c-1", "1"),
                  {"key": "base-3", "type": "reversal", "effective_at": "2025-11-25T10:00:00Z",
                   "reverses": "base-2"}])
    close_period(ledger, datetime(2025, 11, 20, tzinfo=UTC), "auditor", None)
    bad, field, reason = BAD_LINES[case]
    good = [deposit(f"ok-{n}", f"new-{n % 2}", "10") for n in range(6)]
    path = tmp_path / "batch.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in good)
                    + (bad if isinstance(bad, str) else json.dumps(bad)) + "\n"
                    + json.dumps(deposit("ok-after", "c-1", "1")) + "\n")
    before = snapshot(ledger)
    refused = cli("--db", _url(ledger), "post", str(path))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stdout == ""
    lines = refused.stderr.splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith(f"error: {path}:7: {field + ': ' if field else ''}"), lines[0]
    assert reason in lines[0]
    assert snapshot(ledger) == before


def test_chart_that_redefines_an_account_is_exit_2(ledger: Engine, tmp_path: Path) -> None:
    changed = json.loads(json.dumps(CHART))
    changed["accounts"][2]["pool"] = "company"
    changed["accounts"][2]["purpose"] = "operating"
    path = tmp_path / "chart.json"
    path.write_text(json.dumps(changed, indent=2))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1)
                if '"custody:customer:cold:BTC"' in text)
    before = snapshot(ledger)
    refused = cli("--db", _url(ledger), "chart", "load", str(path))
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"error: {path}:{line}: accounts.pool: redefines account "
                                     "custody:customer:cold:BTC")
    assert snapshot(ledger) == before


@pytest.mark.parametrize(("mutate", "field", "reason"), [
    (lambda c: c["accounts"][0].update(purpose="guarantee"), "accounts[0]",
     "purpose guarantee does not belong to the customer pool"),
    (lambda c: c["accounts"][0].pop("location"), "accounts[0]", "needs a location"),
    (lambda c: c["assets"][0].update(scale=40), "assets[0].scale", "must be at most 36, not 40"),
    (lambda c: c["accounts"][5].update(role="customer_liability"), "accounts[5]",
     "cannot be in the company pool"),
    (lambda c: c["accounts"].append(dict(c["accounts"][0], external={})), "accounts",
     "defined twice, differently"),
    (lambda c: c["accounts"].append({"code": "customer:c-9:BTC", "asset": "JPY",
                                     "pool": "customer", "role": "customer_liability",
                                     "customer": "c-9"}), "accounts", "names a customer account"),
])
def test_invalid_chart_is_exit_2_naming_the_field(
    mutate: Any, field: str, reason: str, migrated_db_url: str, tmp_path: Path
) -> None:
    chart = json.loads(json.dumps(CHART))
    mutate(chart)
    path = tmp_path / "chart.json"
    path.write_text(json.dumps(chart, indent=2))
    refused = cli("--db", migrated_db_url, "init", "--chart", str(path))
    assert refused.returncode == 2
    assert f"{field}: " in refused.stderr and reason in refused.stderr, refused.stderr


def test_yaml_chart_with_values_json_cannot_hold_is_exit_2(migrated_db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "chart.yaml"
    path.write_text("assets:\n  - {code: JPY, kind: fiat, scale: 0}\naccounts:\n"
                    "  - {code: 'custody:customer:trust:JPY', asset: JPY, pool: customer,\n"
                    "     role: custody, location: bank_trust, external: {opened: 2025-01-01}}\n")
    refused = cli("--db", migrated_db_url, "init", "--chart", str(path))
    assert refused.returncode == 2
    assert "date is not a JSON value" in refused.stderr


def test_a_yaml_chart_loads_like_its_json(migrated_db_url: str, tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "chart.yaml"
    path.write_text(yaml.safe_dump(CHART))
    loaded = cli("--db", migrated_db_url, "init", "--chart", str(path))
    assert loaded.returncode == 0, loaded.stderr
    assert f"{len(CHART['accounts'])} accounts added" in loaded.stdout


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    """`segledger … | head`: the closed pipe is the reader's choice, not a bug (no exit 70)."""
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = service.init(db)
    load_chart(engine, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    post(engine, [deposit(f"d{n}", f"c-{n:05d}", "1") for n in range(3000)])
    process = subprocess.Popen([sys.executable, "-m", "segledger", "--db", db, "balances",
                                "--format", "json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(10)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "Traceback" not in stderr

"""The reconciliation, report and insurance commands as a back-office job and an auditor use
them, through the real `segledger` command on SQLite and PostgreSQL: every --format is what it
says (CSV of flat cells, complete JSON), read-only commands exit 0, history filters, the age of
a break in days, an export that never writes half a directory, and help for every option."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger.chart import parse_chart
from ledger.storage.chart_store import load_chart
from reconcile import service
from reconcile.rules.rulebook import parse_rulebook
from tests.camt import statement
from tests.helpers import cli, entry, post

IBAN = "JP12TRUST0000001234567"
TRUST = "custody:customer:trust:JPY"
FIRST = datetime(2025, 11, 25, 23, 59, 59, tzinfo=UTC)
SECOND = datetime(2025, 11, 28, 23, 59, 59, tzinfo=UTC)
THIRD = datetime(2025, 11, 29, 23, 59, 59, tzinfo=UTC)
# Without trades only the formula's floor would require a reserve: with it at zero, the
# short statement's runs fail the segregation rules and nothing else.
NO_FLOOR = json.dumps({"name": "no-floor", "version": "1", "extends": "jp-fsa",
                       "rules": {"JP-RESERVE": {"floor": "0"}}})


CHART = {"assets": [{"code": "JPY", "kind": "fiat", "scale": 0}],
         "accounts": [{"code": TRUST, "asset": "JPY", "pool": "customer", "role": "custody",
                       "location": "bank_trust", "external": {"iban": IBAN}}]}


@dataclass(frozen=True)
class Runs:
    db: str
    tmp: Path
    first: str  # breaks (a 330 JPY shortfall), as of FIRST
    second: dict[str, Any]  # the same shortfall as of SECOND: `reconcile run --format json`
    third: str  # clean, JP-RESERVE fails (the jp-fsa floor), as of THIRD


def _statement(tmp: Path, name: str, balance: str, on: datetime) -> str:
    path = tmp / name
    path.write_bytes(statement(IBAN, "JPY", balance, on.date().isoformat(), []))
    return str(path)


@pytest.fixture
def runs(engine: Engine, tmp_path: Path) -> Runs:
    """Three runs on three as-of dates: breaks, the same break three days later, clean."""
    load_chart(engine, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    post(engine, [entry(key, "deposit", (TRUST, f"customer:{who}:JPY", amount),
                        at="2025-11-25T10:00:00+00:00")
                  for key, who, amount in (("d1", "c-1", "200000"), ("d2", "c-2", "50000"))])
    book = parse_rulebook(NO_FLOOR, "no-floor.json")
    first = service.run(engine, as_of=FIRST, rulebook=book, evidence_paths=[
        _statement(tmp_path, "short-1.xml", "249670", FIRST)]).result["run_id"]
    db = engine.url.render_as_string(hide_password=False)
    (tmp_path / "no-floor.json").write_text(NO_FLOOR)
    done = cli("--db", db, "reconcile", "run", "--as-of", SECOND.isoformat(), "--evidence",
               _statement(tmp_path, "short-2.xml", "249670", SECOND),
               "--rulebook", str(tmp_path / "no-floor.json"), "--format", "json")
    assert done.returncode == 1, done.stderr  # a run keeps exit 1 on breaks
    third = service.run(engine, as_of=THIRD, evidence_paths=[
        _statement(tmp_path, "clean.xml", "250000", THIRD)]).result["run_id"]
    return Runs(db, tmp_path, first, json.loads(done.stdout), third)


def _ok(*args: str, code: int = 0) -> str:
    done = cli(*args)
    assert done.returncode == code, (args, done.returncode, done.stderr)
    return done.stdout


def _flat_csv(text: str) -> list[dict[str, str]]:
    """The rows of a CSV whose every cell is flat: a value, never a dict or list as JSON."""
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows, text
    for row in rows:
        assert None not in row and None not in row.values(), row  # as many cells as columns
        for column, cell in row.items():
            assert not cell.startswith(("{", "[")), (column, cell)
            assert "': " not in cell, (column, cell)  # nor a Python dict's text
    return rows


def _refused(done: subprocess.CompletedProcess[str], *phrases: str) -> None:
    """Exit 2, nothing on stdout, one line on stderr holding each phrase."""
    assert done.returncode == 2, (done.returncode, done.stdout[:300], done.stderr)
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    for phrase in phrases:
        assert phrase in done.stderr, done.stderr


def test_a_break_is_aged_in_days_from_the_as_of_of_the_run_where_it_first_appeared(
    runs: Runs
) -> None:
    expected = (SECOND - FIRST).days
    assert expected == 3
    [found] = runs.second["breaks"]
    assert (found["account"], found["kind"], found["difference"]) == (TRUST, "shortfall", "-330")
    assert (found["open_since"], found["age_days"]) == (runs.first, expected)
    shown = json.loads(_ok("--db", runs.db, "reconcile", "show", runs.first, "--format", "json"))
    assert [(b["open_since"], b["age_days"]) for b in shown["breaks"]] == [(runs.first, 0)]
    # Ages are not stored: the run made before is unchanged, and reruns compare equal.
    for run_id in (runs.first, runs.second["run_id"]):
        again = json.loads(_ok("--db", runs.db, "reconcile", "rerun", run_id, "--format", "json"))
        assert again["same"] is True, again["differences"]
    assert again["result"] == runs.second


def test_show_exits_0_on_a_run_with_breaks_in_every_format(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    run_id = runs.second["run_id"]
    document = json.loads(_ok("--db", runs.db, "reconcile", "show", run_id, "--format", "json"))
    assert document == runs.second  # `run` and `show` print the same complete document
    assert set(document) >= {"run_id", "as_of", "created_at", "status", "rulebook", "evidence",
                             "accounts", "breaks", "checks", "matching"}
    assert document["status"] == "breaks"
    assert {(c["rule"], c["status"]) for c in document["checks"]} >= {("SEG-COVERAGE", "fail")}

    table = _ok("--db", runs.db, "reconcile", "show", run_id)
    assert run_id in table and "shortfall" in table and "-330" in table
    assert "250,000" in table  # the ledger side, with thousands separators in a table

    rows = _flat_csv(_ok("--db", runs.db, "reconcile", "show", run_id, "--format", "csv"))
    assert [r["section"] for r in rows][:2] == ["run", "accounts"]
    assert {r["section"] for r in rows} == {"run", "accounts", "breaks", "checks"}
    [run] = [r for r in rows if r["section"] == "run"]
    assert (run["run_id"], run["status"]) == (run_id, "breaks")
    [found] = [r for r in rows if r["section"] == "breaks"]
    assert (found["account"], found["difference"], found["open_since"], found["age_days"]) == (
        TRUST, "-330", runs.first, "3")
    [trust] = [r for r in rows if r["section"] == "accounts" and r["account"] == TRUST]
    assert (trust["ledger"], trust["external"], trust["difference"]) == ("250000", "249670",
                                                                         "-330")
    assert trust["fact_statement_id"]  # the statement's facts, one column each
    coverage = next(r for r in rows if r["section"] == "checks" and r["rule"] == "SEG-COVERAGE"
                    and r["asset"] == "JPY")
    assert (coverage["status"], coverage["number_customer_custody"],
            coverage["number_customer_liabilities"]) == ("fail", "249670", "250000")

    # A run in CSV: the same layout and nothing else on stdout; exit 1 (breaks) as ever. The
    # clean run in between closed the break, so this one is new again: open since this run.
    again = cli("--db", runs.db, "reconcile", "run", "--as-of", THIRD.isoformat(), "--evidence",
                str(runs.tmp / "short-2.xml"), "--format", "csv")
    assert again.returncode == 1, again.stderr
    rows = _flat_csv(again.stdout)
    assert {r["section"] for r in rows} == {"run", "accounts", "breaks", "checks"}
    [run] = [r for r in rows if r["section"] == "run"]
    [found] = [r for r in rows if r["section"] == "breaks"]
    assert (found["open_since"], found["age_days"]) == (run["run_id"], "0")


def test_history_filters_return_the_runs_asked_for_newest_first(runs: Runs) -> None:
    second = runs.second["run_id"]

    def ids(*filters: str) -> list[str]:
        listed = json.loads(_ok("--db", runs.db, "reconcile", "history", *filters,
                                "--format", "json"))
        return [run["run_id"] for run in listed]

    assert ids() == [runs.third, second, runs.first]
    assert ids("--status", "clean") == [runs.third]
    assert ids("--status", "breaks") == [second, runs.first]
    assert ids("--since", "2025-11-28T00:00:00+00:00") == [runs.third, second]
    assert ids("--until", "2025-11-28T00:00:00+09:00") == [runs.first]
    assert ids("--since", SECOND.isoformat(), "--until", SECOND.isoformat()) == [second]
    assert ids("--rule", "SEG-COVERAGE") == [second, runs.first]
    assert ids("--rule", "JP-RESERVE") == [runs.third]
    assert ids("--rule", "JP-COLD-95") == []
    assert ids("--status", "breaks", "--limit", "1") == [second]

    _refused(cli("--db", runs.db, "reconcile", "history", "--rule", "JP-COLD-99"),
             "--rule: unknown rule", "JP-COLD-99")
    _refused(cli("--db", runs.db, "reconcile", "history", "--status", "broken"), "--status",
             "broken")


def test_history_shows_breaks_failed_checks_and_the_oldest_break_in_every_format(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = runs.second["run_id"]
    listed = {run["run_id"]: run for run in json.loads(
        _ok("--db", runs.db, "reconcile", "history", "--format", "json"))}
    assert (listed[second]["as_of"], listed[second]["status"], listed[second]["breaks"],
            listed[second]["oldest_break_age_days"]) == (SECOND.isoformat(), "breaks", 1, 3)
    assert "SEG-COVERAGE" in listed[second]["failed_rules"]
    assert listed[second]["failed_checks"] >= len(listed[second]["failed_rules"])
    assert (listed[runs.third]["breaks"], listed[runs.third]["oldest_break_age_days"],
            listed[runs.third]["failed_rules"]) == (0, None, ["JP-RESERVE"])

    rows = {row["run_id"]: row for row in _flat_csv(
        _ok("--db", runs.db, "reconcile", "history", "--format", "csv"))}
    assert list(rows) == [runs.third, second, runs.first]
    assert (rows[second]["oldest_break_age_days"], rows[runs.first]["oldest_break_age_days"],
            rows[runs.third]["oldest_break_age_days"]) == ("3", "0", "")
    assert rows[second]["failed_rules"].split() == listed[second]["failed_rules"]

    # A table written to a pipe takes $COLUMNS as its width: wide enough, no id is folded.
    monkeypatch.setenv("COLUMNS", "200")
    table = _ok("--db", runs.db, "reconcile", "history")
    assert all(run_id in table for run_id in rows), table


def test_reports_and_the_insurance_register_in_csv_are_flat(runs: Runs) -> None:
    at = THIRD.isoformat()
    rows = _flat_csv(_ok("--db", runs.db, "report", "segregation", "--as-of", at,
                         "--format", "csv"))
    assert {r["section"] for r in rows} == {"assets", "checks"}
    [jpy] = [r for r in rows if r["section"] == "assets" and r["asset"] == "JPY"]
    assert (jpy["customer_liabilities"], jpy["custody_bank_trust"], jpy["coverage"]) == (
        "250000", "250000", "0")
    assert "customer_custody" not in jpy  # spread over custody_<location>, not one JSON cell
    assert any(r["section"] == "checks" and r["rule"] == "SEG-COVERAGE" for r in rows)

    reserve = cli("--db", runs.db, "report", "reserve", "--as-of", at, "--format", "csv")
    assert reserve.returncode == 1, reserve.stderr  # nothing held against the jp-fsa floor
    rows = _flat_csv(reserve.stdout)
    [summary] = [r for r in rows if r["section"] == "reserve"]
    assert (summary["currency"], summary["required"], summary["parameter_floor"]) == (
        "JPY", "2000000000", "2000000000")
    [check] = [r for r in rows if r["section"] == "checks"]
    assert (check["rule"], check["status"]) == ("JP-RESERVE", "fail")

    register = runs.tmp / "register.json"
    register.write_text(json.dumps({"policies": [{
        "policy_id": "P-1", "insurer": "Tokio Marine", "currency": "JPY", "limit": "1000000",
        "covered_share": "0.8", "period_start": "2025-04-01T00:00:00+09:00",
        "period_end": "2026-04-01T00:00:00+09:00"}]}))
    _ok("--db", runs.db, "insurance", "load", str(register))
    [policy] = _flat_csv(_ok("--db", runs.db, "--tz", "Asia/Tokyo", "insurance", "list",
                             "--format", "csv"))
    assert (policy["policy_id"], policy["limit"], policy["period_start"]) == (
        "P-1", "1000000", "2025-04-01T00:00:00+09:00")
    [listed] = json.loads(_ok("--db", runs.db, "insurance", "list", "--format", "json"))
    assert (listed["policy_id"], listed["limit"], listed["covered_share"]) == ("P-1", "1000000",
                                                                               "0.8")


def _tree(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def test_export_writes_a_new_directory_whole_or_not_at_all(runs: Runs) -> None:
    run_id = runs.second["run_id"]
    place = runs.tmp / "exports"
    taken = place / "taken"
    taken.mkdir(parents=True)
    (place / "file").write_text("mine")
    before = _tree(place)
    for existing in (taken, place / "file"):
        _refused(cli("--db", runs.db, "reconcile", "export", run_id, "--out", str(existing)),
                 f"--out: {existing} already exists; choose a new directory")
    _refused(cli("--db", runs.db, "reconcile", "export", "run-nope", "--out",
                 str(place / "new")), "RUN_ID: no reconciliation run", "run-nope")
    assert _tree(place) == before  # nothing written, no partial directory beside them
    assert (place / "file").read_text() == "mine"

    out = place / "audit"
    done = cli("--db", runs.db, "reconcile", "export", run_id, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert _tree(place) == sorted([*before, *(f"audit/{name}" for name in _tree(out)),
                                   "audit"])  # and nothing else left beside it
    assert json.loads((out / "result.json").read_text()) == runs.second
    assert (out / "evidence" / "000-short-2.xml").read_bytes() == (
        runs.tmp / "short-2.xml").read_bytes()
    [found] = _flat_csv((out / "breaks.csv").read_text())
    assert (found["account"], found["open_since"], found["age_days"]) == (TRUST, runs.first, "3")
    accounts = _flat_csv((out / "accounts.csv").read_text())
    assert accounts[0]["account"] and "section" not in accounts[0]
    assert {r["rule"] for r in _flat_csv((out / "checks.csv").read_text())} >= {"SEG-COVERAGE"}


def test_unknown_run_id_is_exit_2_for_show_and_rerun(runs: Runs) -> None:
    for command in ("show", "rerun"):
        _refused(cli("--db", runs.db, "reconcile", command, "run-nope"),
                 "RUN_ID: no reconciliation run", "run-nope")


COMMANDS = [("reconcile", "run"), ("reconcile", "history"), ("reconcile", "show"),
            ("reconcile", "rerun"), ("reconcile", "export"), ("report", "segregation"),
            ("report", "reserve"), ("insurance", "load"), ("insurance", "list")]


def _help_rows(text: str) -> Iterator[list[str]]:
    """The rows of the Options and Arguments boxes, [name, type, help…]; not the lines a
    long help wraps onto, which start far to the right."""
    for line in text.splitlines():
        if not line.strip().startswith("│"):
            continue
        inside = line.strip().strip("│").rstrip()
        name = inside.lstrip(" *")
        if name and len(inside) - len(name) <= 8:
            yield re.split(r"\s{2,}", name)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_says_what_the_command_and_every_option_are_for(command: tuple[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "segledger", *command, "--help"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "400"})
    assert done.returncode == 0, done.stderr
    after_usage = done.stdout.partition("Usage:")[2].split("\n", 1)[1]
    description = after_usage.split("╭", 1)[0]
    assert description.strip(), done.stdout  # the command's own help
    rows = list(_help_rows(done.stdout))
    assert any(row[0].startswith("--") for row in rows), done.stdout
    for row in rows:
        described = re.sub(r"\[(default: [^\]]*|required)\]", "", " ".join(row[2:])).strip()
        assert described, f"{' '.join(command)} {row[0]} has no help"

"""Reruns of runs stored by other versions of the evidence readers, on SQLite and PostgreSQL.

Every run records the evidence reader version that read its evidence. A rerun of a run stored
by another version (or by one that recorded none) reads the stored evidence again with today's
readers: when the result is otherwise the same, it is the same (exit 0); when it differs, the
differences are listed after a plain note that they may come from parser fixes (exit 1). The
old runs here are written as an older segledger would have stored them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger.chart import parse_chart
from ledger.errors import InputError
from ledger.storage.chart_store import load_chart
from reconcile import service, store
from reconcile.engine import EVIDENCE_READER_VERSION
from reconcile.rules.rulebook import parse_rulebook
from tests.camt import statement
from tests.helpers import cli, entry, post

IBAN = "JP12TRUST0000001234567"
TRUST = "custody:customer:trust:JPY"
AS_OF = datetime(2025, 11, 25, 23, 59, 59, tzinfo=UTC)
NO_NOTE_BEFORE_2 = ("stored by an evidence reader that recorded no version (before version 2), "
                    "this is version 2: differences may come from parser fixes")


@pytest.fixture
def stored(engine: Engine, tmp_path: Path) -> tuple[Engine, store.StoredRun]:
    """A clean run of today's readers: 250,000 JPY in trust, a statement saying so."""
    chart = {"assets": [{"code": "JPY", "kind": "fiat", "scale": 0}],
             "accounts": [{"code": TRUST, "asset": "JPY", "pool": "customer", "role": "custody",
                           "location": "bank_trust", "external": {"iban": IBAN}}]}
    load_chart(engine, parse_chart(json.dumps(chart), "chart.json"), "chart.json")
    post(engine, [entry("d1", "deposit", (TRUST, "customer:c-1:JPY", "250000"),
                        at="2025-11-25T10:00:00+00:00")])
    path = tmp_path / "s.xml"
    path.write_bytes(statement(IBAN, "JPY", "250000", "2025-11-25", []))
    book = parse_rulebook(json.dumps({"name": "no-floor", "version": "1", "extends": "jp-fsa",
                                      "rules": {"JP-RESERVE": {"floor": "0"}}}), "test")
    result = service.run(engine, as_of=AS_OF, evidence_paths=[str(path)], rulebook=book).result
    assert (result["status"], result["evidence_reader_version"]) == ("clean", "2")
    with engine.connect() as connection:
        run = store.load_run(connection, result["run_id"])
    assert run is not None
    return engine, run


def _store_as_older(engine: Engine, run: store.StoredRun, run_id: str,
                    change: dict[str, Any]) -> str:
    """`run` stored again under `run_id` as an older segledger would have: its result with
    `change` applied (a key set to None is left out), its evidence as it was."""
    result = json.loads(run.result)
    result["run_id"] = run_id
    for key, value in change.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    text = service.canonical(result)
    with engine.begin() as connection:
        evidence = store.load_evidence(connection, run.seq)
        store.save_run(connection, replace(run, run_id=run_id, result=text,
                                           result_sha256=store.sha256_text(text)),
                       evidence, result["breaks"])
    return run_id


def _read_otherwise(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The accounts as a reader that read the statement differently would have stored them."""
    [account] = json.loads(json.dumps(result["accounts"]))
    account.update(external="249000", difference="-1000")
    return [account]


def test_every_run_records_the_reader_version_and_reruns_the_same(
        stored: tuple[Engine, store.StoredRun]) -> None:
    engine, run = stored
    again = service.rerun(engine, run.run_id)
    assert (again.same, again.differences, again.stored_reader_version) == (True, [], "2")
    assert again.outcome.result["evidence_reader_version"] == EVIDENCE_READER_VERSION == "2"


def test_a_run_without_a_version_whose_result_is_otherwise_the_same_is_the_same(
        stored: tuple[Engine, store.StoredRun]) -> None:
    engine, run = stored
    old = _store_as_older(engine, run, "run-older-same", {"evidence_reader_version": None})
    again = service.rerun(engine, old)
    assert (again.same, again.differences, again.stored_reader_version) == (True, [], None)


def test_a_run_without_a_version_that_differs_says_the_readers_changed(
        stored: tuple[Engine, store.StoredRun]) -> None:
    engine, run = stored
    result = json.loads(run.result)
    old = _store_as_older(engine, run, "run-older-differs",
                          {"evidence_reader_version": None, "accounts": _read_otherwise(result)})
    again = service.rerun(engine, old)
    assert again.same is False
    assert again.differences[0] == NO_NOTE_BEFORE_2
    assert [d.split(":")[0] for d in again.differences[1:]] == ["accounts"]
    # Through the command: the note and the differences, exit 1.
    db = engine.url.render_as_string(hide_password=False)
    table = cli("--db", db, "reconcile", "rerun", old)
    assert table.returncode == 1, table.stderr
    assert f"rerun of {old}: DIFFERENT from the stored result:\n  {NO_NOTE_BEFORE_2}\n" \
           "  accounts: stored" in table.stdout
    shown = cli("--db", db, "reconcile", "rerun", old, "--format", "json")
    assert shown.returncode == 1
    document = json.loads(shown.stdout)
    assert (document["same"], document["differences"][0]) == (False, NO_NOTE_BEFORE_2)


def test_a_run_of_another_version_that_differs_names_both_versions(
        stored: tuple[Engine, store.StoredRun]) -> None:
    engine, run = stored
    result = json.loads(run.result)
    old = _store_as_older(engine, run, "run-version-1",
                          {"evidence_reader_version": "1", "accounts": _read_otherwise(result)})
    again = service.rerun(engine, old)
    assert again.differences[0] == ("stored by evidence reader version 1, this is version 2: "
                                    "differences may come from parser fixes")
    assert (again.same, again.stored_reader_version) == (False, "1")


def test_a_run_of_this_version_that_differs_has_no_note(
        stored: tuple[Engine, store.StoredRun]) -> None:
    engine, run = stored
    result = json.loads(run.result)
    changed = _store_as_older(engine, run, "run-same-version",
                              {"accounts": _read_otherwise(result)})
    again = service.rerun(engine, changed)
    assert again.same is False
    assert [d.split(":")[0] for d in again.differences] == ["accounts"]


def test_a_run_stored_before_the_rulebook_settings_says_so_too(
        stored: tuple[Engine, store.StoredRun]) -> None:
    engine, run = stored
    book = json.loads(run.result)["rulebook"]
    legacy = {key: value for key, value in book.items()
              if key not in ("currency", "timezone", "matching", "evidence")}
    legacy["rules"]["RESERVE-DRAW"] = {}
    old = _store_as_older(engine, run, "run-before-settings",
                          {"evidence_reader_version": None, "rulebook": legacy})
    again = service.rerun(engine, old)
    assert again.same is False
    assert again.differences[:2] == [NO_NOTE_BEFORE_2, (
        "stored before rulebooks set a currency, a time zone, matching and evidence age, and "
        "before RESERVE-DRAW reported the as-of's window: differences may come from those too")]
    # Evaluated as that run was: evidence of any age compared, a three-day window, in JPY.
    assert again.outcome.result["rulebook"]["evidence"] is None
    assert again.outcome.result["rulebook"]["matching"] == {"window_days": 3,
                                                            "amount_tolerance": {}}


def test_a_run_stored_before_rulebooks_were_stored_cannot_be_evaluated_again(
        stored: tuple[Engine, store.StoredRun]) -> None:
    engine, run = stored
    old = _store_as_older(engine, run, "run-before-rulebooks",
                          {"evidence_reader_version": None, "rulebook": {"name": "jp-fsa"}})
    with pytest.raises(InputError) as refused:
        service.rerun(engine, old)
    assert "was made before rulebooks were stored with runs" in str(refused.value)

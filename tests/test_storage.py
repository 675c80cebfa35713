"""The ledger on a real database: the same suite on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from ledger.chart import parse_chart
from ledger.errors import InputError
from ledger.storage.chart_store import load_chart
from ledger.storage.integrity import verify
from ledger.storage.reading import balances_at, close_period, coverage_at
from ledger.storage.schema import breaches, entries
from tests.helpers import CHART, THEFT, balance_map, deposit, entry, post, snapshot

TRUST, OPERATING, HOT = ("custody:customer:trust:JPY", "custody:company:operating:JPY",
                         "custody:customer:hot:BTC")


@pytest.fixture
def ledger(engine: Engine) -> Engine:
    load_chart(engine, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    return engine


def test_chart_loads_once_and_again_changes_nothing(ledger: Engine) -> None:
    before = snapshot(ledger)
    again = load_chart(ledger, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    assert (again.assets_added, again.accounts_added) == (0, 0)
    assert again.unchanged == len(CHART["assets"]) + len(CHART["accounts"])
    assert snapshot(ledger) == before


def test_chart_that_redefines_an_account_is_refused_and_writes_nothing(ledger: Engine) -> None:
    changed = json.loads(json.dumps(CHART))
    changed["accounts"][0]["location"] = "bank"
    changed["assets"].append({"code": "ETH", "kind": "crypto", "scale": 18})
    before = snapshot(ledger)
    with pytest.raises(InputError) as refused:
        load_chart(ledger, parse_chart(json.dumps(changed, indent=1), "chart.json"), "chart.json")
    assert refused.value.field == "accounts.location"
    assert "redefines account custody:customer:trust:JPY" in refused.value.reason
    assert refused.value.line is not None
    assert snapshot(ledger) == before


def test_post_writes_entries_postings_and_running_balances(ledger: Engine) -> None:
    result = post(ledger, [
        deposit("d1", "c-001", "100000"),
        deposit("d2", "c-001", "0.5", asset="BTC"),
        entry("f1", "fee", ("customer:c-001:JPY", "revenue:fees:JPY", "500")),
    ])
    assert (result.posted, result.postings, result.skipped) == (3, 6, 0)
    balances = balance_map(ledger)
    assert balances[TRUST] == 100_000
    assert balances["customer:c-001:JPY"] == 99_500
    assert balances["customer:c-001:BTC"] == 50_000_000
    assert balances["revenue:fees:JPY"] == 500
    with ledger.connect() as connection:
        assert verify(connection).ok
        cover = {row.asset: row.coverage_minor for row in coverage_at(connection)}
    assert cover == {"BTC": 0, "JPY": 500}


def test_posting_the_same_file_again_skips_every_entry(ledger: Engine) -> None:
    batch = [deposit("d1", "c-001", "100000"), deposit("d2", "c-002", "5")]
    post(ledger, batch)
    before = snapshot(ledger)
    again = post(ledger, [deposit("d1", "c-001", "100000.0"), deposit("d2", "c-002", "5")])
    assert (again.posted, again.skipped) == (0, 2)
    assert snapshot(ledger) == before


def test_a_rejected_batch_writes_nothing(ledger: Engine) -> None:
    post(ledger, [deposit("d0", "c-000", "1")])
    before = snapshot(ledger)
    with pytest.raises(InputError) as refused:
        post(ledger, [deposit("d1", "c-001", "100"), deposit("d2", "c-new", "5"),
                      entry("bad", "withdrawal", ("customer:c-001:JPY", TRUST, "101"))])
    assert refused.value.line == 3
    assert snapshot(ledger) == before


def test_balances_at_any_effective_time(ledger: Engine) -> None:
    post(ledger, [
        deposit("d1", "c-001", "100", at="2025-11-25T09:00:00+09:00"),
        deposit("d2", "c-001", "50", at="2025-11-26T09:00:00+09:00"),
        # Posted later but dated earlier: business time, not system time, decides.
        deposit("d3", "c-001", "7", at="2025-11-24T09:00:00+09:00"),
    ])
    with ledger.connect() as connection:
        def at(moment: str) -> dict[str, int]:
            when = datetime.fromisoformat(moment)
            return {r.account.code: r.balance_minor for r in balances_at(connection, when)}

        assert at("2025-11-23T00:00:00+00:00") == {}
        assert at("2025-11-24T00:00:00+00:00")["customer:c-001:JPY"] == 7
        assert at("2025-11-25T00:00:00+00:00")["customer:c-001:JPY"] == 107
        assert at("2025-11-27T00:00:00+00:00")["customer:c-001:JPY"] == 157
        # The boundary is inclusive: effective_at <= as_of.
        assert at("2025-11-26T09:00:00+09:00")["customer:c-001:JPY"] == 157
        only = balances_at(connection, datetime(2030, 1, 1, tzinfo=UTC), prefix="custody:")
        assert [r.account.code for r in only] == [TRUST]


def test_a_backdated_entry_may_not_take_an_account_below_zero_in_the_past(ledger: Engine) -> None:
    post(ledger, [deposit("d1", "c-001", "100", at="2025-11-25T10:00:00Z")])
    before = snapshot(ledger)
    early = entry("w1", "withdrawal", ("customer:c-001:JPY", TRUST, "50"),
                  at="2025-11-25T01:00:00Z")
    with pytest.raises(InputError) as refused:
        post(ledger, [early])
    assert refused.value.render().startswith("test.jsonl:1: effective_at: ")
    assert "below zero at an earlier time" in refused.value.reason
    # The same inside one file: the withdrawal on line 2 is dated before the deposit on line 1.
    with pytest.raises(InputError, match="below zero at an earlier time") as refused:
        post(ledger, [deposit("d2", "c-002", "100", at="2025-11-26T10:00:00Z"),
                      entry("w2", "withdrawal", ("customer:c-002:JPY", TRUST, "50"),
                            at="2025-11-26T01:00:00Z")])
    assert refused.value.line == 2
    assert snapshot(ledger) == before
    # Backdating that keeps every past balance non-negative is fine.
    post(ledger, [deposit("d3", "c-001", "5", at="2025-11-25T09:00:00Z"),
                  entry("w3", "withdrawal", ("customer:c-001:JPY", TRUST, "5"),
                        at="2025-11-25T09:30:00Z")])
    with ledger.connect() as connection:
        assert verify(connection).ok


def test_reversal_mirrors_the_original_once_only(ledger: Engine) -> None:
    post(ledger, [deposit("d1", "c-001", "100"), deposit("d2", "c-001", "40")])
    reversal = {"key": "r1", "type": "reversal", "effective_at": "2025-11-25T10:00:00+09:00",
                "reverses": "d2"}
    assert post(ledger, [reversal]).postings == 2
    assert balance_map(ledger)["customer:c-001:JPY"] == 100
    with pytest.raises(InputError, match="already reversed"):
        post(ledger, [dict(reversal, key="r2")])
    with pytest.raises(InputError, match="not in the ledger"):
        post(ledger, [dict(reversal, key="r3", reverses="nope")])
    with ledger.connect() as connection:
        assert verify(connection).ok


def test_reversal_within_the_same_batch(ledger: Engine) -> None:
    post(ledger, [deposit("d1", "c-001", "100"),
                  {"key": "r1", "type": "reversal", "effective_at": "2025-11-25T10:00:00+09:00",
                   "reverses": "d1"}])
    assert balance_map(ledger)["customer:c-001:JPY"] == 0


def test_incident_opens_a_breach_record_and_top_up_closes_it(ledger: Engine) -> None:
    post(ledger, [deposit("d1", "c-001", "2", asset="BTC")])
    post(ledger, [entry("hack", "incident", ("loss:incident:BTC", HOT, "0.5"), metadata=THEFT)])
    with ledger.connect() as connection:
        row = connection.execute(select(breaches)).one()
        assert (row.asset, row.opened_coverage_minor, row.closed_entry_id) == ("BTC", -50_000_000, None)
        assert [c.open_breach for c in coverage_at(connection) if c.asset == "BTC"] == [True]
    post(ledger, [entry("top", "top_up", (HOT, "equity:capital:BTC", "0.5"))])
    with ledger.connect() as connection:
        row = connection.execute(select(breaches)).one()
        assert row.closed_coverage_minor == 0 and row.closed_entry_id is not None
        assert verify(connection).ok


def test_closed_period_refuses_entries_dated_in_it(ledger: Engine) -> None:
    post(ledger, [deposit("d1", "c-001", "100", at="2025-11-25T09:00:00+09:00")])
    close_period(ledger, datetime(2025, 11, 25, 15, 0, tzinfo=UTC), "auditor", None)
    before = snapshot(ledger)
    with pytest.raises(InputError) as refused:
        post(ledger, [deposit("d2", "c-001", "1", at="2025-11-25T23:59:00+09:00")])
    assert refused.value.field == "effective_at" and "closed period" in refused.value.reason
    assert snapshot(ledger) == before
    assert post(ledger, [deposit("d3", "c-001", "1", at="2025-11-26T00:00:01+09:00")]).posted == 1
    with pytest.raises(InputError, match="already closed"):
        close_period(ledger, datetime(2025, 11, 24, tzinfo=UTC), "auditor", None)


def test_database_refuses_update_and_delete_of_the_journal(ledger: Engine) -> None:
    post(ledger, [deposit("d1", "c-001", "100")])
    for statement in ("UPDATE entries SET memo = 'x'", "DELETE FROM entries",
                      "UPDATE postings SET amount_minor = 1", "DELETE FROM postings",
                      "DELETE FROM batches"):
        with pytest.raises(DBAPIError, match="append-only"), ledger.begin() as connection:
            connection.execute(text(statement))
    assert balance_map(ledger)[TRUST] == 100


def test_database_refuses_a_negative_custody_balance(ledger: Engine) -> None:
    post(ledger, [deposit("d1", "c-001", "100")])
    with pytest.raises(DBAPIError, match="balances_non_negative"), ledger.begin() as connection:
        connection.execute(text(
            "UPDATE balances SET balance_minor = -1 WHERE account_id = "
            "(SELECT id FROM accounts WHERE code = 'custody:customer:trust:JPY')"))


def test_database_refuses_zero_postings_and_a_second_reversal(ledger: Engine) -> None:
    post(ledger, [deposit("d1", "c-001", "100"),
                  {"key": "r1", "type": "reversal", "effective_at": "2025-11-25T10:00:00+09:00",
                   "reverses": "d1"}])
    with ledger.connect() as connection:
        ids = dict(connection.execute(select(entries.c.key, entries.c.id)).all())
    with pytest.raises(DBAPIError), ledger.begin() as connection:
        connection.execute(text(
            "INSERT INTO postings (entry_id, line_no, account_id, asset, amount_minor, effective_at)"
            " SELECT :entry, 9, id, asset, 0, '2025-11-25' FROM accounts WHERE code = :code"),
            {"entry": ids["d1"], "code": TRUST})
    with pytest.raises(DBAPIError), ledger.begin() as connection:
        connection.execute(text(
            "INSERT INTO entries (key, type, effective_at, recorded_at, metadata, content_hash,"
            " reverses_id, batch_id) SELECT 'r2', 'reversal', effective_at, recorded_at, metadata,"
            " content_hash, reverses_id, batch_id FROM entries WHERE key = 'r1'"))


def test_verify_names_an_entry_changed_behind_the_ledgers_back(ledger: Engine) -> None:
    post(ledger, [deposit("d1", "c-001", "100"), deposit("d2", "c-002", "5")])
    with ledger.begin() as connection:
        _without_append_only_guard(connection, "postings",
                                   "UPDATE postings SET amount_minor = 99 WHERE amount_minor = 100")
    with ledger.connect() as connection:
        report = verify(connection)
    assert not report.ok
    checks = {(p.check, p.subject) for p in report.problems}
    assert ("entry_balanced", "d1") in checks
    assert ("stored_balance", TRUST) in checks
    assert all(p.subject != "d2" for p in report.problems)


def _without_append_only_guard(connection, table: str, statement: str) -> None:  # type: ignore[no-untyped-def]
    """Simulate tampering by someone with direct database access."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        connection.execute(text(statement))
        connection.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
    else:
        connection.execute(text(f"DROP TRIGGER {table}_no_update"))
        connection.execute(text(statement))


def test_verify_notices_a_shifted_last_effective_time(ledger: Engine) -> None:
    post(ledger, [deposit("d1", "c-001", "100", at="2025-11-25T09:00:00+09:00")])
    with ledger.begin() as connection:
        connection.execute(text(
            "UPDATE balances SET last_effective_at = first_effective_at - INTERVAL '1 day'"
            if connection.dialect.name == "postgresql" else
            "UPDATE balances SET last_effective_at = '2025-11-24 00:00:00.000000'"))
    with ledger.connect() as connection:
        report = verify(connection)
    assert {p.check for p in report.problems} == {"stored_balance"}
    assert any("first/last effective time" in p.detail for p in report.problems)


def test_database_refuses_changing_an_account(ledger: Engine) -> None:
    with pytest.raises(DBAPIError, match="append-only"), ledger.begin() as connection:
        connection.execute(text("UPDATE accounts SET pool = 'company' WHERE code = :c"),
                           {"c": TRUST})


def test_verify_notices_a_stored_balance_that_drifted(ledger: Engine) -> None:
    post(ledger, [deposit("d1", "c-001", "100")])
    with ledger.begin() as connection:
        connection.execute(text(
            "UPDATE balances SET balance_minor = 101 WHERE account_id = "
            "(SELECT id FROM accounts WHERE code = 'customer:c-001:JPY')"))
    with ledger.connect() as connection:
        report = verify(connection)
    assert [(p.check, p.subject) for p in report.problems] == [
        ("stored_balance", "customer:c-001:JPY")]


def test_amount_beyond_the_database_range_is_a_clear_error(ledger: Engine) -> None:
    too_big = "1" + "0" * 80
    with pytest.raises(InputError, match="outside the database's range"):
        post(ledger, [deposit("d1", "c-001", too_big)])


def test_sqlite_refuses_what_a_64_bit_integer_cannot_hold(tmp_path: Path) -> None:
    from ledger import service

    engine = service.init(f"sqlite:///{tmp_path / 'l.db'}")
    load_chart(engine, parse_chart(json.dumps(CHART), "c.json"), "c.json")
    post(engine, [deposit("d1", "c-001", str(2**63 - 1))])
    with pytest.raises(InputError, match="range"):
        post(engine, [deposit("d2", "c-002", "1")])
    with pytest.raises(InputError, match="outside the database's range"):
        post(engine, [deposit("d3", "c-003", str(2**63))])


@pytest.mark.postgres
def test_copy_path_and_plain_path_write_identical_ledgers(new_pg_database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from ledger import service
    from ledger.entries import read_drafts
    from ledger.storage.posting import post_batch
    from segledger.demo import build_files

    chart_path, entries_path = build_files(tmp_path / "demo")
    drafts = list(read_drafts(entries_path.read_text().splitlines(), "day.jsonl"))
    dumps = []
    for use_copy in (True, False):
        engine = service.init(new_pg_database())
        service.load_chart_file(engine, str(chart_path))
        result = post_batch(engine, drafts, source="day.jsonl", sha256="0" * 64, use_copy=use_copy)
        assert result.posted == len(drafts)
        with engine.connect() as connection:
            dumps.append({
                "entries": connection.execute(text(
                    "SELECT id, key, type, effective_at, memo, metadata::text, content_hash,"
                    " reverses_id FROM entries ORDER BY id")).all(),
                "postings": connection.execute(text(
                    "SELECT entry_id, line_no, account_id, asset, amount_minor, effective_at"
                    " FROM postings ORDER BY entry_id, line_no, amount_minor")).all(),
                "balances": connection.execute(text(
                    "SELECT * FROM balances ORDER BY account_id")).all(),
                "coverage": connection.execute(text("SELECT * FROM coverage ORDER BY asset")).all(),
            })
        engine.dispose()
    assert dumps[0] == dumps[1]
    assert len(dumps[0]["postings"]) > 500


def test_verify_notices_a_reserve_draw_turned_into_a_transfer(ledger: Engine) -> None:
    reserve_cash, account = "custody:company:reserve:JPY", "reserve:liability:JPY"
    post(ledger, [
        deposit("d1", "c-001", "1", asset="BTC"),
        entry("cap", "adjustment", ("custody:company:operating:JPY", "equity:capital:JPY", "500")),
        entry("prov", "reserve_provision", (reserve_cash, "custody:company:operating:JPY", "300"),
              ("equity:capital:JPY", account, "300")),
        entry("hack", "incident", ("loss:incident:BTC", HOT, "0.1"), metadata=THEFT),
        entry("draw", "reserve_draw", (account, reserve_cash, "100"),
              metadata={"incident": "INC-1"})])
    with ledger.connect() as connection:
        assert verify(connection).ok
    with ledger.begin() as connection:
        _without_append_only_guard(connection, "entries",
                                   "UPDATE entries SET type = 'transfer' WHERE key = 'draw'")
    with ledger.connect() as connection:
        checks = {(p.check, p.subject) for p in verify(connection).problems}
    # The rules name what the change means; the hash chain names the row that changed.
    assert checks == {("reserve", "draw"), ("incident_link", "draw"), ("entry_hash", "draw"),
                      ("sealed_batch", "batch 1")}

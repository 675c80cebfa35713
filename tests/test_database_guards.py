"""PostgreSQL's own guards: what the database refuses even when the application is bypassed."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from ledger import service
from ledger.chart import parse_chart
from ledger.storage.chart_store import load_chart
from tests.helpers import CHART, deposit, post

pytestmark = pytest.mark.postgres

# A forged entry comes with its own forged batch: an entry in a batch committed earlier is
# refused as such (test_an_entry_cannot_join_a_batch_committed_earlier).
NEW_ENTRY = """
    WITH batch AS (
      INSERT INTO batches (source, sha256, entry_count, posting_count, skipped_count, recorded_at)
      VALUES ('forged', repeat('0', 64), 1, 2, 0, now()) RETURNING id)
    INSERT INTO entries (id, key, type, effective_at, recorded_at, metadata, content_hash, batch_id)
    SELECT 1000, :key, 'deposit', '2025-11-25T00:00:00Z', now(), '{}', repeat('0', 64), id
      FROM batch"""
POSTING = """
    INSERT INTO postings (entry_id, line_no, account_id, asset, amount_minor, effective_at)
    SELECT :entry, 0, id, asset, :amount, '2025-11-25T00:00:00Z' FROM accounts WHERE code = :code"""
TRUST, CUSTOMER = "custody:customer:trust:JPY", "customer:c-001:JPY"


@pytest.fixture
def ledger(new_migrated_pg_database: Callable[[], str]) -> Engine:
    engine = service.init(new_migrated_pg_database())
    load_chart(engine, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    post(engine, [deposit("d1", "c-001", "100")])
    return engine


def test_an_unbalanced_entry_is_refused_at_commit(ledger: Engine) -> None:
    with pytest.raises(DBAPIError, match="not balanced in JPY"), ledger.begin() as connection:
        connection.execute(text(NEW_ENTRY), {"key": "forged"})
        connection.execute(text(POSTING), {"entry": 1000, "amount": 5, "code": TRUST})
        connection.execute(text(POSTING), {"entry": 1000, "amount": -4, "code": CUSTOMER})
    with ledger.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM entries")).scalar_one() == 1


def test_an_entry_without_postings_is_refused_at_commit(ledger: Engine) -> None:
    with pytest.raises(DBAPIError, match="has 0 postings"), ledger.begin() as connection:
        connection.execute(text(NEW_ENTRY), {"key": "empty"})


def test_postings_cannot_be_added_to_an_entry_committed_earlier(ledger: Engine) -> None:
    with pytest.raises(DBAPIError, match="must be written with the entry"), \
            ledger.begin() as connection:
        entry_id = connection.execute(text("SELECT id FROM entries WHERE key = 'd1'")).scalar_one()
        connection.execute(text(POSTING), {"entry": entry_id, "amount": 7, "code": TRUST})
        connection.execute(text(POSTING), {"entry": entry_id, "amount": -7, "code": CUSTOMER})


def test_an_entry_cannot_join_a_batch_committed_earlier(ledger: Engine) -> None:
    """Each batch checks its entries at its commit: an entry slipped into an old batch
    would escape that check, so it is refused, postings or not."""
    with pytest.raises(DBAPIError, match="entry late must be written with its batch"), \
            ledger.begin() as connection:
        connection.execute(text(
            "INSERT INTO entries (id, key, type, effective_at, recorded_at, metadata, "
            "content_hash, batch_id) SELECT 1000, 'late', 'deposit', '2025-11-25T00:00:00Z', "
            "now(), '{}', repeat('0', 64), id FROM batches LIMIT 1"))
        connection.execute(text(POSTING), {"entry": 1000, "amount": 5, "code": TRUST})
        connection.execute(text(POSTING), {"entry": 1000, "amount": -5, "code": CUSTOMER})
    with ledger.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM entries")).scalar_one() == 1


def test_every_entry_of_a_batch_is_checked_at_its_commit(ledger: Engine) -> None:
    """Two entries in one batch, the second unbalanced: the batch's check finds it."""
    with pytest.raises(DBAPIError, match="entry second is not balanced in JPY"), \
            ledger.begin() as connection:
        connection.execute(text(NEW_ENTRY), {"key": "first"})
        connection.execute(text(POSTING), {"entry": 1000, "amount": 5, "code": TRUST})
        connection.execute(text(POSTING), {"entry": 1000, "amount": -5, "code": CUSTOMER})
        connection.execute(text(
            "INSERT INTO entries (id, key, type, effective_at, recorded_at, metadata, "
            "content_hash, batch_id) SELECT 1001, 'second', 'deposit', '2025-11-25T00:00:00Z', "
            "now(), '{}', repeat('0', 64), batch_id FROM entries WHERE id = 1000"))
        connection.execute(text(POSTING), {"entry": 1001, "amount": 5, "code": TRUST})
        connection.execute(text(POSTING), {"entry": 1001, "amount": -3, "code": CUSTOMER})
    with ledger.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM entries")).scalar_one() == 1


def test_a_posting_in_another_asset_than_its_account_is_refused(ledger: Engine) -> None:
    with pytest.raises(DBAPIError, match="postings_account_asset"), ledger.begin() as connection:
        connection.execute(text(NEW_ENTRY), {"key": "wrong-asset"})
        connection.execute(text(
            "INSERT INTO postings (entry_id, line_no, account_id, asset, amount_minor, effective_at)"
            " SELECT 1000, 0, id, 'BTC', 1, now() FROM accounts WHERE code = :code"),
            {"code": TRUST})


def test_truncating_the_journal_is_refused(ledger: Engine) -> None:
    with pytest.raises(DBAPIError, match="append-only"), ledger.begin() as connection:
        connection.execute(text("TRUNCATE postings CASCADE"))


def test_the_database_refuses_a_reserve_draw_without_its_incident(ledger: Engine) -> None:
    with pytest.raises(DBAPIError, match="must name its incident"), ledger.begin() as connection:
        connection.execute(text(NEW_ENTRY.replace("'deposit'", "'reserve_draw'")),
                           {"key": "forged-draw"})


def test_the_database_refuses_reserve_money_taken_by_any_other_entry(ledger: Engine) -> None:
    with pytest.raises(DBAPIError, match="takes JPY from the liability reserve"), \
            ledger.begin() as connection:
        connection.execute(text(NEW_ENTRY.replace("'deposit'", "'transfer'")),
                           {"key": "forged-transfer"})
        for line, (code, amount) in enumerate((("custody:company:operating:JPY", 100),
                                               ("custody:company:reserve:JPY", -100))):
            connection.execute(text(POSTING.replace(", 0, id", ", :line, id")),
                               {"entry": 1000, "amount": amount, "code": code, "line": line})


def test_the_database_refuses_a_draw_naming_an_incident_never_recorded(ledger: Engine) -> None:
    forged = NEW_ENTRY.replace("'deposit'", "'reserve_draw'").replace(
        "'{}'", "'{\"incident\": \"NOPE\"}'")
    with pytest.raises(DBAPIError, match="names incident NOPE, which is not recorded"), \
            ledger.begin() as connection:
        connection.execute(text(forged), {"key": "forged-draw"})
        for line, (code, amount) in enumerate((("reserve:liability:JPY", 100),
                                               ("custody:company:reserve:JPY", -100))):
            connection.execute(text(POSTING.replace(", 0, id", ", :line, id")),
                               {"entry": 1000, "amount": amount, "code": code, "line": line})


def test_a_transfer_between_two_reserve_accounts_is_the_same_on_both_write_paths(
        new_pg_database: Callable[[], str]) -> None:
    chart = json.loads(json.dumps(CHART))
    chart["accounts"].append({"code": "custody:company:reserve2:JPY", "asset": "JPY",
                              "pool": "company", "role": "custody", "location": "custodian",
                              "purpose": "reserve"})
    for use_copy in (True, False):
        engine = service.init(new_pg_database())
        load_chart(engine, parse_chart(json.dumps(chart), "chart.json"), "chart.json")
        post(engine, [
            {"key": "cap", "type": "adjustment", "effective_at": "2025-11-25T09:00:00+09:00",
             "lines": [{"debit": "custody:company:reserve:JPY", "credit": "equity:capital:JPY",
                        "amount": "500"}]},
            {"key": "move", "type": "transfer", "effective_at": "2025-11-25T10:00:00+09:00",
             "lines": [{"debit": "custody:company:reserve2:JPY",
                        "credit": "custody:company:reserve:JPY", "amount": "200"}]}],
             use_copy=use_copy)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM entries")).scalar_one() == 2

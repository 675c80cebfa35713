"""Migration 0007 (the entry checks per statement and per batch) goes down to the row
triggers it replaced and up again; the checks hold at either revision."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from ledger.storage.engine import make_engine, upgrade
from tests.test_database_guards import CUSTOMER, NEW_ENTRY, POSTING, TRUST
from tests.test_migration_0006 import _migrate

pytestmark = pytest.mark.postgres

ROW_TRIGGERS = {"entries_open_period", "entries_name_incident", "entries_frozen",
                "entries_balanced", "entries_reserve_and_incident"}
SET_TRIGGERS = {"entries_inserted", "batches_complete"}


def _triggers(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(text(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars())


def _unbalanced_is_refused(engine: Engine) -> None:
    with pytest.raises(DBAPIError, match="not balanced in JPY"), engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO assets (code, kind, scale, created_at) VALUES ('JPY', 'fiat', 0, now()) "
            "ON CONFLICT DO NOTHING"))
        for code, role, location, purpose in ((TRUST, "custody", "bank_trust", "segregated"),
                                              (CUSTOMER, "customer_liability", None, None)):
            connection.execute(text(
                "INSERT INTO accounts (code, asset, pool, role, location, purpose, external, "
                "opened_at) VALUES (:code, 'JPY', 'customer', :role, :location, :purpose, '{}', "
                "now()) ON CONFLICT DO NOTHING"),
                {"code": code, "role": role, "location": location, "purpose": purpose})
        connection.execute(text(NEW_ENTRY), {"key": "forged"})
        connection.execute(text(POSTING), {"entry": 1000, "amount": 5, "code": TRUST})
        connection.execute(text(POSTING), {"entry": 1000, "amount": -4, "code": CUSTOMER})


def test_downgrade_restores_the_row_triggers_and_upgrade_the_set_checks(
        new_migrated_pg_database: Callable[[], str]) -> None:
    url = new_migrated_pg_database()
    engine = make_engine(url)
    try:
        assert _triggers(engine) >= SET_TRIGGERS
        assert not ROW_TRIGGERS & _triggers(engine)
        _unbalanced_is_refused(engine)
        _migrate(url, "0006", down=True)
        assert _triggers(engine) >= ROW_TRIGGERS
        assert not SET_TRIGGERS & _triggers(engine)
        _unbalanced_is_refused(engine)
        upgrade(engine)
        assert _triggers(engine) >= SET_TRIGGERS
        assert not ROW_TRIGGERS & _triggers(engine)
        _unbalanced_is_refused(engine)
    finally:
        engine.dispose()

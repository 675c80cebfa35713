"""Migration 0006 (administration) goes down as cleanly as it goes up: the journal's
append-only guards survive, and upgrading again gives the freeze back."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.storage.engine import _alembic_config, for_writing, make_engine, upgrade


def _migrate(url: str, revision: str, *, down: bool) -> None:
    engine = make_engine(url)
    try:
        config = _alembic_config()
        with for_writing(engine).begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def test_downgrade_keeps_batches_append_only_and_upgrade_restores_the_freeze(
        migrated_db_url: str, tmp_path: Path) -> None:
    _migrate(migrated_db_url, "0005", down=True)
    engine = make_engine(migrated_db_url)
    try:
        with for_writing(engine).begin() as connection:
            connection.execute(text(
                "INSERT INTO batches (source, sha256, entry_count, posting_count, "
                "skipped_count, recorded_at) VALUES ('s', :sha, 0, 0, 0, CURRENT_TIMESTAMP)"),
                {"sha": "0" * 64})
        for statement in ("UPDATE batches SET source = 'changed'", "DELETE FROM batches"):
            with pytest.raises(DBAPIError, match="append-only"), \
                    for_writing(engine).begin() as connection:
                connection.execute(text(statement))
        upgrade(engine)
        with engine.connect() as connection:
            names = set(connection.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'" if
                engine.dialect.name == "sqlite" else
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars())
        # On PostgreSQL the freeze is one of the statement checks of entries since 0007.
        freeze = "entries_frozen" if engine.dialect.name == "sqlite" else "entries_inserted"
        assert {freeze, "closed_periods_frozen"} <= names
    finally:
        engine.dispose()

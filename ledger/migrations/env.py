"""Alembic environment: runs on the connection segledger hands it, or on a URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=None,
        # SQLite alters tables by copying them; batch mode makes later migrations portable.
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = (
        config.get_main_option("sqlalchemy.url")
        or os.environ.get("SEGLEDGER_DATABASE_URL")
        or "sqlite:///segledger.db"
    )
    from ledger.storage.engine import normalize_url

    with create_engine(normalize_url(url)).connect() as own_connection:
        _run(own_connection)
        own_connection.commit()

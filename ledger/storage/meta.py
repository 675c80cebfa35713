"""The ledger's facts about itself (table `ledger_meta`): today, whether it is the demo's."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, inspect, select, text

from ledger.errors import InputError
from ledger.storage.engine import for_writing
from ledger.storage.rows import utcnow
from ledger.storage.schema import ledger_meta

PURPOSE_KEY, DEMO = "purpose", "demo"
# Tables whose rows mean the database holds someone's ledger (or its history).
CONTENT_TABLES = ("assets", "accounts", "entries", "closed_periods", "insurance_policies",
                  "recon_runs")


def refuse_unless_demo(engine: Engine) -> None:
    """Before `segledger demo` migrates or writes anything: the database must be empty, or a
    demo's. Read first, so that a refusal changes nothing, not even the schema."""
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        if "ledger_meta" in tables and _purpose(connection) == DEMO:
            return
        holding = [name for name in CONTENT_TABLES if name in tables and connection.execute(
            text(f"SELECT 1 FROM {name} LIMIT 1")).first() is not None]
    if holding:
        raise InputError(
            f"this database holds a ledger that is not the demo's ({', '.join(holding)} not "
            "empty); the demo writes only into an empty database or its own file "
            "(run it without --db)", field="--db")


def mark_as_demo(engine: Engine) -> None:
    with for_writing(engine).begin() as connection:
        if _purpose(connection) is None:
            connection.execute(ledger_meta.insert().values(
                key=PURPOSE_KEY, value=DEMO, set_at=utcnow()))


def _purpose(connection: Connection) -> str | None:
    return connection.execute(select(ledger_meta.c.value)
                              .where(ledger_meta.c.key == PURPOSE_KEY)).scalar_one_or_none()

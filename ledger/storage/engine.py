"""Engines for both dialects, and the schema upgrade that `segledger init` runs."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from ledger.errors import EnvironmentFailure, InputError, shown

DEFAULT_URL = "sqlite:///segledger.db"
URL_FORMS = "sqlite:///FILE or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
SQLITE_BUSY_TIMEOUT_S = 60
WRITE_OPTION = "segledger_write"
POSTGRES_CONNECT_TIMEOUT_S = 10


def resolve_url(url: str | None) -> str:
    """--db, else SEGLEDGER_DATABASE_URL, else the embedded SQLite file (CONTRACT.md)."""
    return url or os.environ.get("SEGLEDGER_DATABASE_URL") or DEFAULT_URL


def normalize_url(url: str) -> str:
    """postgresql:// and postgresql+psycopg:// both mean psycopg 3."""
    # The URL itself is never echoed: it may hold a password, and a URL that does not parse
    # cannot be told where its password is to mask it.
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(f"not a database URL (write {URL_FORMS}; the URL is not shown, as it "
                         "may hold a password)", field="--db") from None
    except ValueError:
        # SQLAlchemy reads the port with int(): "host:abc" is a ValueError, not a parse error.
        raise InputError(f"the port of the database URL is not a number (write {URL_FORMS})",
                         field="--db") from None
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername not in ("sqlite", "sqlite+pysqlite"):
        raise InputError(
            f"unsupported database {shown(parsed.drivername)}: use sqlite:/// or postgresql://",
            field="--db",
        )
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str | None = None) -> Engine:
    target = normalize_url(resolve_url(url))
    if target.startswith("sqlite"):
        return _sqlite_engine(target)
    return create_engine(
        target,
        connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S},
        pool_pre_ping=True,
    )


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transactions into our own hands: pysqlite's implicit BEGIN is DEFERRED, and
        # two deferred writers that both read first deadlock on the upgrade to a write lock.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes the write lock at BEGIN, so batches queue instead of failing when a
        # deferred transaction tries to upgrade its read lock; readers stay deferred (WAL
        # lets them read while a batch writes).
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def for_reading(engine: Engine) -> Engine:
    """Readers see one snapshot: on PostgreSQL a REPEATABLE READ, read-only transaction (under
    READ COMMITTED each statement would see a later state than the one before); SQLite's
    deferred read transaction already reads one snapshot."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="REPEATABLE READ",
                                        postgresql_readonly=True)
    return engine


def for_writing(engine: Engine) -> Engine:
    """The same engine (and pool), marked so that its transactions begin as writers."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _alembic_config() -> Config:
    # The scripts ship inside the installed package (never as a top-level `migrations` that a
    # user's own folder of that name could shadow), found through the package, not the cwd.
    config = Config()
    config.set_main_option("script_location", str(_migrations_folder()))
    return config


def _migrations_folder() -> Path:
    folder = importlib.resources.files("ledger") / "migrations"
    # A wheel installs as plain files, so the resource is a real directory Alembic can read.
    assert isinstance(folder, Path), f"segledger's migrations are not on disk: {folder}"
    return folder


def upgrade(engine: Engine) -> None:
    config = _alembic_config()
    try:
        with for_writing(engine).begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as error:
        raise EnvironmentFailure(f"database unreachable: {error.orig}") from None


def schema_is_current(engine: Engine) -> bool:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head

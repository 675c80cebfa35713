"""Fixtures: every storage test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from SEGLEDGER_TEST_POSTGRES_URL, a throwaway cluster started from the local
binaries, or Docker. With SEGLEDGER_REQUIRE_POSTGRES=1 (as in CI) its absence is a failure,
never a skip.

Migrating a database takes longer than copying one, so each test session (each pytest-xdist
worker has its own) migrates one SQLite file and one PostgreSQL template database once and
gives every test that wants a migrated database a copy of them. `db_url` stays an empty,
never-migrated database, for the tests of `init` itself.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from ledger import service
from ledger.storage.engine import make_engine, schema_is_current
from tests.pgserver import any_postgres

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
# "gw0", "gw1", … under pytest-xdist; databases and files are named after it (and the pid) so
# that workers sharing one server (SEGLEDGER_TEST_POSTGRES_URL) never collide.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    try:
        with any_postgres() as url:
            yield url
    except FileNotFoundError as error:
        if os.environ.get("SEGLEDGER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here and none could be started: {error}")
        pytest.skip(f"no PostgreSQL: {error}")


class PostgresDatabases:
    """Creates and drops this session's PostgreSQL databases through one admin connection."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.admin = psycopg.connect(admin_url, autocommit=True)
        self.version = self.admin.info.server_version
        self.template: str | None = None

    def url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def create(self, template: str | None = None) -> str:
        """A new database, empty or a copy of `template`; returns its name."""
        name = f"segledger_test_{WORKER}_{os.getpid()}_{next(_counter)}"
        if template is None:
            self.admin.execute(f'CREATE DATABASE "{name}"')
        else:
            # FILE_COPY (PostgreSQL 15+) copies a small database faster than WAL_LOG does.
            strategy = " STRATEGY FILE_COPY" if self.version >= 150000 else ""
            self.admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}')
        return name

    def migrated(self) -> str:
        """A new database with the schema at head: a copy of the session's migrated template."""
        if self.template is None:
            template = self.create()
            try:
                engine = service.init(self.url(template))
                try:
                    assert schema_is_current(engine)
                finally:
                    engine.dispose()  # A template must have no connection while it is copied.
            except BaseException:
                self.drop(template)  # and the next test tries again, failing as this one does
                raise
            self.template = template
        return self.create(self.template)

    def drop(self, name: str) -> None:
        """Drops a database, ending whatever connections a test or its commands left open."""
        # Ending them first and watching them go is quicker than DROP … WITH (FORCE) alone,
        # which looks again only every 100 ms.
        deadline = time.monotonic() + 10
        while self.admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchone() != (0,):
            if time.monotonic() > deadline:
                break
            time.sleep(0.002)
        force = " WITH (FORCE)" if self.version >= 130000 else ""
        self.admin.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')

    def close(self) -> None:
        try:
            if self.template is not None:
                self.drop(self.template)
        finally:
            self.admin.close()


@pytest.fixture(scope="session")
def postgres_databases(postgres_admin_url: str) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_admin_url)
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per session, copied for each test that wants one."""
    path = tmp_path_factory.mktemp("sqlite-template") / "ledger.db"
    engine = service.init(f"sqlite:///{path}")
    try:
        assert schema_is_current(engine)
        with engine.connect() as connection:
            # Everything into the main file: the copy is only that file, never the -wal.
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    finally:
        engine.dispose()
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    assert not leftovers, f"the SQLite template left {leftovers} beside it"
    return path


@pytest.fixture
def new_pg_database(postgres_databases: PostgresDatabases) -> Iterator[Callable[[], str]]:
    """Makes empty PostgreSQL databases, for tests of PostgreSQL-only behaviour."""
    made: list[str] = []

    def new() -> str:
        made.append(postgres_databases.create())
        return postgres_databases.url(made[-1])

    yield new
    for name in made:
        postgres_databases.drop(name)


@pytest.fixture
def new_migrated_pg_database(postgres_databases: PostgresDatabases) -> Iterator[Callable[[], str]]:
    """Makes PostgreSQL databases whose schema is already at head (`init` on them is a no-op)."""
    made: list[str] = []

    def new() -> str:
        made.append(postgres_databases.migrated())
        return postgres_databases.url(made[-1])

    yield new
    for name in made:
        postgres_databases.drop(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_dialect(request: pytest.FixtureRequest) -> str:
    """The dialect that `db_url`, `migrated_db_url` and `engine` are parametrized over."""
    return str(request.param)


@pytest.fixture
def db_url(db_dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each dialect."""
    if db_dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    new: Callable[[], str] = request.getfixturevalue("new_pg_database")
    return new()


@pytest.fixture
def migrated_db_url(db_dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of each dialect whose schema is at head, as `segledger init` leaves it."""
    if db_dialect == "sqlite":
        path = tmp_path / "migrated.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    new: Callable[[], str] = request.getfixturevalue("new_migrated_pg_database")
    return new()


@pytest.fixture
def engine(db_dialect: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated database of each dialect."""
    if "db_url" in request.fixturenames:
        # A test that also names the empty database means this one: migrate it, as always.
        engine = service.init(request.getfixturevalue("db_url"))
    else:
        engine = make_engine(request.getfixturevalue("migrated_db_url"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def regtest() -> Iterator[object]:
    """A real litecoind -regtest node (Bitcoin Core's RPC); required in CI."""
    from tests.chainnodes import litecoind_binary, regtest_node

    if litecoind_binary() is None:
        if os.environ.get("SEGLEDGER_REQUIRE_CHAINS") == "1":
            pytest.fail("litecoind is required here and is not installed")
        pytest.skip("litecoind is not installed (apt-get install -y litecoind)")
    with regtest_node() as node:
        node.call("createwallet", "exchange")
        miner = node.call("getnewaddress", wallet="exchange")
        node.call("generatetoaddress", 101, miner, wallet="exchange")
        yield node

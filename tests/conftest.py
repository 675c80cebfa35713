"""Fixtures: every storage test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from SEGLEDGER_TEST_POSTGRES_URL, a throwaway cluster started from the local
binaries, or Docker. With SEGLEDGER_REQUIRE_POSTGRES=1 (as in CI) its absence is a failure,
never a skip.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from ledger import service
from tests.pgserver import any_postgres

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
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


def _new_postgres_database(admin_url: str) -> str:
    name = f"segledger_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each dialect."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return _new_postgres_database(request.getfixturevalue("postgres_admin_url"))


@pytest.fixture
def new_pg_database(postgres_admin_url: str) -> Callable[[], str]:
    """Makes empty PostgreSQL databases, for tests of PostgreSQL-only behaviour."""
    return lambda: _new_postgres_database(postgres_admin_url)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database of each dialect."""
    engine = service.init(db_url)
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

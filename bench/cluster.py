"""A throwaway PostgreSQL cluster for benchmarks: on disk, durable, on loopback.

Unlike the tests' cluster (tests/pgserver.py: RAM-backed /dev/shm, fsync off), a benchmark's
server writes as a production server does: the data directory on disk, fsync, synchronous
commit and full-page writes on (PostgreSQL's defaults, given explicitly so that nothing in a
configuration file can turn them off). initdb syncs its files too.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

# The tests' helpers (finding the binaries, a free port, running as `postgres` when root,
# waiting for the server, a fast stop), imported by name: tests/pgserver.py also imports the
# Docker client, which has no type stubs here, and mypy would follow a plain import into it.
_pg: Any = importlib.import_module("tests.pgserver")

DURABLE_SETTINGS = ("fsync=on", "synchronous_commit=on", "full_page_writes=on")


def binary(name: str) -> str | None:
    """A PostgreSQL program (initdb, postgres, psql) from the newest local installation."""
    found = _pg._binary(name)
    return None if found is None else str(found)


@contextmanager
def durable_cluster(parent: str | None = None) -> Iterator[str]:
    """initdb + postgres in a new directory under `parent` (default: the system's temporary
    directory, which must not be a RAM disk); yields an admin URL; removes it all after."""
    initdb, postgres = binary("initdb"), binary("postgres")
    if not initdb or not postgres:
        raise FileNotFoundError("no initdb/postgres binaries (apt-get install postgresql)")
    ids: tuple[int, int] | None = _pg._drop_to_postgres()
    root = Path(tempfile.mkdtemp(prefix="segledger-bench-pg-", dir=parent))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if ids:
        for path in (root, sockets):
            os.chown(path, *ids)
    user_kw: dict[str, Any] = {"user": ids[0], "group": ids[1]} if ids else {}
    settings = [arg for setting in (*DURABLE_SETTINGS, "listen_addresses=127.0.0.1",
                                    "max_connections=20") for arg in ("-c", setting)]
    try:
        subprocess.run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True, **user_kw)
        for attempt in range(3):
            port: int = _pg._free_port()
            log = open(root / "server.log", "wb")  # noqa: SIM115
            server = subprocess.Popen([postgres, "-D", str(data), "-p", str(port), "-k",
                                       str(sockets), *settings],
                                      stdout=log, stderr=subprocess.STDOUT, **user_kw)
            url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            try:
                _pg._wait_ready(url, server, root / "server.log", data)
                break
            except BaseException as error:
                _pg._stop(server, log)
                if attempt == 2 or not isinstance(error, _pg._PortTaken):
                    raise
        try:
            yield url
        finally:
            _pg._stop(server, log)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def database_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def fresh_database(admin_url: str, name: str) -> str:
    """Drop and create database `name` on the admin URL's server; its URL."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

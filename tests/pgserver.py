"""A real PostgreSQL for the tests: a URL from the environment, a throwaway cluster from the
local binaries, or a Docker container through testcontainers, in that order."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import psycopg

START_TIMEOUT_S = 60


def _binary(name: str) -> str | None:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _drop_to_postgres() -> tuple[int, int] | None:
    """initdb and postgres refuse to run as root: run them as the `postgres` user instead."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root and there is no `postgres` user to run the server") from None
    return entry.pw_uid, entry.pw_gid


def _scratch_dir() -> str | None:
    """RAM-backed /dev/shm when it has room, else the usual temporary directory: a throwaway
    cluster keeps nothing, and on a virtual disk each test's CREATE and DROP DATABASE (with
    their checkpoints) would wait on writes that nobody will ever read."""
    shm = "/dev/shm"
    try:
        stats = os.statvfs(shm)
    except OSError:
        return None
    roomy = stats.f_bavail * stats.f_frsize >= 2 * 1024**3
    return shm if roomy and os.access(shm, os.W_OK | os.X_OK) else None


@contextmanager
def local_cluster() -> Iterator[str]:
    """initdb + postgres on a free loopback port in a temporary directory; yields an admin URL."""
    initdb, postgres = _binary("initdb"), _binary("postgres")
    if not initdb or not postgres:
        raise FileNotFoundError("no initdb/postgres binaries")
    ids = _drop_to_postgres()
    root = Path(tempfile.mkdtemp(prefix="segledger-pg-", dir=_scratch_dir()))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if ids:
        for path in (root, sockets):
            os.chown(path, *ids)
    user_kw: dict[str, Any] = {"user": ids[0], "group": ids[1]} if ids else {}
    try:
        subprocess.run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                        "--no-sync"], check=True, capture_output=True, **user_kw)
        for attempt in range(3):
            # Another process (another pytest-xdist worker's cluster, say) may take the port
            # between _free_port and the server's bind: then try another one.
            port = _free_port()
            log = open(root / "server.log", "wb")  # noqa: SIM115
            server = subprocess.Popen(
                [postgres, "-D", str(data), "-p", str(port), "-k", str(sockets),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=60"],
                stdout=log, stderr=subprocess.STDOUT, **user_kw)
            url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            try:
                _wait_ready(url, server, root / "server.log", data)
                break
            except BaseException as error:
                _stop(server, log)
                if attempt == 2 or not isinstance(error, _PortTaken):
                    raise
        try:
            yield url
        finally:
            _stop(server, log)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _stop(server: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    # A fast shutdown: SIGTERM would be a "smart" one, which waits for every client to
    # disconnect, and an engine a test left open would then hold the run up for 30 s.
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    log.close()


class _PortTaken(RuntimeError):
    pass


def _wait_ready(url: str, server: subprocess.Popen[bytes], log: Path, data: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            said = log.read_text(errors="replace")
            error = _PortTaken if "could not bind" in said else RuntimeError
            raise error(f"postgres exited: {said[-2000:]}")
        try:
            with psycopg.connect(url, connect_timeout=2) as connection:
                row = connection.execute("SHOW data_directory").fetchone()
        except psycopg.OperationalError:
            time.sleep(0.2)
            continue
        if row is None or Path(row[0]).resolve() != data.resolve():
            raise _PortTaken(f"another PostgreSQL answers on {url}")
        return
    raise RuntimeError(f"postgres did not start in {START_TIMEOUT_S} s")


@contextmanager
def docker_cluster() -> Iterator[str]:
    import docker
    from testcontainers.postgres import PostgresContainer

    docker.from_env().ping()
    with PostgresContainer("postgres:16-alpine", driver=None) as container:
        yield container.get_connection_url()


@contextmanager
def any_postgres() -> Iterator[str]:
    """An admin URL (can CREATE DATABASE), or FileNotFoundError when no way is available."""
    url = os.environ.get("SEGLEDGER_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if _binary("initdb") and _binary("postgres"):
        with local_cluster() as url:
            yield url
        return
    try:
        with docker_cluster() as url:
            yield url
        return
    except Exception as error:
        raise FileNotFoundError(f"no PostgreSQL: no local binaries, and Docker: {error}") from None

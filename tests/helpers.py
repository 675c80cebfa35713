"""Shared test data: a small exchange's chart, entry builders, and a database snapshot."""

from __future__ import annotations

import atexit
import importlib.machinery
import json
import locale
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text

from ledger.entries import read_drafts
from ledger.storage.posting import PostResult, post_batch
from ledger.storage.schema import accounts, balances, coverage

T0 = "2025-11-25T09:00:00+09:00"

CHART: dict[str, Any] = {
    "assets": [
        {"code": "JPY", "kind": "fiat", "scale": 0},
        {"code": "BTC", "kind": "crypto", "scale": 8, "chain": "bitcoin"},
    ],
    "accounts": [
        {"code": "custody:customer:trust:JPY", "asset": "JPY", "pool": "customer",
         "role": "custody", "location": "bank_trust", "external": {"bank_account": "1234567"}},
        {"code": "custody:company:operating:JPY", "asset": "JPY", "pool": "company",
         "role": "custody", "location": "bank"},
        {"code": "custody:customer:cold:BTC", "asset": "BTC", "pool": "customer",
         "role": "custody", "location": "cold_wallet", "external": {"addresses": ["bc1qcold"]}},
        {"code": "custody:customer:hot:BTC", "asset": "BTC", "pool": "customer",
         "role": "custody", "location": "hot_wallet"},
        {"code": "custody:company:guarantee:BTC", "asset": "BTC", "pool": "company",
         "role": "custody", "location": "cold_wallet", "purpose": "guarantee"},
        {"code": "equity:capital:JPY", "asset": "JPY", "pool": "company", "role": "equity"},
        {"code": "equity:capital:BTC", "asset": "BTC", "pool": "company", "role": "equity"},
        {"code": "revenue:fees:JPY", "asset": "JPY", "pool": "company", "role": "revenue"},
        {"code": "expense:rent:JPY", "asset": "JPY", "pool": "company", "role": "expense"},
        {"code": "loss:incident:BTC", "asset": "BTC", "pool": "company", "role": "loss"},
        {"code": "custody:company:reserve:JPY", "asset": "JPY", "pool": "company",
         "role": "custody", "location": "bank", "purpose": "reserve"},
        {"code": "reserve:liability:JPY", "asset": "JPY", "pool": "company", "role": "reserve"},
    ],
}


def entry(key: str, kind: str, *lines: tuple[str, str, str], at: str = T0,
          **extra: Any) -> dict[str, Any]:
    return {"key": key, "type": kind, "effective_at": at, **extra,
            "lines": [{"debit": d, "credit": c, "amount": a} for d, c, a in lines]}


THEFT = {"incident": "INC-1", "incident_kind": "theft"}

# A day's close, its price file and an insurance policy, shared by the rulebook CLI tests.
AS_OF = "2025-11-25T23:59:59+09:00"
PRICES: dict[str, Any] = {"quote": "JPY", "as_of": AS_OF, "prices": {"BTC": "15000000"}}
POLICY: dict[str, Any] = {"policy_id": "P-1", "insurer": "Tokio Marine", "currency": "JPY",
                          "limit": "1000000000", "covered_share": "0.8",
                          "period_start": "2025-04-01T00:00:00+09:00",
                          "period_end": "2026-04-01T00:00:00+09:00"}


def deposit(key: str, customer: str, amount: str, asset: str = "JPY", at: str = T0) -> dict[str, Any]:
    custody = "custody:customer:trust:JPY" if asset == "JPY" else "custody:customer:hot:BTC"
    return entry(key, "deposit", (custody, f"customer:{customer}:{asset}", amount), at=at)


def jsonl(entries: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(item) + "\n" for item in entries)


def write_jsonl(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(jsonl(entries), "utf-8")
    return path


def post(engine: Engine, entries: list[dict[str, Any]], *, use_copy: bool | None = None,
         source: str = "test.jsonl") -> PostResult:
    drafts = list(read_drafts(jsonl(entries).splitlines(), source))
    return post_batch(engine, drafts, source=source, sha256="0" * 64, use_copy=use_copy)


def balance_map(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(accounts.c.code, balances.c.balance_minor)
            .join(balances, balances.c.account_id == accounts.c.id))
        return {row.code: row.balance_minor for row in rows}


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything a rejected batch must leave as it was."""
    with engine.connect() as connection:
        counts = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("assets", "accounts", "batches", "entries", "postings", "balances",
                          "breaches", "closed_periods", "incidents", "incident_links",
                          "insurance_policies")
        }
        covered = {row.asset: row.coverage_minor for row in connection.execute(select(coverage))}
    return {"counts": counts, "balances": balance_map(engine), "coverage": covered}


CLI_TIMEOUT_S = 300


def cli(*args: str, stdin: str | None = None, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `segledger` command in a subprocess (`env` adds to the inherited environment):
    `python -m segledger ARGS`, its exit code and what it wrote to stdout and stderr.

    The process is forked from a server that has already imported segledger (see _CLI_SERVER),
    which saves the second that each command would otherwise spend starting an interpreter and
    importing. A fresh interpreter runs the command instead where it could start differently:
    in another working directory that holds something importable (`-m` puts the working
    directory first on sys.path, where it could shadow a module), with an environment that an
    interpreter reads as it starts (PYTHON*, LANG, LC_*), or under SEGLEDGER_TEST_FRESH_CLI=1."""
    command = [sys.executable, "-m", "segledger", *args]
    environment = {**os.environ, **env} if env else dict(os.environ)
    folder = os.path.abspath(cwd if cwd is not None else os.getcwd())
    server = _CliServer.shared()
    if (server is not None and _startup(environment) == server.startup
            and (folder == server.folder or not _importable_from(folder))):
        done = server.run(command, stdin, environment, folder)
        if done is not None:
            return done
    return subprocess.run(command, capture_output=True, text=True, input=stdin, cwd=cwd,
                          timeout=CLI_TIMEOUT_S, env=environment if env else None)


def _startup(environment: dict[str, str]) -> dict[str, str]:
    """The variables an interpreter reads as it starts (its flags, its locale)."""
    return {name: value for name, value in environment.items()
            if name.startswith(("PYTHON", "LC_")) or name in ("LANG", "LANGUAGE")}


def _importable_from(folder: str) -> bool:
    """Whether anything in the folder could be imported from it: a module, or a folder (a
    package, or a namespace package). True as well for a folder that cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            return any(entry.is_dir() or os.path.splitext(entry.name)[1] in _MODULE_SUFFIXES
                       for entry in entries)
    except OSError:
        return True


_MODULE_SUFFIXES = frozenset(importlib.machinery.all_suffixes())


# The server runs as `python -c _CLI_SERVER FD` in this process's working directory, like
# `python -m segledger` (the same interpreter and flags, the working directory first on
# sys.path), and imports what the command imports. For each request on FD it forks a waiter,
# which forks the command's process and reports how it ended. That process takes the request's
# stdin, stdout and stderr as its file descriptors 0, 1 and 2, and its working directory,
# environment and arguments, then runs the `segledger` package as __main__ as `-m` does, at the
# top level of this script: uncaught exceptions, SystemExit, atexit and the last flush of
# stdout behave as in a fresh interpreter.
_CLI_SERVER = r"""
import gc, importlib, json, os, random, socket, sys, threading, time, traceback

control = socket.socket(fileno=int(sys.argv[1]))
del sys.argv[1:]
if not sys.flags.safe_path:  # as `-m` puts the working directory first
    sys.path[0] = os.getcwd()
try:
    import segledger.cli  # what every command imports
    for name in ("segledger.demo", "reconcile.service", "reconcile.adapters.camt053", "yaml",
                 "psycopg", "psycopg.types.json", "sqlalchemy.dialects.postgresql.psycopg",
                 "sqlalchemy.dialects.sqlite.pysqlite", "alembic.runtime.migration",
                 "alembic.script", "alembic.ddl.postgresql", "alembic.ddl.sqlite"):
        try:  # what some commands import on their way; a failure is theirs to report
            importlib.import_module(name)
        except Exception:
            pass
    if threading.active_count() != 1:
        raise RuntimeError("a thread was started on import: forking would not be safe")
    base_path = list(sys.path)
    # What is imported stays as it is: no collection in a child walks it (which would copy
    # every page of it on write, and take longer than most commands).
    gc.freeze()
except BaseException:
    control.send(json.dumps({"error": traceback.format_exc()}).encode())
    raise SystemExit(1)
control.send(json.dumps({"ready": os.getpid()}).encode())


def serve():
    while True:
        message, fds, _flags, _address = socket.recv_fds(control, 1 << 20, 4)
        if not message:
            raise SystemExit(0)  # the tests are over
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:  # waiters that are done
                pass
        except ChildProcessError:
            pass
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork():
            for fd in fds:
                os.close(fd)
            continue
        # The waiter.
        control.close()
        reply = socket.socket(fileno=fds[0])
        request = json.loads(message)
        pid = os.fork()
        if pid == 0:  # The command.
            reply.close()
            for target, fd in enumerate(fds[1:]):
                os.dup2(fd, target)
                os.close(fd)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            time.tzset()
            random.seed()
            sys.path[:] = base_path
            if not sys.flags.safe_path:
                sys.path[0] = os.getcwd()
            sys.argv[:] = request["argv"]
            return
        for fd in fds[1:]:
            os.close(fd)
        try:
            reply.send(json.dumps({"pid": pid}).encode())
            status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            reply.send(json.dumps({"status": status}).encode())
        finally:
            os._exit(0)


serve()
del serve, control, base_path
import runpy
runpy.run_module("segledger", run_name="__main__", alter_sys=True)
"""


class _CliServer:
    """One per test process (each pytest-xdist worker has its own), started by the first command."""

    _shared: _CliServer | None = None
    _unavailable = False
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.startup = _startup(dict(os.environ))
        self.folder = os.getcwd()  # the server's, first on its sys.path as it imported
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs, tempfile.TemporaryFile() as said:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _CLI_SERVER, str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=said,
                stderr=said)
            self.control = ours
            self.control.settimeout(CLI_TIMEOUT_S)
            atexit.register(self.close)
            hello = _receive(self.control)
            said.seek(0)
            output = said.read().decode(errors="replace")
        if "ready" not in hello or output:
            # A fresh interpreter would show what importing printed; this one cannot.
            self.close()
            raise RuntimeError(f"{hello.get('error') or ''}{output}")

    @classmethod
    def shared(cls) -> _CliServer | None:
        if os.environ.get("SEGLEDGER_TEST_FRESH_CLI") == "1" or cls._unavailable:
            return None
        with cls._lock:
            if cls._shared is None or cls._shared.process.poll() is not None:
                try:
                    cls._shared = cls()
                except (OSError, RuntimeError, ValueError) as error:
                    # Fresh interpreters then, which show whatever stopped this one.
                    warnings.warn(f"segledger commands start fresh interpreters: {error}",
                                  stacklevel=3)
                    cls._unavailable = True
                    return None
            return cls._shared

    def run(self, command: list[str], stdin: str | None, env: dict[str, str],
            folder: str) -> subprocess.CompletedProcess[str] | None:
        """The command's outcome; None for a request too long for one message (arguments or
        an environment of hundreds of kilobytes), which a fresh interpreter then runs."""
        request = json.dumps({"argv": ["-m", *command[3:]], "cwd": folder, "env": env}).encode()
        if len(request) > _REQUEST_LIMIT:
            return None
        deadline = time.monotonic() + CLI_TIMEOUT_S
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = (os.dup(0), None) if stdin is None else os.pipe()  # None: this one's stdin
        with ours:
            try:
                with self._lock:
                    socket.send_fds(self.control, [request],
                                    [theirs.fileno(), in_r, out_w, err_w])
                ours.settimeout(CLI_TIMEOUT_S)
                pid = _receive(ours)["pid"]
            except BaseException:
                for fd in (out_r, err_r) if in_w is None else (out_r, err_r, in_w):
                    os.close(fd)
                raise
            finally:  # the command's ends are the command's now
                theirs.close()
                for fd in (in_r, out_w, err_w):
                    os.close(fd)
            try:
                output = _communicate(in_w, (stdin or "").encode(_ENCODING), out_r, err_r,
                                      deadline)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                _receive(ours)
                raise subprocess.TimeoutExpired(command, CLI_TIMEOUT_S) from None
            returncode = int(_receive(ours)["status"])
        return subprocess.CompletedProcess(command, returncode, _text(output[out_r]),
                                           _text(output[err_r]))

    def close(self) -> None:
        self.control.close()  # the server reads the end of its requests and exits
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


_REQUEST_LIMIT = 64 * 1024  # well below what one message of a local socket can carry


def _receive(channel: socket.socket) -> dict[str, Any]:
    message = channel.recv(1 << 16)
    if not message:
        raise RuntimeError("the segledger command server ended")
    answer: dict[str, Any] = json.loads(message)
    return answer


# What subprocess.run(text=True) decodes with: the locale's encoding and universal newlines.
_ENCODING = locale.getpreferredencoding(False)


def _text(data: bytes) -> str:
    return data.decode(_ENCODING).replace("\r\n", "\n").replace("\r", "\n")


def _communicate(in_w: int | None, stdin: bytes, out_r: int, err_r: int,
                 deadline: float) -> dict[int, bytes]:
    """Writes stdin while reading stdout and stderr to their ends, as Popen.communicate does."""
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    pending = memoryview(stdin)
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        if in_w is not None and pending:
            os.set_blocking(in_w, False)
            selector.register(in_w, selectors.EVENT_WRITE)
        elif in_w is not None:
            os.close(in_w)
        try:
            while selector.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise subprocess.TimeoutExpired("segledger", CLI_TIMEOUT_S)
                for key, _events in selector.select(min(left, 1.0)):
                    fd = int(key.fd)
                    if fd == in_w:
                        try:
                            pending = pending[os.write(fd, pending[:65536]):]
                        except BrokenPipeError:  # the command stopped reading: fine
                            pending = pending[:0]
                        if not pending:
                            selector.unregister(fd)
                            os.close(fd)
                    elif chunk := os.read(fd, 65536):
                        chunks[fd].append(chunk)
                    else:
                        selector.unregister(fd)
        finally:
            if in_w is not None and in_w in {key.fd for key in selector.get_map().values()}:
                os.close(in_w)
            for fd in chunks:
                os.close(fd)
    return {fd: b"".join(parts) for fd, parts in chunks.items()}

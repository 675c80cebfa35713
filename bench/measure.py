"""Running one measured step in a child process: its wall time and its own peak RSS.

Each heavy step runs in a process of its own (the `segledger` command, or `python -m
bench.worker` for a service call), so that its peak resident set is its own and not the
benchmark's: os.wait4 returns the resource usage of exactly that child.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_mb: float
    returncode: int | None  # None: killed at the time limit
    stdout: str
    stderr: str

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def tail(self, lines: int = 3) -> str:
        """The last lines the process wrote (stderr, else stdout), on one line."""
        said = (self.stderr or self.stdout).strip().splitlines()[-lines:]
        return " | ".join(line.strip() for line in said)


def run(command: list[str], *, timeout: float, stdout: Path | None = None,
        cwd: str | None = None) -> Measured:
    """Run `command`, its output to files (to `stdout` if given), killed after `timeout` s."""
    with tempfile.TemporaryDirectory(prefix="segledger-bench-out-") as scratch:
        out_path = stdout or Path(scratch) / "stdout"
        err_path = Path(scratch) / "stderr"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            started = time.perf_counter()
            child = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                     cwd=cwd, start_new_session=True)
            ended: list[tuple[float, int, Any]] = []

            def reap() -> None:
                _, status, usage = os.wait4(child.pid, 0)
                ended.append((time.perf_counter(), status, usage))

            waiter = threading.Thread(target=reap, daemon=True)
            waiter.start()
            waiter.join(timeout)
            killed = waiter.is_alive()
            if killed:
                os.killpg(child.pid, signal.SIGKILL)
                waiter.join()
            finished, status, usage = ended[0]
            child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        return Measured(finished - started, usage.ru_maxrss / 1024,
                        None if killed else child.returncode,
                        "" if stdout else out_path.read_text(errors="replace"),
                        err_path.read_text(errors="replace"))


def segledger(db: str, *args: str, timeout: float, stdout: Path | None = None) -> Measured:
    """The real command line, as a user runs it (parsing and printing included)."""
    return run([sys.executable, "-m", "segledger", "--db", db, *args], timeout=timeout,
               stdout=stdout)


def worker(name: str, timeout: float, **arguments: Any) -> tuple[dict[str, Any], Measured]:
    """`python -m bench.worker NAME ARGUMENTS`: a measured service call; its JSON result."""
    measured = run([sys.executable, "-m", "bench.worker", name, json.dumps(arguments)],
                   timeout=timeout, cwd=str(Path(__file__).resolve().parents[1]))
    if measured.returncode != 0:
        raise StepFailed(f"bench.worker {name}", measured)
    result: dict[str, Any] = json.loads(measured.stdout.strip().splitlines()[-1])
    return result, measured


class StepFailed(RuntimeError):
    def __init__(self, what: str, measured: Measured) -> None:
        why = (f"timed out after {measured.seconds:.0f} s" if measured.timed_out
               else f"exit {measured.returncode}: {measured.tail()}")
        super().__init__(f"{what}: {why}")
        self.measured = measured

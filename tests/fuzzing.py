"""Shared by the parsers' fuzz tests: how many cases to try, and a guard against a hang.

The default run tries a quarter of each test's full count, so that the suite stays quick
enough to run often; `SEGLEDGER_FUZZ=full` (as in CI, `.ci/run`) tries the full count,
thousands of cases per parser.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

# A parse that has not answered in this long is hung, not slow: generous, so that a loaded
# machine never turns into a failure, and still far below the test run's own limits.
HANG_S = 30.0


def examples(full: int) -> int:
    if os.environ.get("SEGLEDGER_FUZZ") == "full":
        return full
    return max(100, full // 4)


class Hang(Exception):
    pass


@contextmanager
def no_hang(seconds: float = HANG_S) -> Iterator[None]:
    """Turns a parse that never ends into a failure instead of a hung test run."""
    def expire(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

"""One measured step in a process of its own: python -m bench.worker NAME ARGUMENTS_JSON.

Prints the step's result as one JSON line; bench.measure.worker runs it and reads it, along
with the process's own peak RSS.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from bench import baseline, reads

STEPS: dict[str, Callable[..., dict[str, Any]]] = {
    "baseline": baseline.measure,
    "past_balance": reads.past_balance,
    "trial_balance": reads.trial_balance,
}


def main(argv: list[str]) -> None:
    name, arguments = argv[1], json.loads(argv[2])
    print(json.dumps(STEPS[name](**arguments)))


if __name__ == "__main__":
    main(sys.argv)

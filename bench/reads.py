"""Reading the ledger as the commands do, timed call by call (worker steps: see bench.worker)."""

from __future__ import annotations

import random
import statistics
import time
from datetime import datetime, timedelta
from typing import Any

from ledger import service, views
from ledger.money import format_amount
from ledger.storage.reading import AccountFilter


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def past_balance(url: str, account: str, first_at: str, last_at: str, times: int, seed: int,
                 final_balance: str | None = None) -> dict[str, Any]:
    """The balance of one account at `times` random past times, through the function behind
    `segledger balances --as-of T --account A` (one engine, as a server would keep)."""
    engine = service.connect(url)
    first, last = datetime.fromisoformat(first_at), datetime.fromisoformat(last_at)
    where = AccountFilter(codes=(account,))
    rng = random.Random(seed)
    span = (last - first).total_seconds()
    moments = [first + timedelta(seconds=rng.uniform(0, span)) for _ in range(times)]
    views.balances(engine, first, where)  # warm: the pool's connection, the catalog
    took = []
    for moment in moments:
        started = time.perf_counter()
        result = views.balances(engine, moment, where)
        took.append(time.perf_counter() - started)
        assert [row.account for row in result.rows] == [account]
    final = views.balances(engine, last, where).rows[0]
    if final_balance is not None:
        shown = format_amount(final.balance_minor, final.scale)
        assert shown == final_balance, f"{account}: ledger {shown}, generator {final_balance}"
    engine.dispose()
    ordered = sorted(took)
    return {"account": account, "calls": times, "median_ms": _ms(statistics.median(took)),
            "p90_ms": _ms(ordered[int(0.9 * (len(ordered) - 1))]), "max_ms": _ms(max(took)),
            "min_ms": _ms(min(took))}


def trial_balance(url: str, as_of: str) -> dict[str, Any]:
    """Every account's balance at a past time: the function behind `segledger balances`."""
    engine = service.connect(url)
    started = time.perf_counter()
    result = views.balances(engine, datetime.fromisoformat(as_of), AccountFilter())
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"as_of": as_of, "accounts": len(result.rows), "seconds": round(seconds, 3),
            "totals": {total.asset: format_amount(total.total_minor, total.scale)
                       for total in result.totals}}

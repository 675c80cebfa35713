"""Property tests: random entry streams never break the ledger's invariants.

Each generated entry is offered to the ledger; the ones it refuses are dropped, the ones it
accepts must keep every asset's postings summing to zero, keep custody and customer balances
non-negative, and never lower coverage outside the firewall's two exceptions.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.book import Book
from ledger.errors import InputError
from ledger.money import format_amount
from tests.domain import new_book, run

CUSTOMERS = ["c-1", "c-2", "c-3"]
ACCOUNTS_BY_ASSET = {
    "JPY": ["custody:customer:trust:JPY", "custody:company:operating:JPY", "equity:capital:JPY",
            "revenue:fees:JPY", "expense:rent:JPY", "custody:company:reserve:JPY",
            "reserve:liability:JPY"] + [f"customer:{c}:JPY" for c in CUSTOMERS],
    "BTC": ["custody:customer:cold:BTC", "custody:customer:hot:BTC",
            "custody:company:guarantee:BTC", "equity:capital:BTC", "loss:incident:BTC"]
           + [f"customer:{c}:BTC" for c in CUSTOMERS],
}
TYPES = ["deposit", "withdrawal", "trade", "fee", "transfer", "sweep", "top_up", "incident",
         "adjustment", "reserve_provision", "reserve_draw"]
RESERVE = ("custody:company:reserve:JPY", "reserve:liability:JPY")
SCALES = {"JPY": 0, "BTC": 8}


@st.composite
def entries(draw: st.DrawFn, index: int) -> dict[str, Any]:
    lines = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        asset = draw(st.sampled_from(sorted(ACCOUNTS_BY_ASSET)))
        debit, credit = draw(st.lists(st.sampled_from(ACCOUNTS_BY_ASSET[asset]), min_size=2,
                                      max_size=2, unique=True))
        minor = draw(st.integers(min_value=1, max_value=5 * 10 ** (SCALES[asset] + 2)))
        lines.append({"debit": debit, "credit": credit,
                      "amount": format_amount(minor, SCALES[asset])})
    kind = draw(st.sampled_from(TYPES))
    item = {"key": f"k{index}", "type": kind, "effective_at": "2025-11-25T09:00:00+09:00",
            "lines": lines}
    if kind == "incident":
        item["metadata"] = {"incident": f"INC-{index}", "incident_kind": "theft"}
    elif kind == "reserve_draw":
        item["metadata"] = {"incident": f"INC-{draw(st.integers(0, max(index - 1, 0)))}"}
    return item


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    size = draw(st.integers(min_value=1, max_value=60))
    return [draw(entries(index)) for index in range(size)]


def raw_sum_per_asset(book: Book) -> dict[str, int]:
    """Σ debits − Σ credits per asset, rebuilt from the normal-side balances."""
    totals: dict[str, int] = defaultdict(int)
    for code, balance in book.balances.items():
        account = book.accounts[code]
        totals[account.asset] += account.normal_sign * balance
    return dict(totals)


def coverage_from_balances(book: Book) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for code, balance in book.balances.items():
        account = book.accounts[code]
        totals[account.asset] += account.coverage_sign * balance
    return totals


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_random_streams_keep_every_invariant(stream: list[dict[str, Any]]) -> None:
    book = new_book()
    accepted = 0
    for item in stream:
        before = dict(book.coverage)
        reserve_before = [book.balances.get(code, 0) for code in RESERVE]
        try:
            run(book, [item])
        except InputError:
            continue
        accepted += 1
        assert all(total == 0 for total in raw_sum_per_asset(book).values())
        for code, balance in book.balances.items():
            if book.accounts[code].must_stay_non_negative:
                assert balance >= 0, code
        recomputed = coverage_from_balances(book)
        for asset in SCALES:
            assert book.coverage.get(asset, 0) == recomputed.get(asset, 0)
            after = book.coverage.get(asset, 0)
            if after < before.get(asset, 0):
                assert item["type"] == "incident" or (item["type"] == "sweep" and after >= 0), (
                    f"{item['type']} lowered {asset} coverage from {before.get(asset, 0)} to {after}")
        reserve_after = [book.balances.get(code, 0) for code in RESERVE]
        if any(after < before for after, before in zip(reserve_after, reserve_before, strict=True)):
            # A draw pays for an incident; an incident records reserve money lost.
            assert item["type"] in ("reserve_draw", "incident"), \
                f"{item['type']} took from the reserve"
            assert item["metadata"]["incident"] in book.incidents
        if any(book.coverage.get(asset, 0) < 0 for asset in SCALES):
            assert book.open_breaches, "negative coverage without an open breach"
    assert accepted <= len(stream)


@settings(max_examples=80, deadline=None)
@given(streams())
def test_a_rejected_entry_changes_nothing(stream: list[dict[str, Any]]) -> None:
    book = new_book()
    for item in stream:
        state = (dict(book.balances), dict(book.coverage), set(book.open_breaches),
                 dict(book.incidents))
        try:
            run(book, [item])
        except InputError:
            assert (book.balances, book.coverage, book.open_breaches, book.incidents) == state

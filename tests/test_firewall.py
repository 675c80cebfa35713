"""The segregation firewall (DESIGN.md invariant 5) and the other entry invariants, on the
domain alone: customer coverage may fall only by a sweep down to zero or by an incident."""

from __future__ import annotations

import pytest

from ledger.errors import InputError
from tests.domain import new_book, run
from tests.helpers import THEFT, deposit, entry

TRUST, OPERATING = "custody:customer:trust:JPY", "custody:company:operating:JPY"
HOT, COLD = "custody:customer:hot:BTC", "custody:customer:cold:BTC"


def funded_book():  # type: ignore[no-untyped-def]
    book = new_book()
    run(book, [
        deposit("d1", "c-001", "1000000"),
        deposit("d2", "c-001", "2", asset="BTC"),
        entry("cap", "adjustment", (OPERATING, "equity:capital:JPY", "50000000")),
    ])
    return book


def test_deposit_and_withdrawal_leave_coverage_unchanged() -> None:
    book = funded_book()
    run(book, [entry("w1", "withdrawal", ("customer:c-001:JPY", TRUST, "400000"))])
    assert book.coverage["JPY"] == 0
    assert book.balances[TRUST] == 600_000
    assert book.balances["customer:c-001:JPY"] == 600_000


def test_fee_collection_leaves_excess_in_customer_pool() -> None:
    book = funded_book()
    run(book, [entry("f1", "fee", ("customer:c-001:JPY", "revenue:fees:JPY", "500"))])
    assert book.coverage["JPY"] == 500
    assert book.balances["revenue:fees:JPY"] == 500


def test_sweep_takes_the_excess_out_down_to_zero() -> None:
    book = funded_book()
    run(book, [
        entry("f1", "fee", ("customer:c-001:JPY", "revenue:fees:JPY", "500")),
        entry("s1", "sweep", (OPERATING, TRUST, "500")),
    ])
    assert book.coverage["JPY"] == 0


def test_sweep_larger_than_the_excess_is_refused_naming_asset_and_shortfall() -> None:
    book = funded_book()
    run(book, [entry("f1", "fee", ("customer:c-001:JPY", "revenue:fees:JPY", "500"))])
    with pytest.raises(InputError) as refused:
        run(book, [entry("s1", "sweep", (OPERATING, TRUST, "501"))])
    assert "only 500 JPY of company money stands there; too much by 1 JPY" in refused.value.reason
    assert book.coverage["JPY"] == 500


def test_company_expense_paid_from_customer_money_is_refused() -> None:
    """The FTX lesson: company business may not consume customer assets."""
    book = funded_book()
    with pytest.raises(InputError) as refused:
        run(book, [entry("rent", "adjustment", ("expense:rent:JPY", TRUST, "300000"))])
    message = refused.value.render()
    assert "test.jsonl:1: lines: segregation firewall" in message
    assert "coverage of JPY" in message and "by 300000 JPY" in message


def test_moving_customer_coins_into_a_company_wallet_is_refused() -> None:
    book = funded_book()
    with pytest.raises(InputError, match="segregation firewall"):
        run(book, [entry("t1", "transfer", ("custody:company:guarantee:BTC", HOT, "0.1"))])


def test_incident_is_accepted_and_opens_a_breach_that_a_top_up_closes() -> None:
    book = funded_book()
    hack = run(book, [entry("hack", "incident", ("loss:incident:BTC", HOT, "0.5"),
                            metadata=THEFT)])
    assert book.coverage["BTC"] == -50_000_000
    assert [(e.asset, e.opened, e.coverage_minor) for e in hack.breach_events] == [
        ("BTC", True, -50_000_000)]
    partial = run(book, [entry("t1", "top_up", (HOT, "equity:capital:BTC", "0.2"))])
    assert partial.breach_events == []
    restored = run(book, [entry("t2", "top_up", (HOT, "equity:capital:BTC", "0.3"))])
    assert [(e.asset, e.opened, e.coverage_minor) for e in restored.breach_events] == [
        ("BTC", False, 0)]
    assert book.open_breaches == set()


def test_reversal_may_lower_coverage_only_down_to_zero() -> None:
    book = funded_book()
    run(book, [entry("f1", "fee", ("customer:c-001:JPY", "revenue:fees:JPY", "500")),
               {"key": "r1", "type": "reversal", "effective_at": "2025-11-25T10:00:00+09:00",
                "reverses": "f1"}])
    assert book.coverage["JPY"] == 0
    assert book.balances["customer:c-001:JPY"] == 1_000_000


def test_custody_cannot_go_below_zero() -> None:
    book = funded_book()
    with pytest.raises(InputError) as refused:
        run(book, [entry("m1", "transfer", (COLD, HOT, "3"))])
    assert "custody:customer:hot:BTC would fall below zero" in refused.value.reason
    assert "too little by 1.00000000 BTC" in refused.value.reason


def test_customer_liability_cannot_go_below_zero() -> None:
    book = funded_book()
    run(book, [deposit("d3", "c-002", "5000000")])
    with pytest.raises(InputError, match="customer:c-001:JPY would fall below zero"):
        run(book, [entry("w1", "withdrawal", ("customer:c-001:JPY", TRUST, "1000001"))])


def test_customer_accounts_open_on_first_use() -> None:
    book = new_book()
    batch = run(book, [deposit("d1", "new-customer_9", "10")])
    assert [a.code for a in batch.new_accounts] == ["customer:new-customer_9:JPY"]


def test_a_line_between_two_assets_is_refused() -> None:
    book = funded_book()
    with pytest.raises(InputError) as refused:
        run(book, [entry("x", "trade", ("customer:c-001:BTC", "customer:c-001:JPY", "1"))])
    assert refused.value.field == "lines[0].credit"
    assert "mixed assets" in refused.value.reason


def test_in_batch_duplicate_is_skipped_and_changed_duplicate_refused() -> None:
    book = new_book()
    same = run(book, [deposit("d1", "c-1", "10"), deposit("d1", "c-1", "10.0")])
    assert (len(same.entries), same.skipped) == (1, 1)
    with pytest.raises(InputError, match=r"appears twice in this file \(lines 1 and 2\) with "
                       "different content"):
        run(new_book(), [deposit("d1", "c-1", "10"), deposit("d1", "c-1", "11")])

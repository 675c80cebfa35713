"""Transaction-level matching: which statement line or chain transfer is which ledger entry."""

from __future__ import annotations

from datetime import date

from reconcile.matching import Item, match

D = date(2025, 11, 25)


def test_reference_match_one_to_one_leaves_the_fee_unmatched() -> None:
    result = match(
        [Item("x1", 200_000, D, "E2E-1"), Item("x2", -330, D, None, "bank fee")],
        [Item("l1", 200_000, D, "E2E-1")])
    assert [(m.rule, m.external, m.ledger) for m in result.matches] == [
        ("reference", ("x1",), ("l1",))]
    assert [i.id for i in result.unmatched_external] == ["x2"]
    assert result.explained_minor == -330


def test_many_ledger_entries_to_one_statement_line() -> None:
    result = match([Item("x1", 300, D, "BATCH-7")],
                   [Item("l1", 100, D, "BATCH-7"), Item("l2", 200, D, "BATCH-7")])
    assert [(m.rule, m.external, m.ledger) for m in result.matches] == [
        ("reference_many_to_one", ("x1",), ("l1", "l2"))]
    assert result.explained_minor == 0


def test_many_statement_lines_to_one_ledger_entry() -> None:
    result = match([Item("x1", 40, D, "R"), Item("x2", 60, D, "R")], [Item("l1", 100, D, "R")])
    assert [(m.rule, m.external, m.ledger) for m in result.matches] == [
        ("reference_many_to_one", ("x1", "x2"), ("l1",))]


def test_amount_and_date_within_the_window_closest_first() -> None:
    result = match([Item("x1", 500, date(2025, 11, 26))],
                   [Item("l1", 500, date(2025, 11, 20)), Item("l2", 500, date(2025, 11, 25)),
                    Item("l3", 500, date(2025, 11, 24))])
    assert [(m.rule, m.ledger) for m in result.matches] == [("amount_date", ("l2",))]
    assert sorted(i.id for i in result.unmatched_ledger) == ["l1", "l3"]


def test_an_item_is_never_matched_twice() -> None:
    result = match([Item("x1", 500, D, "A"), Item("x2", 500, D, "A")], [Item("l1", 500, D, "A")])
    assert len(result.matches) == 1
    assert [i.id for i in result.unmatched_external] == ["x2"]
    assert result.explained_minor == 500


def test_unmatched_items_add_up_to_the_difference() -> None:
    external = [Item("x1", 100, D, "a"), Item("x2", 7, D), Item("x3", -3, D)]
    ledger = [Item("l1", 100, D, "a"), Item("l2", -50, D, "w")]
    result = match(external, ledger)
    assert result.explained_minor == sum(i.amount_minor for i in external) - sum(
        i.amount_minor for i in ledger)

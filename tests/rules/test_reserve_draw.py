"""RESERVE-DRAW (R1): every debit of the liability reserve since the previous run is reported
as a flagged draw, naming its entry and the incident it compensated."""

from datetime import UTC, datetime

from reconcile.rules.base import Draw
from reconcile.rules.params import NoParams
from reconcile.rules.reserve import reserve_draw
from tests.rules.facts import only_check, reserve_facts, run_facts

ASSETS = [("co:jpy:reserve", "JPY", "company", "bank", "reserve", "0", "0")]


def test_no_draws_is_one_passing_check() -> None:
    facts = run_facts(ASSETS, {}, reserve=reserve_facts())
    check = only_check(reserve_draw(facts, NoParams()))
    assert (check.rule, check.asset, check.status, check.value, check.threshold) == (
        "RESERVE-DRAW", "*", "pass", "0", "0")
    assert check.detail == "no reserve draws since the ledger began"


def test_no_draws_since_the_previous_run_names_that_run() -> None:
    previous = datetime(2026, 3, 30, 15, 0, tzinfo=UTC)
    facts = run_facts(ASSETS, {}, reserve=reserve_facts(draws_since=previous))
    check = only_check(reserve_draw(facts, NoParams()))
    assert check.detail == "no reserve draws since the previous run (as of 2026-03-30T15:00:00+00:00)"


def test_each_draw_is_a_failing_check_naming_entry_and_incident() -> None:
    theft = Draw("draw-1", "reserve_draw", datetime(2026, 3, 20, 9, 0, tzinfo=UTC), "JPY",
                 48_200_000_000, "INC-2026-001", "theft", "hot wallet theft, customers repaid")
    second = Draw("draw-2", "reserve_draw", datetime(2026, 3, 21, 9, 0, tzinfo=UTC), "BTC",
                  150_000_000, "INC-2026-002", "outage", None)
    facts = run_facts(ASSETS, {}, reserve=reserve_facts(draws=[theft, second]))
    first_check, second_check = reserve_draw(facts, NoParams())
    assert (first_check.asset, first_check.status, first_check.value, first_check.threshold) == (
        "JPY", "fail", "48200000000", "0")
    assert first_check.detail == (
        "reserve draw draw-1 on 2026-03-20T09:00:00+00:00: 48200000000 JPY for incident "
        "INC-2026-001 (theft) (hot wallet theft, customers repaid)")
    assert first_check.numbers == {"entry": "draw-1", "type": "reserve_draw",
                                   "incident": "INC-2026-001",
                                   "effective_at": "2026-03-20T09:00:00+00:00"}
    assert (second_check.asset, second_check.value) == ("BTC", "1.50000000")
    assert "incident INC-2026-002 (outage)" in second_check.detail


def test_a_draw_without_an_incident_says_so() -> None:
    draw = Draw("adj-9", "adjustment", datetime(2026, 3, 22, tzinfo=UTC), "JPY", 1000, None, None,
                None)
    facts = run_facts(ASSETS, {}, reserve=reserve_facts(draws=[draw]))
    check = only_check(reserve_draw(facts, NoParams()))
    assert check.status == "fail"
    assert check.detail.startswith("reserve draw adj-9 on 2026-03-22T00:00:00+00:00: 1000 JPY")
    assert "with no incident" in check.detail
    assert check.numbers["incident"] == ""

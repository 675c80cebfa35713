"""RESERVE-DRAW (R1): every debit of the liability reserve in the run's window is reported as a
flagged draw, naming its entry and the incident it compensated. The window is the as-of's
previous business day(s) up to the as-of (which draws fall in it: reconcile.store, tested in
tests/test_reconcile_windows.py); the rule reports what it is given and names the window."""

from datetime import UTC, datetime

from reconcile.rules.base import Draw
from reconcile.rules.params import DrawParams
from reconcile.rules.reserve import reserve_draw
from tests.rules.facts import only_check, reserve_facts, run_facts

ASSETS = [("co:jpy:reserve", "JPY", "company", "bank", "reserve", "0", "0")]
ONE_DAY = DrawParams()


def test_no_draws_is_one_passing_check_naming_the_window() -> None:
    facts = run_facts(ASSETS, {}, reserve=reserve_facts())
    check = only_check(reserve_draw(facts, ONE_DAY))
    assert (check.rule, check.asset, check.status, check.value, check.threshold) == (
        "RESERVE-DRAW", "*", "pass", "0", "0")
    assert check.detail == ("no reserve draws effective after 2026-03-30T15:00:00+00:00 up to "
                            "the as-of 2026-03-31T15:00:00+00:00 (1 business day)")


def test_a_longer_window_is_named_with_its_start() -> None:
    # As of Tuesday 31 March, three business days back is Thursday 26 March.
    start = datetime(2026, 3, 26, 15, 0, tzinfo=UTC)
    facts = run_facts(ASSETS, {}, reserve=reserve_facts(draws_after=start))
    check = only_check(reserve_draw(facts, DrawParams(window_business_days=3)))
    assert check.detail == ("no reserve draws effective after 2026-03-26T15:00:00+00:00 up to "
                            "the as-of 2026-03-31T15:00:00+00:00 (3 business days)")


def test_the_window_defaults_to_one_business_day() -> None:
    assert DrawParams().window_business_days == 1


def test_a_draw_booked_late_says_when_it_was_recorded() -> None:
    late = Draw("draw-old", "reserve_draw", datetime(2026, 3, 20, 9, 0, tzinfo=UTC), "JPY", 5000,
                "INC-1", "theft", None, recorded_at=datetime(2026, 3, 31, 1, 0, tzinfo=UTC))
    check = only_check(reserve_draw(run_facts(ASSETS, {}, reserve=reserve_facts(draws=[late])),
                                    ONE_DAY))
    assert (check.status, check.value) == ("fail", "5000")
    assert check.detail == ("reserve draw draw-old on 2026-03-20T09:00:00+00:00: 5000 JPY for "
                            "incident INC-1 (theft); booked late: recorded on "
                            "2026-03-31T01:00:00+00:00")
    assert check.numbers["recorded_at"] == "2026-03-31T01:00:00+00:00"


def test_each_draw_is_a_failing_check_naming_entry_and_incident() -> None:
    theft = Draw("draw-1", "reserve_draw", datetime(2026, 3, 20, 9, 0, tzinfo=UTC), "JPY",
                 48_200_000_000, "INC-2026-001", "theft", "hot wallet theft, customers repaid")
    second = Draw("draw-2", "reserve_draw", datetime(2026, 3, 21, 9, 0, tzinfo=UTC), "BTC",
                  150_000_000, "INC-2026-002", "outage", None)
    facts = run_facts(ASSETS, {}, reserve=reserve_facts(draws=[theft, second]))
    first_check, second_check = reserve_draw(facts, ONE_DAY)
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
    check = only_check(reserve_draw(facts, ONE_DAY))
    assert check.status == "fail"
    assert check.detail.startswith("reserve draw adj-9 on 2026-03-22T00:00:00+00:00: 1000 JPY")
    assert "with no incident" in check.detail
    assert check.numbers["incident"] == ""

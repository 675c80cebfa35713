"""What a run covers, from the rulebook alone, on SQLite and PostgreSQL: the RESERVE-DRAW
window (the as-of's previous business day up to the as-of, whatever runs came before), stale
evidence (a break, never a silent comparison), the matching window and amount tolerance, and
the currency values are compared in. Business days skip Saturdays and Sundays; dates are the
rulebook's zone's (Asia/Tokyo for jp-fsa). 25 November 2025 is a Tuesday."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger.chart import parse_chart
from ledger.errors import InputError
from ledger.model import Account, Location, Pool, Role
from ledger.reserves import parse_register
from ledger.storage.chart_store import load_chart
from ledger.storage.reserve_store import load_register
from reconcile import reports, service
from reconcile.engine import (
    ComparePolicy,
    CustodyFacts,
    Freshness,
    LedgerFacts,
    business_days_after,
    business_days_before,
    business_window_start,
    compare,
)
from reconcile.evidence import Observation
from reconcile.rules.rulebook import Rulebook, parse_rulebook, preset
from tests.camt import Bal, Ntry, Stmt, document, statement
from tests.helpers import CHART, THEFT, cli, entry, post

IBAN = "JP12TRUST0000001234567"
TRUST, HOT = "custody:customer:trust:JPY", "custody:customer:hot:BTC"
RESERVE_CASH, OPERATING = "custody:company:reserve:JPY", "custody:company:operating:JPY"


def _book(**document: Any) -> Rulebook:
    """A rulebook extending jp-fsa (the reserve floor set aside) with what is given."""
    rules = {"JP-RESERVE": {"floor": "0"}, **document.pop("rules", {})}
    return parse_rulebook(json.dumps({"name": "test", "version": "1", "extends": "jp-fsa",
                                      "rules": rules, **document}), "test.json")


def _checks(result: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [c for c in result["checks"] if c["rule"] == rule]


# --- business days ---------------------------------------------------------------------------

def test_business_days_skip_the_weekend() -> None:
    friday, saturday, monday = date(2025, 11, 28), date(2025, 11, 29), date(2025, 12, 1)
    assert business_days_after(friday, monday) == 1  # Monday only
    assert business_days_after(friday, saturday) == 0
    assert business_days_after(date(2025, 11, 20), date(2025, 11, 25)) == 3  # Fri, Mon, Tue
    assert business_days_after(monday, friday) == 0  # evidence after the as-of is not old
    assert business_days_before(monday, 1) == friday
    assert business_days_before(date(2025, 11, 30), 1) == friday  # from a Sunday
    assert business_days_before(date(2025, 11, 26), 3) == date(2025, 11, 21)


def test_a_window_starts_at_the_as_of_time_of_day_business_days_back_in_the_zone() -> None:
    # Monday 23:00 in Tokyo (14:00 UTC): one business day back is Friday 23:00 in Tokyo.
    monday = datetime(2025, 12, 1, 14, 0, tzinfo=UTC)
    assert business_window_start(monday, 1, "Asia/Tokyo") == datetime(2025, 11, 28, 14, 0,
                                                                      tzinfo=UTC)
    # Monday 01:00 UTC is Monday in UTC but Monday 10:00 in Tokyo: the same instant either way
    # here; Sunday 20:00 UTC is already Monday 05:00 in Tokyo, whose previous business day is
    # Friday, while in UTC Sunday's is Friday too.
    sunday_night = datetime(2025, 11, 30, 20, 0, tzinfo=UTC)
    assert business_window_start(sunday_night, 1, "Asia/Tokyo") == datetime(
        2025, 11, 27, 20, 0, tzinfo=UTC)
    assert business_window_start(sunday_night, 1, "UTC") == datetime(2025, 11, 28, 20, 0,
                                                                     tzinfo=UTC)


# --- RESERVE-DRAW: the as-of's window ---------------------------------------------------------

DRAW_AT = "2025-11-26T12:00:00+09:00"  # Wednesday
WEDNESDAY_END = datetime(2025, 11, 26, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo
THURSDAY_END = WEDNESDAY_END + timedelta(days=1)


@pytest.fixture
def reserve(engine: Engine) -> Engine:
    """A 2,000,000,000 JPY reserve; 1 BTC stolen on Wednesday morning, and 15,000,000 JPY drawn
    from the reserve for it at noon (Tokyo)."""
    load_chart(engine, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    post(engine, [
        entry("capital", "adjustment", (OPERATING, "equity:capital:JPY", "3000000000"),
              at="2025-11-20T09:00:00+09:00"),
        entry("provision", "reserve_provision",
              ("equity:capital:JPY", "reserve:liability:JPY", "2000000000"),
              (RESERVE_CASH, OPERATING, "2000000000"), at="2025-11-20T09:00:00+09:00"),
        entry("d-hot", "deposit", (HOT, "customer:c-2:BTC", "3"), at="2025-11-20T09:00:00+09:00"),
        entry("theft", "incident", ("loss:incident:BTC", HOT, "1"),
              at="2025-11-26T09:00:00+09:00", metadata=THEFT),
        entry("draw", "reserve_draw", ("reserve:liability:JPY", RESERVE_CASH, "15000000"),
              at=DRAW_AT, metadata={"incident": "INC-1"})])
    return engine


def _draws(engine: Engine, as_of: datetime, book: Rulebook | None = None) -> list[dict[str, Any]]:
    outcome = service.run(engine, as_of=as_of, evidence_paths=[], rulebook=book or _book())
    rerun = service.rerun(engine, outcome.result["run_id"])
    assert (rerun.same, rerun.differences) == (True, [])
    return _checks(outcome.result, "RESERVE-DRAW")


def test_every_run_for_one_as_of_flags_the_same_draw_and_its_rerun_agrees(
        reserve: Engine) -> None:
    first = _draws(reserve, WEDNESDAY_END)
    assert [(c["status"], c["asset"], c["value"], c["numbers"]["entry"]) for c in first] == [
        ("fail", "JPY", "15000000", "draw")]
    assert first[0]["detail"] == ("reserve draw draw on 2025-11-26T03:00:00+00:00: 15000000 JPY "
                                  "for incident INC-1 (theft)")
    # A later run for another day, then the same as-of again: the same flag, whatever came
    # before (it used to be "since the last run", so this one passed).
    _draws(reserve, THURSDAY_END)
    assert _draws(reserve, WEDNESDAY_END) == first


def test_a_run_whose_window_excludes_the_draw_passes(reserve: Engine) -> None:
    [thursday] = _draws(reserve, THURSDAY_END)
    assert (thursday["status"], thursday["value"]) == ("pass", "0")
    assert thursday["detail"] == (
        "no reserve draws effective after 2025-11-26T14:00:00+00:00 up to the as-of "
        "2025-11-27T14:00:00+00:00 (1 business day)")
    [tuesday] = _draws(reserve, WEDNESDAY_END - timedelta(days=1))  # before the draw
    assert tuesday["status"] == "pass"


def test_the_rulebook_widens_the_window(reserve: Engine) -> None:
    [flag] = _draws(reserve, THURSDAY_END, _book(rules={"RESERVE-DRAW": {"window_business_days": 2}}))
    assert (flag["status"], flag["numbers"]["entry"]) == ("fail", "draw")


def test_a_monday_run_covers_the_weekend(reserve: Engine) -> None:
    post(reserve, [entry("draw-sat", "reserve_draw",
                         ("reserve:liability:JPY", RESERVE_CASH, "1000000"),
                         at="2025-11-29T10:00:00+09:00", metadata={"incident": "INC-1"})])
    monday_end = datetime(2025, 12, 1, 14, 0, tzinfo=UTC)
    [flag] = _draws(reserve, monday_end)
    assert (flag["status"], flag["value"], flag["numbers"]["entry"]) == (
        "fail", "1000000", "draw-sat")
    [tuesday] = _draws(reserve, monday_end + timedelta(days=1))
    assert tuesday["status"] == "pass"


def test_a_draw_booked_late_is_flagged_by_the_run_whose_window_holds_its_recording(
        reserve: Engine) -> None:
    # Effective ten days ago, recorded now: the run for its own day reports it too (by
    # business time), and a run as of now reports it as booked late.
    effective = datetime.now(UTC) - timedelta(days=10)
    post(reserve, [entry("draw-late", "reserve_draw",
                         ("reserve:liability:JPY", RESERVE_CASH, "2000000"),
                         at=effective.isoformat(), metadata={"incident": "INC-1"})])
    # Every entry of this test was recorded just now: the fixture's draw too, booked late.
    flags = _draws(reserve, datetime.now(UTC))
    assert [(c["status"], c["numbers"]["entry"]) for c in flags] == [
        ("fail", "draw"), ("fail", "draw-late")]
    assert all("; booked late: recorded on " in c["detail"] for c in flags)
    [own_day] = _draws(reserve, effective + timedelta(hours=1))
    assert own_day["numbers"]["entry"] == "draw-late" and "booked late" not in own_day["detail"]


# --- stale evidence ---------------------------------------------------------------------------

def _bank_chart() -> dict[str, Any]:
    return {"assets": [{"code": "JPY", "kind": "fiat", "scale": 0},
                       {"code": "BTC", "kind": "crypto", "scale": 8, "chain": "bitcoin"}],
            "accounts": [{"code": TRUST, "asset": "JPY", "pool": "customer", "role": "custody",
                          "location": "bank_trust", "external": {"iban": IBAN}}]}


@pytest.fixture
def bank(engine: Engine) -> Engine:
    """250,000 JPY of customer money in trust since Thursday 20 November."""
    load_chart(engine, parse_chart(json.dumps(_bank_chart()), "chart.json"), "chart.json")
    post(engine, [
        entry("d1", "deposit", (TRUST, "customer:c-1:JPY", "200000"),
              at="2025-11-20T10:00:00+00:00", metadata={"end_to_end_id": "E2E-1"}),
        entry("d2", "deposit", (TRUST, "customer:c-2:JPY", "50000"),
              at="2025-11-20T10:00:00+00:00", metadata={"end_to_end_id": "E2E-2"})])
    return engine


def _statement(tmp_path: Path, closing: str, day: str,
               lines: list[tuple[str, str | None, str]] | None = None) -> str:
    path = tmp_path / f"statement-{day}-{closing}.xml"
    path.write_bytes(statement(IBAN, "JPY", closing, day, lines or []))
    return str(path)


MONDAY_END_TOKYO = datetime(2025, 11, 24, 23, 59, 59, tzinfo=UTC) - timedelta(hours=9)


def test_a_statement_older_than_a_business_day_is_a_stale_break_not_a_comparison(
        bank: Engine, tmp_path: Path) -> None:
    # Closed Thursday 20th; as of Tuesday 25th in Tokyo: Fri, Mon, Tue = 3 business days.
    as_of = datetime(2025, 11, 25, 23, 59, 59, tzinfo=UTC) - timedelta(hours=9)
    outcome = service.run(bank, as_of=as_of, rulebook=_book(),
                          evidence_paths=[_statement(tmp_path, "249000", "2025-11-20")])
    result = outcome.result
    assert (result["status"], outcome.problems) == ("breaks", True)
    [stale] = result["breaks"]
    assert (stale["account"], stale["kind"], stale["difference"]) == (
        TRUST, "stale_evidence", "-1000")
    assert stale["detail"].endswith(
        ": statement closing on 2025-11-20 is 3 business days before the as-of date 2025-11-25 "
        "(as-of 2025-11-25T14:59:59+00:00 in Asia/Tokyo); at most 1 allowed; it says 249000, "
        "the ledger 250000 (external − ledger -1000), not compared as current")
    [trust] = result["accounts"]
    assert (trust["ledger"], trust["external"], trust["difference"], trust["evidence_as_of"]) == (
        "250000", None, None, "2025-11-20")
    assert trust["stale"]["external"] == "249000"
    assert TRUST not in result["matching"]
    [external] = _checks(result, "SEG-EXTERNAL")
    assert (external["status"], external["value"]) == ("fail", "stale evidence")
    # Coverage takes the ledger's figure for the account, and says why.
    [coverage] = [c for c in _checks(result, "SEG-COVERAGE") if c["asset"] == "JPY"]
    assert (coverage["status"], coverage["value"]) == ("pass", "0")
    assert coverage["detail"].endswith(
        f"ledger figure used for {TRUST} (its evidence is too old to compare)")
    assert service.rerun(bank, result["run_id"]).same


def test_friday_s_statement_is_current_on_monday(bank: Engine, tmp_path: Path) -> None:
    outcome = service.run(bank, as_of=MONDAY_END_TOKYO, rulebook=_book(),
                          evidence_paths=[_statement(tmp_path, "250000", "2025-11-21")])
    assert (outcome.result["status"], outcome.result["breaks"]) == ("clean", [])
    assert outcome.result["accounts"][0]["external"] == "250000"


def test_thursday_s_statement_is_stale_on_monday(bank: Engine, tmp_path: Path) -> None:
    outcome = service.run(bank, as_of=MONDAY_END_TOKYO, rulebook=_book(),
                          evidence_paths=[_statement(tmp_path, "250000", "2025-11-20")])
    [stale] = outcome.result["breaks"]
    assert (stale["kind"], stale["difference"]) == ("stale_evidence", "0")
    assert "is 2 business days before the as-of date 2025-11-24" in stale["detail"]


def test_the_as_of_date_is_the_rulebook_zone_s(bank: Engine, tmp_path: Path) -> None:
    # Monday 23:59:59 UTC is already Tuesday in Tokyo: Friday's statement is then two business
    # days old. In a rulebook counting in UTC it is still Monday, and one day old.
    as_of = datetime(2025, 11, 24, 23, 59, 59, tzinfo=UTC)
    friday = _statement(tmp_path, "250000", "2025-11-21")
    tokyo = service.run(bank, as_of=as_of, rulebook=_book(), evidence_paths=[friday]).result
    assert [b["kind"] for b in tokyo["breaks"]] == ["stale_evidence"]
    assert "before the as-of date 2025-11-25" in tokyo["breaks"][0]["detail"]
    utc = service.run(bank, as_of=as_of, rulebook=_book(timezone="UTC"),
                      evidence_paths=[friday]).result
    assert (utc["status"], utc["rulebook"]["timezone"]) == ("clean", "UTC")


def test_the_rulebook_sets_how_old_a_statement_may_be(bank: Engine, tmp_path: Path) -> None:
    friday = _statement(tmp_path, "250000", "2025-11-21")
    strict = _book(evidence={"statement_max_age_business_days": 0})
    result = service.run(bank, as_of=MONDAY_END_TOKYO, rulebook=strict,
                         evidence_paths=[friday]).result
    assert [b["kind"] for b in result["breaks"]] == ["stale_evidence"]
    assert result["rulebook"]["evidence"] == {"statement_max_age_business_days": 0,
                                              "snapshot_max_age_business_days": 1,
                                              "chain_max_age_s": 3600}
    assert service.rerun(bank, result["run_id"]).same


def test_the_latest_of_two_statements_is_compared(bank: Engine, tmp_path: Path) -> None:
    old, current = (_statement(tmp_path, "249000", "2025-11-18"),
                    _statement(tmp_path, "250000", "2025-11-21"))
    result = service.run(bank, as_of=MONDAY_END_TOKYO, rulebook=_book(),
                         evidence_paths=[old, current]).result
    assert (result["status"], result["accounts"][0]["external"]) == ("clean", "250000")


def test_a_stale_custodian_snapshot_is_a_break(bank: Engine, tmp_path: Path) -> None:
    path = tmp_path / "custodian.json"
    path.write_text(json.dumps({"observations": [
        {"account": TRUST, "as_of": "2025-11-20T23:00:00+09:00", "amount": "250000",
         "source": "custodian-x"}]}))
    result = service.run(bank, as_of=MONDAY_END_TOKYO, rulebook=_book(),
                         evidence_paths=[str(path)]).result
    [stale] = result["breaks"]
    assert (stale["kind"], stale["difference"]) == ("stale_evidence", "0")
    assert ("snapshot at 2025-11-20T23:00:00+09:00 (on 2025-11-20) is 2 business days before "
            "the as-of date 2025-11-24") in stale["detail"]


def _chain_facts(as_of: datetime) -> LedgerFacts:
    cold = Account("custody:customer:cold:BTC", "BTC", Pool.CUSTOMER, Role.CUSTODY,
                   Location.COLD_WALLET, external={"addresses": ["bc1qcold"]})
    return LedgerFacts(as_of, (CustodyFacts(cold, 8, 150_000_000),), {"BTC": 150_000_000},
                       {"BTC": 8}, {"BTC": "crypto"})


def _chain_answer(block_time: datetime, satoshi: int) -> Observation:
    return Observation(source="chain:bitcoin", kind="bitcoin",
                       account={"account": "custody:customer:cold:BTC"}, currency="BTC",
                       amount=Decimal(satoshi).scaleb(-8), as_of=block_time, raw_minor=satoshi,
                       raw_scale=8)


@pytest.mark.parametrize(("age_s", "stale"), [(-600, False), (0, False), (3600, False),
                                              (3601, True)])
def test_a_chain_answer_is_stale_when_its_block_is_over_an_hour_older_than_the_as_of(
        age_s: int, stale: bool) -> None:
    as_of = datetime(2025, 11, 25, 15, 0, tzinfo=UTC)
    policy = preset("jp-fsa").compare_policy()
    [comparison], breaks = compare(
        _chain_facts(as_of), [_chain_answer(as_of - timedelta(seconds=age_s), 149_000_000)],
        policy)
    if not stale:
        assert (comparison.external_minor, [b.kind for b in breaks]) == (149_000_000,
                                                                         ["shortfall"])
        return
    assert comparison.external_minor is None and comparison.stale is not None
    [found] = breaks
    assert (found.kind, found.difference) == ("stale_evidence", Decimal("-0.01000000"))
    assert found.detail == (
        "chain:bitcoin: block time 2025-11-25T13:59:59+00:00 is 3601 s before the as-of "
        "2025-11-25T15:00:00+00:00; at most 3600 s allowed; it says 1.49000000, the ledger "
        "1.50000000 (external − ledger -0.01000000), not compared as current")


def test_without_freshness_evidence_of_any_age_is_compared() -> None:
    # A rulebook stored with a run before stale evidence was a break carries no `evidence`:
    # its rerun compares as that run did.
    as_of = datetime(2025, 11, 25, 15, 0, tzinfo=UTC)
    [comparison], _ = compare(_chain_facts(as_of),
                              [_chain_answer(as_of - timedelta(days=30), 150_000_000)],
                              ComparePolicy(freshness=None))
    assert comparison.external_minor == 150_000_000
    freshness = Freshness("Asia/Tokyo", 1, 1, 3600)
    assert compare(_chain_facts(as_of), [_chain_answer(as_of - timedelta(days=30), 1)],
                   ComparePolicy(freshness=freshness))[1][0].kind == "stale_evidence"


# --- matching parameters ----------------------------------------------------------------------

def test_an_amount_tolerance_matches_a_line_net_of_a_fee_but_the_balance_still_breaks(
        bank: Engine, tmp_path: Path) -> None:
    # The bank credited 199,670 for the 200,000 deposit E2E-1 (a 330 fee taken on the way).
    lines: list[tuple[str, str | None, str]] = [("199670", "E2E-1", "c-1 less fee"),
                                                ("50000", "E2E-2", "c-2")]
    friday = _statement(tmp_path, "249670", "2025-11-21", lines)
    exact = service.run(bank, as_of=MONDAY_END_TOKYO, rulebook=_book(),
                        evidence_paths=[friday]).result["matching"][TRUST]
    assert [m["rule"] for m in exact["matched"]] == ["reference"]
    assert ([i["amount"] for i in exact["unmatched_external"]],
            [i["amount"] for i in exact["unmatched_ledger"]]) == (["199670"], ["200000"])
    assert (exact["explained"], exact["unexplained"]) == ("-330", "0")
    assert "within_tolerance" not in exact
    loose = _book(matching={"amount_tolerance": {"JPY": "500"}})
    result = service.run(bank, as_of=MONDAY_END_TOKYO, rulebook=loose,
                         evidence_paths=[friday]).result
    matching = result["matching"][TRUST]
    assert [(m["rule"], m.get("difference")) for m in matching["matched"]] == [
        ("reference", "-330"), ("reference", None)]
    assert (matching["unmatched_external"], matching["unmatched_ledger"]) == ([], [])
    assert (matching["explained"], matching["within_tolerance"], matching["unexplained"]) == (
        "0", "-330", "0")
    # A tolerance matches lines; it never hides a balance difference.
    assert [(b["kind"], b["difference"]) for b in result["breaks"]] == [("shortfall", "-330")]
    assert result["rulebook"]["matching"] == {"window_days": 3,
                                              "amount_tolerance": {"JPY": "500"}}
    assert service.rerun(bank, result["run_id"]).same


def test_the_matching_window_comes_from_the_rulebook(bank: Engine, tmp_path: Path) -> None:
    # A 10,000 credit without a reference, entered in the ledger on Thursday 20th and booked
    # by the bank on Tuesday 25th: five days apart, beyond jp-fsa's three.
    post(bank, [entry("d3", "deposit", (TRUST, "customer:c-3:JPY", "10000"),
                      at="2025-11-20T10:00:00+00:00")])
    path = tmp_path / "week.xml"
    path.write_bytes(document(2, Stmt(
        "WEEK", (Bal("OPBD", "0", "JPY", "2025-11-20"), Bal("CLBD", "260000", "JPY", "2025-11-25")),
        (Ntry("200000", "JPY", day="2025-11-20", ref="E2E-1"),
         Ntry("50000", "JPY", day="2025-11-20", ref="E2E-2"),
         Ntry("10000", "JPY", day="2025-11-25", text="late credit")),
        iban=IBAN, ccy="JPY")))
    as_of = datetime(2025, 11, 25, 14, 59, 59, tzinfo=UTC)
    narrow = service.run(bank, as_of=as_of, rulebook=_book(),
                         evidence_paths=[str(path)]).result["matching"][TRUST]
    assert [m["rule"] for m in narrow["matched"]] == ["reference", "reference"]
    assert ([(i["amount"], i["on"]) for i in narrow["unmatched_external"]],
            [(i["amount"], i["on"]) for i in narrow["unmatched_ledger"]]) == (
        [("10000", "2025-11-25")], [("10000", "2025-11-20")])
    wide = service.run(bank, as_of=as_of, rulebook=_book(matching={"window_days": 7}),
                       evidence_paths=[str(path)]).result
    matching = wide["matching"][TRUST]
    assert [m["rule"] for m in matching["matched"]] == ["reference", "reference", "amount_date"]
    assert (matching["unmatched_external"], matching["unmatched_ledger"]) == ([], [])
    assert wide["rulebook"]["matching"]["window_days"] == 7
    assert service.rerun(bank, wide["run_id"]).same


REFUSED_SETTINGS: dict[str, tuple[dict[str, Any], str]] = {
    "window_float": ({"matching": {"window_days": 2.5}},
                     "matching.window_days: must be a whole number, not a number"),
    "window_text": ({"matching": {"window_days": "3"}},
                    "matching.window_days: must be a whole number, not text"),
    "window_range": ({"matching": {"window_days": 40}},
                     "matching.window_days: must be at most 31, not 40"),
    "tolerance_float": ({"matching": {"amount_tolerance": {"JPY": 0.5}}},
                        "matching.amount_tolerance.JPY: must be a decimal number as text"),
    "tolerance_negative": ({"matching": {"amount_tolerance": {"JPY": "-1"}}},
                           "matching.amount_tolerance.JPY: \"-1\" is not a plain decimal"),
    "matching_unknown": ({"matching": {"window": 3}},
                         "matching.window: unknown field (did you mean window_days?"),
    "chain_age_negative": ({"evidence": {"chain_max_age_s": -1}},
                           "evidence.chain_max_age_s: must be at least 0, not -1"),
    "statement_age_range": ({"evidence": {"statement_max_age_business_days": 40}},
                            "evidence.statement_max_age_business_days: must be at most 31"),
    "zone": ({"timezone": "Mars/Olympus"},
             "timezone: \"Mars/Olympus\" is not a time zone of the IANA database"),
    "currency": ({"currency": "hkd"}, "currency: \"hkd\" is not an asset code"),
    "draw_window_zero": ({"rules": {"RESERVE-DRAW": {"window_business_days": 0}}},
                         "rules.RESERVE-DRAW.window_business_days: must be at least 1, not 0"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_SETTINGS))
def test_a_bad_setting_is_refused_naming_the_field(case: str) -> None:
    document, message = REFUSED_SETTINGS[case]
    with pytest.raises(InputError) as refused:
        parse_rulebook(json.dumps({"name": "b", "version": "1", "extends": "jp-fsa",
                                   "rules": {}, **document}), "book.json")
    assert str(refused.value).startswith(f"book.json:1: {message}"), str(refused.value)


def test_the_presets_settings() -> None:
    jp, hk = preset("jp-fsa").to_json(), preset("hk-sfc").to_json()
    evidence = {"statement_max_age_business_days": 1, "snapshot_max_age_business_days": 1,
                "chain_max_age_s": 3600}
    assert {k: jp[k] for k in ("currency", "timezone", "matching", "evidence")} == {
        "currency": "JPY", "timezone": "Asia/Tokyo",
        "matching": {"window_days": 3, "amount_tolerance": {}}, "evidence": evidence}
    assert (hk["currency"], hk["timezone"], hk["evidence"]) == ("JPY", "Asia/Hong_Kong", evidence)
    assert jp["rules"]["RESERVE-DRAW"] == {"window_business_days": 1}


# --- the currency of valuation ----------------------------------------------------------------

HK_BOOK = {"name": "hk-hkd", "version": "1", "extends": "hk-sfc", "currency": "HKD", "rules": {}}


@pytest.fixture
def hong_kong(engine: Engine, tmp_path: Path) -> Engine:
    """HKD 1,000,000.00 of customer money in trust; 100 BTC of customers, 98 cold and 2 hot;
    an insurance policy in HKD."""
    chart = {"assets": [{"code": "HKD", "kind": "fiat", "scale": 2},
                        {"code": "JPY", "kind": "fiat", "scale": 0},
                        {"code": "BTC", "kind": "crypto", "scale": 8, "chain": "bitcoin"}],
             "accounts": [
                 {"code": "custody:customer:trust:HKD", "asset": "HKD", "pool": "customer",
                  "role": "custody", "location": "bank_trust"},
                 {"code": "custody:customer:cold:BTC", "asset": "BTC", "pool": "customer",
                  "role": "custody", "location": "cold_wallet"},
                 {"code": HOT, "asset": "BTC", "pool": "customer", "role": "custody",
                  "location": "hot_wallet"}]}
    load_chart(engine, parse_chart(json.dumps(chart), "chart.json"), "chart.json")
    post(engine, [
        entry("d-hkd", "deposit", ("custody:customer:trust:HKD", "customer:c-1:HKD",
                                   "1000000.00"), at="2025-11-25T10:00:00+08:00"),
        entry("d-cold", "deposit", ("custody:customer:cold:BTC", "customer:c-1:BTC", "98"),
              at="2025-11-25T10:00:00+08:00"),
        entry("d-hot", "deposit", (HOT, "customer:c-2:BTC", "2"), at="2025-11-25T10:00:00+08:00")])
    register = tmp_path / "insurance.json"
    register.write_text(json.dumps({"policies": [{
        "policy_id": "HK-1", "insurer": "Example HK Insurance", "currency": "HKD",
        "limit": "35700000", "covered_share": "1",
        "period_start": "2025-04-01T00:00:00+08:00", "period_end": "2026-04-01T00:00:00+08:00"}]}))
    load_register(engine, parse_register(register.read_bytes(), str(register)), str(register))
    return engine


def _prices(tmp_path: Path, quote: str, prices: dict[str, str]) -> str:
    path = tmp_path / f"prices-{quote}.json"
    path.write_text(json.dumps({"quote": quote, "as_of": "2025-11-25T23:00:00+08:00",
                                "prices": prices}))
    return str(path)


HK_AS_OF = datetime(2025, 11, 25, 15, 0, tzinfo=UTC)


def test_hong_kong_rules_value_in_the_rulebook_s_currency(hong_kong: Engine,
                                                          tmp_path: Path) -> None:
    book = parse_rulebook(json.dumps(HK_BOOK), "hk-hkd.json")
    prices = _prices(tmp_path, "HKD", {"BTC": "700000"})
    result = service.run(hong_kong, as_of=HK_AS_OF, evidence_paths=[], prices_path=prices,
                         rulebook=book).result
    # Hot 2 BTC = HKD 1,400,000 at 100%; cold 98 BTC = HKD 68,600,000 at 50%: 35,700,000.
    [insurance] = _checks(result, "HK-INSURANCE")
    assert (insurance["status"], insurance["value"], insurance["threshold"]) == (
        "pass", "35700000", "35700000")
    assert insurance["detail"] == "insurance in force 35700000 vs required cover 35700000 HKD"
    assert insurance["numbers"] == {"hot_value": "1400000", "cold_value": "68600000"}
    [cold] = _checks(result, "HK-COLD-98")
    assert (cold["status"], cold["value"]) == ("pass", "0.9800")
    assert "by HKD value" in cold["detail"]
    assert result["rulebook"]["currency"] == "HKD"
    assert service.rerun(hong_kong, result["run_id"]).same


def test_without_prices_only_the_rulebook_s_currency_is_valued(hong_kong: Engine) -> None:
    book = parse_rulebook(json.dumps(HK_BOOK), "hk-hkd.json")
    result = service.run(hong_kong, as_of=HK_AS_OF, evidence_paths=[], rulebook=book).result
    [insurance] = _checks(result, "HK-INSURANCE")
    assert (insurance["status"], insurance["detail"]) == (
        "n/a", "no price file: BTC cannot be valued in HKD (give --prices)")
    report = reports.segregation(hong_kong, HK_AS_OF, None, book)
    assert report["currency"] == "HKD"
    hkd = next(row for row in report["assets"] if row["asset"] == "HKD")
    assert (hkd["customer_liabilities"], hkd["liabilities_value"]) == ("1000000.00", "1000000")


def test_a_price_file_in_another_currency_is_refused_and_no_run_stored(
        hong_kong: Engine, tmp_path: Path) -> None:
    book = tmp_path / "hk-hkd.json"
    book.write_text(json.dumps(HK_BOOK))
    prices = _prices(tmp_path, "JPY", {"BTC": "15000000", "HKD": "19"})
    db = hong_kong.url.render_as_string(hide_password=False)
    refused = cli("--db", db, "reconcile", "run", "--as-of", HK_AS_OF.isoformat(),
                  "--prices", prices, "--rulebook", str(book))
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip() == (
        f"error: {prices}: quote: the prices are quoted in JPY, but the rulebook hk-hkd values "
        "in HKD: give prices quoted in HKD, or a rulebook with currency JPY")
    assert json.loads(cli("--db", db, "reconcile", "history", "--format", "json").stdout) \
        in ([], {"runs": [], "more": False})
    report = cli("--db", db, "report", "segregation", "--as-of", HK_AS_OF.isoformat(),
                 "--prices", prices, "--rulebook", str(book))
    assert report.returncode == 2 and "quote: the prices are quoted in JPY" in report.stderr

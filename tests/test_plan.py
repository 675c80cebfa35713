"""The administrator's distribution plan: tier 1 in kind, tier 2 from the general estate.

Three failures the law was written after, with the numbers worked out here, then the rules of
the plan as properties over random inputs.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.administration.plan import (
    AssetPool,
    Claim,
    Dispute,
    Election,
    Plan,
    PlanBasis,
    PlanInputs,
    PlanRules,
    canonical_json,
    first_difference,
    plan,
    plan_hash,
    replan,
    resolve,
    tier1,
)
from ledger.errors import InputError

BTC = 10**8  # satoshi per bitcoin
BCH = 10**8
ETH = 10**18  # wei per ether
USD = 100  # cents per dollar


def _line2(result: Plan, creditor: str) -> dict[str, Any]:
    """A tier-2 line as the numbers a reader checks."""
    (line,) = [line for line in result.tier2.lines if line.creditor == creditor]
    return {"claim": line.claim_minor, "basic": line.basic_minor, "early": line.early_minor,
            "final": line.final_minor, "reserved": line.reserved_minor, "total": line.total_minor}


def _paid1(result: Plan) -> dict[tuple[str, str], int]:
    return {(line.creditor, line.asset): line.paid_minor for line in result.tier1.lines}


def _assert_everything_accounted_for(result: Plan) -> None:
    for asset in result.tier1.assets:
        paid = sum(line.paid_minor for line in result.tier1.lines if line.asset == asset.asset)
        assert paid == asset.paid_minor <= asset.pool_minor
        assert asset.remainder_minor == asset.pool_minor - paid >= 0
    assert result.tier2.allocated_minor + result.tier2.left_minor == result.estate_minor
    assert result.tier2.left_minor >= 0


# --- Mt. Gox: a large BTC shortfall, a rehabilitation plan, a disputed claim ---------------

MTGOX_RULES = PlanRules(
    quote="JPY", quote_scale=0, basic_payment_minor=200_000, early_share=Decimal("0.21"),
    prices={"BTC": Decimal("749318.83"), "BCH": Decimal("97481"), "USD": Decimal("111.43")})
MTGOX = PlanInputs(
    claims=(Claim("alice", "BTC", 10 * BTC), Claim("bob", "BTC", 5 * BTC),
            Claim("carol", "BTC", 3 * BTC), Claim("dave", "BTC", 2 * BTC),
            Claim("alice", "BCH", 1 * BCH), Claim("erin", "BCH", 2 * BCH),
            Claim("bob", "USD", 1_000 * USD), Claim("frank", "USD", 500 * USD),
            Claim("carol", "JPY", 100_000)),
    pools=(AssetPool("BTC", 8, 12 * BTC),  # 60 % of the 20 BTC claimed
           AssetPool("BCH", 8, 2 * BCH),  # 2/3 of the 3 BCH claimed
           AssetPool("USD", 2, 900 * USD),  # 60 % of the $1,500 claimed
           AssetPool("JPY", 0, 100_000)),  # the yen trust held
    rules=MTGOX_RULES,
    estate_minor=3_000_000,
    elections=(Election("alice", "early", "crypto"), Election("bob", "final", "fiat"),
               Election("carol", "final", "crypto"), Election("dave", "early", "fiat"),
               Election("frank", "final", "fiat")),  # erin made no election
    disputes=(Dispute("frank", "BTC", 1 * BTC),))  # frank says he had 1 BTC more


def test_mtgox_tier1_pays_sixty_percent_of_bitcoin_in_kind_and_keeps_the_bch_crumb() -> None:
    result = plan(MTGOX)
    paid = _paid1(result)
    # BTC: 12 of 20 BTC, so 60 % of every claim, exactly.
    assert [paid[(c, "BTC")] for c in ("alice", "bob", "carol", "dave")] == \
        [6 * BTC, 3 * BTC, 180_000_000, 120_000_000]
    # BCH: 2/3 of 1 BCH = 66,666,666.67 sat and of 2 BCH = 133,333,333.33 sat, both floored:
    # 199,999,999 paid, 1 sat stays in the pool.
    assert paid[("alice", "BCH")] == 66_666_666
    assert paid[("erin", "BCH")] == 133_333_333
    # USD: 60 % of $1,000 and of $500; JPY: the trust covers carol's ¥100,000 exactly.
    assert (paid[("bob", "USD")], paid[("frank", "USD")]) == (600 * USD, 300 * USD)
    assert paid[("carol", "JPY")] == 100_000
    remainders = {a.asset: (a.covered, a.remainder_minor) for a in result.tier1.assets}
    assert remainders == {"BCH": (False, 1), "BTC": (False, 0), "JPY": (True, 0),
                          "USD": (False, 0)}
    _assert_everything_accounted_for(result)


def test_mtgox_shortfalls_are_valued_at_commencement_prices_rounded_down_to_the_yen() -> None:
    values = {(v.creditor, v.asset, v.source): v.value_minor for v in plan(MTGOX).valuations}
    assert values == {
        ("alice", "BTC", "shortfall"): 2_997_275,  # 4 BTC × 749,318.83 = 2,997,275.32
        ("alice", "BCH", "shortfall"): 32_493,  # 33,333,334 sat × 97,481 / 10^8 = 32,493.667
        ("bob", "BTC", "shortfall"): 1_498_637,  # 2 BTC = 1,498,637.66
        ("bob", "USD", "shortfall"): 44_572,  # $400 × 111.43 = 44,572
        ("carol", "BTC", "shortfall"): 899_182,  # 1.2 BTC = 899,182.596
        ("dave", "BTC", "shortfall"): 599_455,  # 0.8 BTC = 599,455.064
        ("erin", "BCH", "shortfall"): 64_987,  # 66,666,667 sat = 64,987.334
        ("frank", "USD", "shortfall"): 22_286,  # $200 × 111.43 = 22,286
        ("frank", "BTC", "disputed"): 749_318,  # 1 BTC = 749,318.83, reserved, not admitted
    }


def test_mtgox_plan_pays_basic_then_early_lump_sums_then_the_final_share() -> None:
    result = plan(MTGOX)
    # Basic: ¥200,000 each for alice, bob, carol, dave; erin's whole ¥64,987; frank's admitted
    # ¥22,286 paid and ¥177,714 more reserved against his dispute: 1,064,987 in all, the estate
    # of ¥3,000,000 covers it. 1,935,013 left.
    # Early (21 % of the claim after basic, the rest waived):
    #   alice 0.21 × 2,829,768 = 594,251.28 → 594,251; dave 0.21 × 399,455 = 83,885.55 → 83,885.
    # Final pool: 1,935,013 − 678,136 = 1,256,877, shared over the remaining claims of the final
    # creditors and of the open dispute: bob 1,343,209 + carol 699,182 + frank's dispute
    # 749,318 − 177,714 = 571,604 → 2,613,995.
    assert (result.tier2.final_pool_minor, result.tier2.final_claims_minor) == (1_256_877, 2_613_995)
    assert not result.tier2.basic_prorated and not result.tier2.early_prorated
    assert _line2(result, "alice") == {"claim": 3_029_768, "basic": 200_000, "early": 594_251,
                                       "final": 0, "reserved": 0, "total": 794_251}
    assert _line2(result, "dave") == {"claim": 599_455, "basic": 200_000, "early": 83_885,
                                      "final": 0, "reserved": 0, "total": 283_885}
    # bob: 1,343,209 × 1,256,877 / 2,613,995 = 645,849.9 → 645,849
    assert _line2(result, "bob") == {"claim": 1_543_209, "basic": 200_000, "early": 0,
                                     "final": 645_849, "reserved": 0, "total": 845_849}
    # carol: 699,182 × 1,256,877 / 2,613,995 = 336,184.4 → 336,184
    assert _line2(result, "carol")["final"] == 336_184
    # erin's claim is below the basic payment: paid in full by it.
    assert _line2(result, "erin") == {"claim": 64_987, "basic": 64_987, "early": 0, "final": 0,
                                      "reserved": 0, "total": 64_987}
    # frank: reserve = 177,714 of basic + 571,604 × 1,256,877 / 2,613,995 = 274,842.7 → 274,842
    assert _line2(result, "frank") == {"claim": 22_286, "basic": 22_286, "early": 0, "final": 0,
                                       "reserved": 452_556, "total": 474_842}
    # Allocated 2,999,998 of 3,000,000: the 2 yen of floors stay in the estate.
    assert result.tier2.left_minor == 2
    _assert_everything_accounted_for(result)


def test_mtgox_elections_are_recorded_and_a_creditor_without_one_gets_the_final_in_fiat() -> None:
    lines = {line.creditor: (line.option, line.payment, line.elected)
             for line in plan(MTGOX).tier2.lines}
    assert lines["alice"] == ("early", "crypto", True)
    assert lines["carol"] == ("final", "crypto", True)
    assert lines["erin"] == ("final", "fiat", False)


def test_mtgox_dispute_allowed_in_part_releases_its_reserve_to_the_final_creditors() -> None:
    before = plan(MTGOX)
    after = replan(MTGOX, [Dispute("frank", "BTC", 1 * BTC, "allowed", 40_000_000)])
    # 0.4 BTC allowed = 299,727.532 → ¥299,727 admitted. frank's basic is now the full
    # ¥200,000 (22,286 + 177,714 of the allowed part); his remaining 122,013 is a final claim.
    # Final claims 1,343,209 + 699,182 + 122,013 = 2,164,404 share the same 1,256,877:
    #   bob 780,006.6 → 780,006; carol 406,017.7 → 406,017; frank 70,853.9 → 70,853.
    assert after.tier2.final_claims_minor == 2_164_404
    assert _line2(after, "frank") == {"claim": 322_013, "basic": 200_000, "early": 0,
                                      "final": 70_853, "reserved": 0, "total": 270_853}
    assert _line2(after, "bob")["final"] == 780_006
    assert _line2(after, "carol")["final"] == 406_017
    # frank's reserve was 452,556; he is paid 270,853 − 22,286 = 248,567 more than before, and
    # the 203,989 released goes to bob (+134,157) and carol (+69,833), with 1 yen of floors.
    assert _line2(after, "frank")["total"] - _line2(before, "frank")["basic"] == 248_567
    released = _line2(before, "frank")["total"] - _line2(after, "frank")["total"]
    gained = sum(_line2(after, c)["total"] - _line2(before, c)["total"] for c in ("bob", "carol"))
    assert (released, gained) == (203_989, 203_990)
    assert before.tier2.left_minor - after.tier2.left_minor == 1
    # Early creditors waived the rest: the ruling does not change what they get.
    for creditor in ("alice", "dave", "erin"):
        assert _line2(after, creditor) == _line2(before, creditor)
    assert after.tier2.allocated_minor + after.tier2.left_minor == 3_000_000
    assert plan_hash(after) != plan_hash(before)


def test_mtgox_dispute_rejected_releases_all_of_its_reserve() -> None:
    after = replan(MTGOX, [Dispute("frank", "BTC", 1 * BTC, "rejected")])
    assert _line2(after, "frank") == {"claim": 22_286, "basic": 22_286, "early": 0, "final": 0,
                                      "reserved": 0, "total": 22_286}
    # Basic now 887,273; 3,000,000 − 887,273 − 678,136 = 1,434,591 over 2,042,391 of final claims.
    assert (after.tier2.final_pool_minor, after.tier2.final_claims_minor) == (1_434_591, 2_042_391)
    # bob: 1,343,209 × 1,434,591 / 2,042,391 = 943,480.2 → 943,480 (645,849 with the reserve).
    assert _line2(after, "bob")["final"] == 943_480


# --- DMM Bitcoin: segregation held, everyone is paid in full, in kind ----------------------


def test_dmm_pools_cover_every_claim_so_each_is_paid_exactly_and_tier2_is_empty() -> None:
    inputs = PlanInputs(
        claims=(Claim("c-001", "BTC", 4_000 * BTC), Claim("c-002", "BTC", 500 * BTC),
                Claim("c-003", "BTC", 2 * BTC), Claim("c-001", "JPY", 48_200_000_000),
                Claim("c-002", "JPY", 1_000)),
        pools=(AssetPool("BTC", 8, 4_502 * BTC),  # exactly the 4,502 BTC owed
               AssetPool("JPY", 0, 48_200_001_500)),  # ¥500 more than owed
        rules=PlanRules("JPY", 0, 200_000, Decimal("0.21"), {}),  # no price is needed
        estate_minor=1_000_000)
    result = plan(inputs)
    assert all(line.paid_minor == line.claim_minor for line in result.tier1.lines)
    assert {a.asset: (a.covered, a.remainder_minor) for a in result.tier1.assets} == \
        {"BTC": (True, 0), "JPY": (True, 500)}
    assert result.valuations == ()
    assert result.tier2.lines == ()
    assert result.tier2.left_minor == 1_000_000


# --- FTX: the customers' fiat was used by the company; the trust is short --------------------

FTX_RULES = PlanRules("USD", 2, 0, Decimal("0"), {"BTC": Decimal("16871"), "ETH": Decimal("1258")})
FTX = PlanInputs(
    claims=(Claim("ann", "USD", 2_500_000 * USD), Claim("ben", "USD", 1_500_000 * USD),
            Claim("cat", "USD", 1_000_000 * USD), Claim("ann", "BTC", 10 * BTC),
            Claim("cat", "BTC", 2 * BTC), Claim("ben", "ETH", 100 * ETH),
            Claim("cat", "ETH", 50 * ETH)),
    pools=(AssetPool("USD", 2, 1_250_000 * USD),  # 25 % of the $5,000,000 owed
           AssetPool("BTC", 8, 12 * BTC),  # held
           AssetPool("ETH", 18, 90 * ETH)),  # 60 % of 150 ETH
    rules=FTX_RULES,
    estate_minor=1_000_000 * USD)


def test_ftx_tier1_pays_the_ratio_that_exists_per_asset() -> None:
    paid = _paid1(plan(FTX))
    assert [paid[(c, "USD")] for c in ("ann", "ben", "cat")] == \
        [625_000 * USD, 375_000 * USD, 250_000 * USD]  # 25 %
    assert (paid[("ann", "BTC")], paid[("cat", "BTC")]) == (10 * BTC, 2 * BTC)  # in full
    assert (paid[("ben", "ETH")], paid[("cat", "ETH")]) == (60 * ETH, 30 * ETH)  # 60 %


def test_ftx_tier2_carries_the_rest_pro_rata_from_the_estate() -> None:
    result = plan(FTX)
    # Claims in USD cents: ann $1,875,000; ben $1,125,000 + 40 ETH × $1,258 = $1,175,320;
    # cat $750,000 + 20 ETH × $1,258 = $775,160. Σ $3,825,480.00 against $1,000,000.00.
    claims = {line.creditor: line.claim_minor for line in result.tier2.lines}
    assert claims == {"ann": 187_500_000, "ben": 117_532_000, "cat": 77_516_000}
    finals = {line.creditor: line.final_minor for line in result.tier2.lines}
    # ann 187,500,000 × 100,000,000 / 382,548,000 = 49,013,457.9 → 49,013,457, and so on.
    assert finals == {"ann": 49_013_457, "ben": 30_723_464, "cat": 20_263_078}
    assert result.tier2.left_minor == 100_000_000 - 99_999_999 == 1
    _assert_everything_accounted_for(result)


# --- the rules at the edges ----------------------------------------------------------------


def test_an_estate_short_of_the_basic_payments_pays_them_pro_rata() -> None:
    inputs = PlanInputs(
        claims=(Claim("a", "BTC", 1 * BTC), Claim("b", "BTC", 1 * BTC)),
        pools=(AssetPool("BTC", 8, 0),),
        rules=PlanRules("JPY", 0, 200_000, Decimal("0.21"), {"BTC": Decimal("100000")}),
        estate_minor=150_000,
        elections=(Election("a", "early", "fiat"),))
    result = plan(inputs)
    # Each wants a ¥100,000 basic (the whole claim); ¥150,000 pays 75 % of each; nothing is
    # left for the early lump-sum or the final payment.
    assert result.tier2.basic_prorated and result.tier2.early_prorated
    assert [(line.basic_minor, line.early_minor, line.final_minor) for line in result.tier2.lines] \
        == [(75_000, 0, 0), (75_000, 0, 0)]


def test_a_rich_estate_pays_each_claim_in_full_and_keeps_the_surplus() -> None:
    inputs = PlanInputs((Claim("a", "BTC", 1 * BTC),), (AssetPool("BTC", 8, 0),),
                        PlanRules("JPY", 0, 0, Decimal("0"), {"BTC": Decimal("100000")}),
                        estate_minor=1_000_000)
    result = plan(inputs)
    assert (result.tier2.lines[0].final_minor, result.tier2.left_minor) == (100_000, 900_000)


def test_canonical_json_writes_amounts_as_digit_strings_and_prices_without_trailing_zeros() -> None:
    rules = PlanRules("JPY", 0, 0, Decimal("0.210"), {"BTC": Decimal("749318.830")})
    inputs = PlanInputs((Claim("a", "BTC", 2**200),), (AssetPool("BTC", 8, 2**199),), rules, 7)
    text = canonical_json(plan(inputs)).decode("ascii")
    assert f'"claim_minor":"{2**200}"' in text
    assert '"BTC":"749318.83"' in text and '"early_share":"0.21"' in text
    # Equal numbers written differently, and the quote's own price of 1 given or not: one plan.
    same = PlanRules("JPY", 0, 0, Decimal("0.21"), {"BTC": Decimal("749318.83"), "JPY": Decimal(1)})
    assert plan_hash(plan(PlanInputs(inputs.claims, inputs.pools, same, 7))) == \
        plan_hash(plan(inputs))


# --- the plan without rules, and the basis it was computed from -----------------------------

BASIS = PlanBasis(datetime(2014, 2, 28, 8, 0, tzinfo=UTC), "Nobuaki Kobayashi", "H26-3", None,
                  "a" * 64, "custody:company:operating:JPY", "expense:administration:JPY")


def test_a_plan_without_rules_is_tier1_only_and_says_so_in_its_canonical_form() -> None:
    inputs = PlanInputs(MTGOX.claims, MTGOX.pools, None, 0)
    result = plan(inputs)
    assert result.tier1 == plan(MTGOX).tier1  # the same pools pay the same claims
    assert (result.rules, result.estate_minor, result.valuations, result.tier2) == \
        (None, None, (), None)
    document = json.loads(canonical_json(result))
    assert (document["rules"], document["estate_minor"], document["tier2"],
            document["basis"]) == (None, None, None, None)
    assert document["valuations"] == [] and document["disputes"] == []


@pytest.mark.parametrize("changes", [{"estate_minor": 5},
                                     {"elections": (Election("alice", "early", "fiat"),)},
                                     {"disputes": (Dispute("frank", "BTC", 1),)}])
def test_a_plan_without_rules_refuses_what_only_tier2_uses(changes: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="a plan without rules is tier 1 only"):
        PlanInputs(MTGOX.claims, MTGOX.pools, None, **{"estate_minor": 0, **changes})


def test_the_hash_commits_to_the_basis_the_inputs_came_from() -> None:
    based = plan(replace(MTGOX, basis=BASIS))
    document = json.loads(canonical_json(based))
    assert document["basis"] == {
        "cutoff": "2014-02-28T08:00:00+00:00", "case": "H26-3",
        "administrator": "Nobuaki Kobayashi", "run_id": None, "pool_source": "ledger",
        "prices_sha256": "a" * 64, "pay_from": "custody:company:operating:JPY",
        "charge_to": "expense:administration:JPY"}
    hashes = {plan_hash(plan(MTGOX)), plan_hash(based)}
    for changed in (replace(BASIS, cutoff=BASIS.cutoff + timedelta(seconds=1)),
                    replace(BASIS, run_id="run-7"), replace(BASIS, prices_sha256="b" * 64),
                    replace(BASIS, case_no=None), replace(BASIS, administrator="Someone Else"),
                    replace(BASIS, charge_to="expense:other:JPY")):
        hashes.add(plan_hash(plan(replace(MTGOX, basis=changed))))
    assert len(hashes) == 8  # every change of the basis is another plan
    # The same instant written with another offset is the same plan.
    tokyo = replace(BASIS, cutoff=BASIS.cutoff.astimezone(timezone(timedelta(hours=9))))
    assert plan_hash(plan(replace(MTGOX, basis=tokyo))) == plan_hash(based)
    assert json.loads(canonical_json(plan(replace(MTGOX, basis=replace(BASIS, run_id="r"))))
                      )["basis"]["pool_source"] == "run"


@pytest.mark.parametrize(("build", "message"), [
    (lambda: replace(BASIS, cutoff=datetime(2014, 2, 28)), "the cut-off must be a time with its"),
    (lambda: replace(BASIS, prices_sha256="ABC"), 'prices_sha256 "ABC" is not a SHA-256'),
    (lambda: replace(BASIS, charge_to=None), "pay_from and charge_to go together"),
    (lambda: replace(BASIS, pay_from="no spaces allowed"), "pay_from \"no spaces allowed\""),
    (lambda: replace(BASIS, administrator=" "), "the administrator must be named"),
])
def test_a_bad_basis_is_refused_when_it_is_built(build: Any, message: str) -> None:
    with pytest.raises(InputError) as caught:
        build()
    assert message in str(caught.value)


def _edited(edit: Any) -> tuple[Any, Any]:
    stored = json.loads(canonical_json(plan(MTGOX)))
    given = json.loads(canonical_json(plan(MTGOX)))
    edit(given)
    return given, stored


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["tier1"]["lines"][0].update(paid_minor="1"),
     'tier1.lines[0].paid_minor is "1", the stored plan has "66666666"'),
    (lambda d: d["tier1"]["lines"][0].update(paid_minor=0.5),
     "tier1.lines[0].paid_minor is the float 0.5 (a number; an amount is a whole number of "
     "minor units written in quotes)"),
    (lambda d: d["tier1"]["lines"][0].update(paid_minor="-66666666"), "(negative)"),
    (lambda d: d["tier1"]["lines"][0].update(paid_minor="lots"),
     "(not a whole number of minor units)"),
    (lambda d: d["tier2"]["lines"][0].update(creditor="mallory"),
     'tier2.lines[0]: creditor "mallory" is not in the stored plan'),
    (lambda d: d["tier1"]["lines"].append(dict(d["tier1"]["lines"][0])),
     'tier1.lines[9]: creditor "alice" asset "BCH" appears twice'),
    (lambda d: d["tier1"]["lines"][0].update(asset="XRP"),
     'tier1.lines[0]: creditor "alice" asset "XRP" is not in the stored plan'),
    (lambda d: d["tier1"]["lines"].pop(), 'creditor "frank" asset "USD" of the stored plan is '
                                          "missing"),
    (lambda d: d.update(note="mine"), "note: not a field of a plan"),
    (lambda d: d.pop("rules"), "rules: missing (the stored plan has an object)"),
])
def test_first_difference_names_the_field_an_edit_changed(edit: Any, message: str) -> None:
    given, stored = _edited(edit)
    assert message in (first_difference(given, stored) or "")
    assert first_difference(stored, json.loads(canonical_json(plan(MTGOX)))) is None


# --- user errors: values with a message naming the creditor and the asset ---------------------


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Claim("c-1", "BTC", -5), 'claim of "c-1" in BTC is -5: an amount cannot be negative'),
    (lambda: Claim("c-1", "BTC", 1.5), "not the float 1.5"),  # type: ignore[arg-type]
    (lambda: AssetPool("BTC", 8, 0.1),  # type: ignore[arg-type]
     "pool of BTC must be an integer number of minor units"),
    (lambda: PlanRules("JPY", 0, 0, Decimal("0.21"), {"BTC": 749318.83}),  # type: ignore[dict-item]
     'price of BTC is the float 749318.83: give it as Decimal("749318.83")'),
    (lambda: PlanRules("JPY", 0, 0, 0.21, {}),  # type: ignore[arg-type]
     "early_share is the float 0.21"),
    (lambda: PlanRules("JPY", 0, 0, Decimal("1.5"), {}), "early_share 1.5 must be from 0 to 1"),
    (lambda: PlanRules("JPY", 0, 0, Decimal("0"), {"BTC": Decimal("NaN")}), "not a finite number"),
    (lambda: Election("c-1", "later", "fiat"),  # type: ignore[arg-type]
     'election of "c-1": option is "later"'),
    (lambda: Dispute("c-1", "BTC", 5, "allowed", 6), "allowed_minor 6 is more than the claimed 5"),
    (lambda: Dispute("c-1", "BTC", 5, "open", 3), "allowed_minor is 3 but the dispute is open"),
])
def test_bad_values_are_refused_when_they_are_built(build: Any, message: str) -> None:
    with pytest.raises(InputError) as caught:
        build()
    assert message in str(caught.value)


def _inputs(**changes: Any) -> PlanInputs:
    base: dict[str, Any] = {
        "claims": (Claim("c-1", "BTC", 2 * BTC),), "pools": (AssetPool("BTC", 8, 1 * BTC),),
        "rules": PlanRules("JPY", 0, 200_000, Decimal("0.21"), {"BTC": Decimal("749318.83")}),
        "estate_minor": 1_000_000}
    return PlanInputs(**{**base, **changes})


@pytest.mark.parametrize(("changes", "message"), [
    ({"claims": (Claim("c-1", "ETH", 1),)}, 'claim of "c-1" in ETH: no pool for ETH'),
    ({"claims": (Claim("c-1", "BTC", 1), Claim("c-1", "BTC", 2))},
     'claim of "c-1" in BTC is given twice'),
    ({"elections": (Election("c-1", "early", "fiat"), Election("c-1", "final", "fiat"))},
     'election of "c-1" is given twice'),
    ({"elections": (Election("c-9", "early", "fiat"),)}, 'election of "c-9": no claim'),
    ({"rules": PlanRules("JPY", 0, 0, Decimal("0"), {})},
     'no commencement price for BTC (owed to "c-1"'),
    ({"disputes": (Dispute("c-2", "ETH", 1),)}, 'dispute of "c-2" in ETH: no pool for ETH'),
    ({"estate_minor": -1}, "estate_minor is -1"),
])
def test_bad_plan_inputs_are_refused_with_the_creditor_and_asset_named(
        changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as caught:
        plan(_inputs(**changes))
    assert message in str(caught.value)


def test_a_ruling_must_name_an_open_dispute_and_cannot_be_changed_later() -> None:
    disputes = (Dispute("c-1", "BTC", 5),)
    with pytest.raises(InputError, match='ruling on "c-2" in BTC: there is no such dispute'):
        resolve(disputes, [Dispute("c-2", "BTC", 5, "rejected")])
    with pytest.raises(InputError, match="claimed_minor 4 is not the disputed 5"):
        resolve(disputes, [Dispute("c-1", "BTC", 4, "rejected")])
    ruled = resolve(disputes, [Dispute("c-1", "BTC", 5, "allowed", 5)])
    assert resolve(ruled, [Dispute("c-1", "BTC", 5, "allowed", 5)]) == ruled  # idempotent
    with pytest.raises(InputError, match="the dispute is already allowed"):
        resolve(ruled, [Dispute("c-1", "BTC", 5, "rejected")])


# --- properties ----------------------------------------------------------------------------

SCALES = {"BTC": 8, "ETH": 18, "JPY": 0, "USD": 2}
PRICES = {"BTC": Decimal("749318.83"), "ETH": Decimal("1258.5"), "USD": Decimal("111.43")}
CREDITORS = [f"c-{n}" for n in range(8)]
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
amounts = st.one_of(st.integers(0, 10**6), st.integers(0, 10**30))


@st.composite
def claims_and_pools(draw: st.DrawFn) -> tuple[list[Claim], list[AssetPool]]:
    keys = draw(st.lists(st.tuples(st.sampled_from(CREDITORS), st.sampled_from(sorted(SCALES))),
                         unique=True, max_size=20))
    claims = [Claim(creditor, asset, draw(amounts)) for creditor, asset in keys]
    pools = []
    for asset in sorted(SCALES):
        owed = sum(claim.amount_minor for claim in claims if claim.asset == asset)
        pools.append(AssetPool(asset, SCALES[asset], draw(st.integers(0, owed + owed // 2 + 1))))
    return claims, pools


@st.composite
def plan_inputs(draw: st.DrawFn) -> PlanInputs:
    claims, pools = draw(claims_and_pools())
    named = sorted({claim.creditor for claim in claims})
    disputes = [Dispute(creditor, asset, draw(st.integers(1, 10**12)))
                for creditor, asset in draw(st.lists(
                    st.tuples(st.sampled_from(CREDITORS), st.sampled_from(sorted(SCALES))),
                    unique=True, max_size=3))]
    named = sorted({*named, *(dispute.creditor for dispute in disputes)})
    elections = [Election(creditor, draw(st.sampled_from(["early", "final"])),
                          draw(st.sampled_from(["crypto", "fiat"])))
                 for creditor in named if draw(st.booleans())]
    rules = PlanRules("JPY", 0, draw(st.integers(0, 10**6)),
                      draw(st.sampled_from([Decimal("0"), Decimal("0.21"), Decimal("0.5"),
                                            Decimal("1")])), PRICES)
    return PlanInputs(tuple(claims), tuple(pools), rules, draw(st.integers(0, 10**9)),
                      tuple(elections), tuple(disputes))


@PROPERTY
@given(claims_and_pools())
def test_property_tier1_never_pays_an_asset_beyond_its_pool(case: Any) -> None:
    claims, pools = case
    result = tier1(claims, pools)
    for asset in result.assets:
        paid = sum(line.paid_minor for line in result.lines if line.asset == asset.asset)
        assert paid == asset.paid_minor <= asset.pool_minor


@PROPERTY
@given(claims_and_pools())
def test_property_no_creditor_is_paid_more_than_the_claim(case: Any) -> None:
    claims, pools = case
    for line in tier1(claims, pools).lines:
        assert 0 <= line.paid_minor <= line.claim_minor


@PROPERTY
@given(st.integers(1, 10**20), st.integers(2, 6), st.lists(st.integers(0, 10**20), max_size=5),
       st.integers(0, 10**21))
def test_property_equal_claims_get_equal_payouts(amount: int, equals: int, others: list[int],
                                                 pool_minor: int) -> None:
    claims = [Claim(f"e-{n}", "BTC", amount) for n in range(equals)]
    claims += [Claim(f"o-{n}", "BTC", other) for n, other in enumerate(others)]
    lines = tier1(claims, [AssetPool("BTC", 8, pool_minor)]).lines
    payouts = [line.paid_minor for line in lines if line.creditor.startswith("e-")]
    assert max(payouts) - min(payouts) <= 1


@PROPERTY
@given(claims_and_pools())
def test_property_remainder_is_the_pool_less_the_payouts_and_under_one_unit_a_claimant(
        case: Any) -> None:
    claims, pools = case
    result = tier1(claims, pools)
    claimants: defaultdict[str, int] = defaultdict(int)
    for line in result.lines:
        claimants[line.asset] += 1
    for asset in result.assets:
        paid = sum(line.paid_minor for line in result.lines if line.asset == asset.asset)
        assert asset.remainder_minor == asset.pool_minor - paid
        if not asset.covered:
            assert 0 <= asset.remainder_minor < claimants[asset.asset]


@PROPERTY
@given(plan_inputs())
def test_property_tier2_never_allocates_more_than_the_estate(inputs: PlanInputs) -> None:
    result = plan(inputs)
    assert sum(line.total_minor for line in result.tier2.lines) <= inputs.estate_minor
    assert result.tier2.allocated_minor + result.tier2.left_minor == inputs.estate_minor
    for line in result.tier2.lines:
        assert line.payable_minor <= line.claim_minor
        assert line.reserved_minor <= line.disputed_minor


@PROPERTY
@given(plan_inputs(), st.randoms(use_true_random=False))
def test_property_shuffled_inputs_give_the_identical_canonical_json_and_hash(
        inputs: PlanInputs, rnd: random.Random) -> None:
    def shuffled(items: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(rnd.sample(items, len(items)))
    prices = list(inputs.rules.prices.items())
    rnd.shuffle(prices)
    rules = PlanRules(inputs.rules.quote, inputs.rules.quote_scale,
                      inputs.rules.basic_payment_minor, inputs.rules.early_share, dict(prices))
    again = PlanInputs(shuffled(inputs.claims), shuffled(inputs.pools), rules,
                       inputs.estate_minor, shuffled(inputs.elections), shuffled(inputs.disputes))
    assert canonical_json(plan(again)) == canonical_json(plan(inputs))
    assert plan_hash(plan(again)) == plan_hash(plan(inputs))


@PROPERTY
@given(plan_inputs(), st.data())
def test_property_a_ruling_never_lowers_what_another_creditor_is_allotted(
        inputs: PlanInputs, data: st.DataObject) -> None:
    if not inputs.disputes:
        return
    dispute = data.draw(st.sampled_from(inputs.disputes))
    allowed = data.draw(st.integers(0, dispute.claimed_minor))
    ruling = Dispute(dispute.creditor, dispute.asset, dispute.claimed_minor,
                     "allowed" if allowed else "rejected", allowed)
    before, after = plan(inputs), replan(inputs, [ruling])
    totals = {line.creditor: line.total_minor for line in before.tier2.lines}
    for line in after.tier2.lines:
        if line.creditor != dispute.creditor:
            assert line.total_minor >= totals[line.creditor]

"""The administrator's whole workflow, end to end through `segledger`, on SQLite and
PostgreSQL: three failures modelled on real ones, with every number worked out here.

- Mt. Gox-like: most of the bitcoin stolen; the pool verified by a reconciliation run pays
  tier 1 in kind; the rest valued at ¥749,318.83 is paid from the estate by a basic payment,
  early lump-sums and final payments; a disputed claim is reserved, later allowed in part,
  and a new plan pays only the difference.
- DMM-like: a theft made good from the liability reserve before the failure: every asset is
  covered, every customer gets exactly the claim in kind, tier 2 is empty.
- FTX-like: the customers' fiat trust was spent on company business: tier 1 pays the ratio
  that exists, tier 2 carries the rest.
"""

from __future__ import annotations

import json
from fractions import Fraction
from math import floor
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ledger.storage.engine import make_engine
from ledger.storage.schema import entries
from tests.helpers import cli, entry, write_jsonl

T = "2014-02-01T09:00:00+09:00"
THEFT_AT = "2014-02-07T09:00:00+09:00"
CUTOFF = "2014-02-28T00:00:00+09:00"
RUN_AT = "2014-02-28T00:00:00+09:00"
PRICE = Fraction("749318.83")
SAT = 10**8
TRUST, OPERATING = "custody:customer:trust:JPY", "custody:company:operating:JPY"
COLD, HOT = "custody:customer:cold:BTC", "custody:customer:hot:BTC"
GUARANTEE = "custody:company:guarantee:BTC"
CHARGE = "expense:administration:distributions:JPY"

CHART: dict[str, Any] = {
    "assets": [{"code": "JPY", "kind": "fiat", "scale": 0},
               {"code": "BTC", "kind": "crypto", "scale": 8, "chain": "bitcoin"}],
    "accounts": [
        {"code": TRUST, "asset": "JPY", "pool": "customer", "role": "custody",
         "location": "bank_trust"},
        {"code": OPERATING, "asset": "JPY", "pool": "company", "role": "custody",
         "location": "bank"},
        {"code": "custody:company:reserve:JPY", "asset": "JPY", "pool": "company",
         "role": "custody", "location": "bank", "purpose": "reserve"},
        {"code": COLD, "asset": "BTC", "pool": "customer", "role": "custody",
         "location": "cold_wallet"},
        {"code": HOT, "asset": "BTC", "pool": "customer", "role": "custody",
         "location": "hot_wallet"},
        {"code": GUARANTEE, "asset": "BTC", "pool": "company", "role": "custody",
         "location": "cold_wallet", "purpose": "guarantee"},
        {"code": "custody:company:treasury:BTC", "asset": "BTC", "pool": "company",
         "role": "custody", "location": "cold_wallet", "purpose": "operating"},
        {"code": "equity:capital:JPY", "asset": "JPY", "pool": "company", "role": "equity"},
        {"code": "equity:capital:BTC", "asset": "BTC", "pool": "company", "role": "equity"},
        {"code": "reserve:liability:JPY", "asset": "JPY", "pool": "company", "role": "reserve"},
        {"code": "loss:incident:BTC", "asset": "BTC", "pool": "company", "role": "loss"},
        {"code": "loss:incident:JPY", "asset": "JPY", "pool": "company", "role": "loss"},
        {"code": CHARGE, "asset": "JPY", "pool": "company", "role": "expense"},
    ],
}


class Exchange:
    """One failed exchange's ledger, driven through the `segledger` command."""

    def __init__(self, db: str, folder: Path) -> None:
        self.db, self.folder = db, folder
        self.run("chart", "load", self.file("chart.json", CHART))

    def run(self, *args: str, code: int = 0) -> Any:
        done = cli("--db", self.db, *args)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        return done

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self.run(*args, "--format", "json", code=code).stdout)

    def file(self, name: str, content: Any) -> str:
        path = self.folder / name
        path.write_text(json.dumps(content), "utf-8")
        return str(path)

    def post(self, name: str, items: list[dict[str, Any]]) -> None:
        self.run("post", str(write_jsonl(self.folder / name, items)))

    def freeze(self, prices: dict[str, str]) -> None:
        self.run("admin", "freeze", "--cutoff", CUTOFF, "--administrator", "Nobuaki Kobayashi",
                 "--case", "H26(fu)-1")
        self.run("admin", "claims", "--prices", self.file("prices.json", {
            "quote": "JPY", "as_of": CUTOFF, "prices": prices}))

    def plan(self, name: str, *args: str) -> dict[str, Any]:
        path = self.folder / name
        self.run("admin", "plan", *args, "--format", "json", "--out", str(path))
        document: dict[str, Any] = json.loads(path.read_text("ascii"))
        return document

    def distribute(self, name: str) -> str:
        return str(self.run("admin", "distribute", "--plan", str(self.folder / name)).stdout)

    def balance(self, account: str) -> str:
        rows = self.json("balances", "--account", account)
        return str(next(row["balance"] for row in rows
                        if row["account"] == account))

    def payout_keys(self) -> list[str]:
        engine = make_engine(self.db)
        try:
            with engine.connect() as connection:
                return sorted(connection.execute(
                    select(entries.c.key).where(entries.c.type == "distribution")).scalars())
        finally:
            engine.dispose()


def btc(satoshi: int) -> str:
    return f"{satoshi // SAT}.{satoshi % SAT:08d}"


def deposit(key: str, customer: str, amount: str, asset: str = "BTC") -> dict[str, Any]:
    custody = TRUST if asset == "JPY" else HOT
    return entry(key, "deposit", (custody, f"customer:{customer}:{asset}", amount), at=T)


def value(satoshi: int) -> int:
    """A BTC amount valued in yen at the commencement price, rounded down."""
    return floor(Fraction(satoshi, SAT) * PRICE)


def tier1(claims: dict[str, int], pool: int) -> dict[str, int]:
    total = sum(claims.values())
    if pool >= total:
        return dict(claims)
    return {creditor: claim * pool // total for creditor, claim in claims.items()}


def lines(plan: dict[str, Any], tier: str) -> dict[str, dict[str, Any]]:
    return {f'{line["creditor"]}:{line["asset"]}' if "asset" in line else line["creditor"]: line
            for line in plan[tier]["lines"]}


def asset_row(plan: dict[str, Any], asset: str) -> dict[str, Any]:
    row: dict[str, Any] = next(a for a in plan["tier1"]["assets"] if a["asset"] == asset)
    return row


# --- Mt. Gox ---------------------------------------------------------------------------

MTGOX_BTC = {"alice": 10 * SAT, "bob": 4 * SAT, "carol": 1 * SAT, "dave": SAT // 2}
MTGOX_JPY = {"carol": 500_000, "erin": 300_000}
RULES = {"basic_payment": "200000", "early_share": "0.21", "estate": "3000000",
         "pay_from": OPERATING, "charge_to": CHARGE}
ELECTIONS = [{"creditor": "alice", "option": "early", "payment": "fiat"},
             {"creditor": "bob", "option": "final", "payment": "crypto"},
             {"creditor": "carol", "option": "final", "payment": "fiat"},
             {"creditor": "erin", "option": "final", "payment": "fiat"}]  # dave makes none


def mtgox(db: str, folder: Path) -> Exchange:
    """15.5 BTC of customers', 12 stolen from the hot wallet; 3 BTC in cold storage and
    0.5 BTC of guarantee custody remain: a pool of 4 BTC. The yen trust is whole."""
    exchange = Exchange(db, folder)
    exchange.post("day.jsonl", [
        *(deposit(f"d-{who}", who, btc(sat)) for who, sat in MTGOX_BTC.items()),
        *(deposit(f"j-{who}", who, str(yen), "JPY") for who, yen in MTGOX_JPY.items()),
        entry("capital", "top_up", (OPERATING, "equity:capital:JPY", "5000000"), at=T),
        entry("guarantee", "top_up", (GUARANTEE, "equity:capital:BTC", "0.5"), at=T),
        entry("to-cold", "transfer", (COLD, HOT, "3"), at=T),
        entry("theft", "incident", ("loss:incident:BTC", HOT, "12"), at=THEFT_AT,
              metadata={"incident": "MTGOX-1", "incident_kind": "theft"})])
    exchange.freeze({"BTC": "749318.83"})
    return exchange


def test_mtgox_from_theft_to_final_payment(migrated_db_url: str, tmp_path: Path) -> None:
    gox = mtgox(migrated_db_url, tmp_path)
    # The pool is verified by a reconciliation run at the cut-off, not taken from the ledger.
    observations = {"observations": [
        {"account": account, "as_of": RUN_AT, "amount": amount, "source": "trustee-count"}
        for account, amount in ((COLD, "3"), (HOT, "0.5"), (GUARANTEE, "0.5"),
                                (TRUST, "800000"), (OPERATING, "5000000"))]}
    run = gox.run("reconcile", "run", "--as-of", RUN_AT, "--format", "json", "--evidence",
                  gox.file("count.json", observations), code=1)  # the theft breaks coverage
    run_id = json.loads(run.stdout)["run_id"]
    pool = gox.json("admin", "pool", "--from-run", run_id)
    assert pool["verified"] is True
    gox.run("admin", "elections", "load", gox.file("elections.json", {"elections": ELECTIONS}))
    # Erin says a 2 BTC deposit was never credited: reserved until the court rules.
    dispute = {"creditor": "erin", "asset": "BTC", "claimed": "2", "status": "open"}
    gox.run("admin", "disputes", "load", gox.file("disputes.json", {"disputes": [dispute]}))
    rules = gox.file("rules.json", RULES)
    first = gox.plan("plan-1.json", "--rules", rules, "--from-run", run_id)
    assert first["basis"]["run_id"] == run_id

    # Tier 1: 4 BTC for 15.5 BTC of claims, pro rata, floored to the satoshi.
    paid = tier1(MTGOX_BTC, 4 * SAT)
    assert paid == {"alice": 258_064_516, "bob": 103_225_806, "carol": 25_806_451,
                    "dave": 12_903_225}
    btc = asset_row(first, "BTC")
    assert (btc["pool_minor"], btc["paid_minor"], btc["remainder_minor"]) == (
        str(4 * SAT), str(399_999_998), "2")  # two satoshis of rounding stay in the pool
    assert asset_row(first, "JPY")["covered"] is True
    one = lines(first, "tier1")
    for who, sat in paid.items():
        assert one[f"{who}:BTC"]["paid_minor"] == str(sat)
        assert one[f"{who}:BTC"]["shortfall_minor"] == str(MTGOX_BTC[who] - sat)

    # Tier 2: the shortfalls valued at the commencement price; erin's 2 BTC reserved.
    claim = {who: value(MTGOX_BTC[who] - sat) for who, sat in paid.items()}
    assert claim == {"alice": 5_559_462, "bob": 2_223_784, "carol": 555_946, "dave": 277_973}
    disputed = value(2 * SAT)
    assert disputed == 1_498_637
    basic = {who: min(amount, 200_000) for who, amount in claim.items()}
    early_alice = floor(Fraction("0.21") * (claim["alice"] - basic["alice"]))
    assert early_alice == 1_125_487
    estate_left = 3_000_000 - sum(basic.values()) - 200_000 - early_alice  # erin's basic reserved
    remaining = {who: claim[who] - basic[who] for who in ("bob", "carol", "dave")}
    erin_reserve = disputed - 200_000
    final_claims = sum(remaining.values()) + erin_reserve
    final = {who: amount * estate_left // final_claims for who, amount in remaining.items()}
    two = lines(first, "tier2")
    assert two["alice"]["option"] == "early" and two["alice"]["early_minor"] == str(early_alice)
    assert two["alice"]["final_minor"] == "0"
    assert two["dave"]["elected"] is False and two["dave"]["payment"] == "fiat"
    assert two["bob"]["payment"] == "crypto"
    for who in ("bob", "carol", "dave"):
        assert two[who]["basic_minor"] == "200000"
        assert two[who]["final_minor"] == str(final[who])
    assert two["erin"]["payable_minor"] == "0"
    assert two["erin"]["reserved_minor"] == str(200_000 + erin_reserve * estate_left // final_claims)
    allotted = sum(int(line["total_minor"]) for line in first["tier2"]["lines"])
    assert allotted == int(first["tier2"]["allocated_minor"]) <= 3_000_000
    assert allotted + int(first["tier2"]["left_minor"]) == 3_000_000

    assert "distributed" in gox.distribute("plan-1.json")
    # After tier 1 each customer's account shows what is still owed in kind.
    assert gox.balance("customer:alice:BTC") == "7.41935484"
    assert gox.balance("customer:carol:JPY") == "0"
    # Segregated custody is drawn first, the guarantee last: the 2-satoshi remainder stays there.
    assert gox.balance(COLD) == gox.balance(HOT) == "0.00000000"
    assert gox.balance(GUARANTEE) == "0.00000002"
    paid_yen = sum(int(two[who]["payable_minor"]) for who in two)
    assert gox.balance(OPERATING) == str(5_000_000 - paid_yen)
    # A second run pays nothing twice.
    payouts = len(gox.payout_keys())
    assert gox.distribute("plan-1.json").startswith(f"distributed 0 payouts in 0 batches, "
                                                    f"{payouts} already recorded")
    assert len(gox.payout_keys()) == payouts

    keys = gox.payout_keys()
    references = {key: f"REF-{n}" for n, key in enumerate(keys)}
    gox.run("admin", "payouts", "confirm", gox.file("sent.json", {"payouts": [
        {"entry": key, "reference": reference} for key, reference in references.items()]}))
    status = gox.json("admin", "status")
    by_row = {(row["tier"], row["asset"]): row for row in status["rows"]}
    assert by_row[(1, "BTC")]["paid"] == "3.99999998"
    assert by_row[(1, "BTC")]["confirmed"] == "3.99999998"
    assert by_row[(2, "JPY")]["reserved"] == two["erin"]["reserved_minor"]

    # The court allows erin 1 BTC of the 2: the ruling releases the rest of the reserve to
    # the final-payment creditors, and a new plan pays only what it adds.
    ruling = {**dispute, "status": "allowed", "allowed": "1"}
    gox.run("admin", "disputes", "load", gox.file("ruling.json", {"disputes": [ruling]}))
    second = gox.plan("plan-2.json", "--rules", rules, "--from-run", run_id)
    allowed = value(SAT)
    erin_remaining = allowed - 200_000
    final_claims = sum(remaining.values()) + erin_remaining
    final_after = {who: amount * estate_left // final_claims
                   for who, amount in {**remaining, "erin": erin_remaining}.items()}
    two = lines(second, "tier2")
    for who in ("bob", "carol", "dave", "erin"):
        assert two[who]["final_minor"] == str(final_after[who])
        assert final_after[who] >= final.get(who, 0)  # a ruling lowers nobody's payment
    assert two["erin"]["basic_minor"] == "200000" and two["erin"]["reserved_minor"] == "0"
    gox.distribute("plan-2.json")
    paid_yen = sum(int(line["payable_minor"]) for line in second["tier2"]["lines"])
    assert paid_yen <= 3_000_000
    assert gox.balance(OPERATING) == str(5_000_000 - paid_yen)
    assert gox.run("verify").returncode == 0
    statement = gox.json("admin", "statement", "erin")
    assert statement["tier2"]["payable"] == str(200_000 + final_after["erin"])
    assert statement["disputes"] == [{"asset": "BTC", "claimed": "2.00000000",
                                      "status": "allowed", "allowed": "1.00000000"}]
    sent = {(item["tier"], item["amount"]): (item["entry"], item["reference"])
            for item in statement["distributed"]}
    # Her yen was paid in kind and confirmed with the reference given for that payout's key;
    # the estate's payment is new and not yet sent.
    assert set(sent) == {(1, "300000"), (2, statement["tier2"]["payable"])}
    entry_1, reference_1 = sent[(1, "300000")]
    assert entry_1 in references and reference_1 == references[entry_1]
    entry_2, reference_2 = sent[(2, statement["tier2"]["payable"])]
    assert entry_2 not in references and reference_2 is None


# --- DMM -------------------------------------------------------------------------------

DMM_BTC = {"c-1": 3 * SAT, "c-2": 2 * SAT, "c-3": 12_345_678}


def test_dmm_segregation_held_after_reserve_compensation(migrated_db_url: str,
                                                         tmp_path: Path) -> None:
    """4.8 BTC stolen from the hot wallet, made good before the failure from the company's
    own bitcoin (paid for from the liability reserve): every asset is covered."""
    dmm = Exchange(migrated_db_url, tmp_path)
    dmm.post("day.jsonl", [
        *(deposit(f"d-{who}", who, btc(sat)) for who, sat in DMM_BTC.items()),
        deposit("j-1", "c-1", "1000000", "JPY"),
        entry("capital", "top_up", ("custody:company:treasury:BTC", "equity:capital:BTC", "10"),
              at=T),
        entry("theft", "incident", ("loss:incident:BTC", HOT, "4.8"), at=THEFT_AT,
              metadata={"incident": "DMM-1", "incident_kind": "theft"}),
        entry("make-good", "top_up", (HOT, "custody:company:treasury:BTC", "4.8"),
              at="2014-02-10T09:00:00+09:00")])
    dmm.freeze({"BTC": "749318.83"})
    dmm.run("admin", "elections", "load", dmm.file("elections.json", {"elections": [
        {"creditor": "c-1", "option": "final", "payment": "crypto"}]}))
    plan = dmm.plan("plan.json", "--rules", dmm.file("rules.json", RULES))
    for asset in ("BTC", "JPY"):
        assert asset_row(plan, asset)["covered"] is True
        assert asset_row(plan, asset)["remainder_minor"] == "0"
    for line in plan["tier1"]["lines"]:
        assert line["paid_minor"] == line["claim_minor"] and line["shortfall_minor"] == "0"
    assert plan["tier2"]["lines"] == [] and plan["tier2"]["allocated_minor"] == "0"
    dmm.distribute("plan.json")
    for who in DMM_BTC:
        assert dmm.balance(f"customer:{who}:BTC") == "0.00000000"
    assert dmm.balance("customer:c-1:JPY") == "0"
    assert dmm.run("verify").returncode == 0


# --- FTX -------------------------------------------------------------------------------

FTX_JPY = {"u-1": 6_000_000, "u-2": 3_000_000, "u-3": 1_000_001}


def test_ftx_commingled_fiat_trust_pays_the_ratio_that_exists(migrated_db_url: str,
                                                             tmp_path: Path) -> None:
    """¥10,000,001 of customers' yen, ¥7,000,000 of it moved out of the trust to the company
    (misdirected funds, recorded as an incident): the trust pays 3,000,001/10,000,001 in
    kind and the estate carries the rest, valued at par."""
    ftx = Exchange(migrated_db_url, tmp_path)
    ftx.post("day.jsonl", [
        *(deposit(f"j-{who}", who, str(yen), "JPY") for who, yen in FTX_JPY.items()),
        deposit("b-1", "u-1", "1"),
        entry("capital", "top_up", (OPERATING, "equity:capital:JPY", "2000000"), at=T),
        entry("misdirected", "incident", ("loss:incident:JPY", TRUST, "7000000"), at=THEFT_AT,
              metadata={"incident": "FTX-1", "incident_kind": "misdirected_funds"})])
    ftx.freeze({"BTC": "2000000"})
    plan = ftx.plan("plan.json", "--rules", ftx.file("rules.json", {
        **RULES, "basic_payment": "0", "early_share": "0", "estate": "2000000"}))
    trust = 10_000_001 - 7_000_000
    paid = tier1(FTX_JPY, trust)
    assert paid == {"u-1": 1_800_000, "u-2": 900_000, "u-3": 300_000}  # and ¥1 stays
    jpy = asset_row(plan, "JPY")
    assert jpy["covered"] is False
    assert (jpy["paid_minor"], jpy["remainder_minor"]) == ("3000000", "1")
    assert asset_row(plan, "BTC")["covered"] is True  # the bitcoin was never touched
    one = lines(plan, "tier1")
    two = lines(plan, "tier2")
    short = {who: FTX_JPY[who] - paid[who] for who in FTX_JPY}
    estate_share = {who: amount * 2_000_000 // sum(short.values()) for who, amount in short.items()}
    for who in FTX_JPY:
        assert one[f"{who}:JPY"]["paid_minor"] == str(paid[who])
        assert two[who]["claim_minor"] == str(short[who])  # the quote is valued at par
        assert two[who]["final_minor"] == str(estate_share[who])
    assert sum(estate_share.values()) <= 2_000_000
    ftx.distribute("plan.json")
    for who in FTX_JPY:
        assert ftx.balance(f"customer:{who}:JPY") == str(short[who])
    assert ftx.balance(TRUST) == str(trust - sum(paid.values()))
    assert ftx.run("verify").returncode == 0

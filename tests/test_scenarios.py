"""The rulebook's scenarios end to end on a real database, with the numbers worked out here:
a DMM-like hot-wallet theft compensated from the liability reserve, an FTX-like use of
customer money, and fees left in the customer pool until a sweep."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ledger.chart import parse_chart
from ledger.errors import InputError
from ledger.reserves import parse_register
from ledger.storage.chart_store import load_chart
from ledger.storage.reserve_store import load_register
from ledger.storage.schema import breaches, incident_links, incidents
from reconcile import reports, service
from reconcile.rules.rulebook import parse_rulebook
from tests.helpers import CHART, cli, entry, post, snapshot

HOT, COLD, TRUST = "custody:customer:hot:BTC", "custody:customer:cold:BTC", \
    "custody:customer:trust:JPY"
GUARANTEE, RESERVE_CASH = "custody:company:guarantee:BTC", "custody:company:reserve:JPY"
OPERATING = "custody:company:operating:JPY"
DAY1, DAY2 = "2025-11-25T09:00:00+09:00", "2025-11-26T09:00:00+09:00"
END1 = datetime(2025, 11, 25, 23, 0, tzinfo=UTC)
END2 = datetime(2025, 11, 26, 23, 0, tzinfo=UTC)
THEFT = {"incident": "INC-DMM", "incident_kind": "theft"}


@pytest.fixture
def exchange(engine: Engine, tmp_path: Path) -> Engine:
    """100 BTC of customers (97 cold, 3 hot), 3 BTC of guarantee coins (cold), 10,000,000 JPY
    of customer money in trust, and a liability reserve of 2,000,000,000 JPY."""
    load_chart(engine, parse_chart(json.dumps(CHART), "chart.json"), "chart.json")
    post(engine, [
        entry("capital", "adjustment", (OPERATING, "equity:capital:JPY", "3000000000"), at=DAY1),
        entry("guarantee", "adjustment", (GUARANTEE, "equity:capital:BTC", "3"), at=DAY1),
        entry("d-cold", "deposit", (COLD, "customer:c-1:BTC", "97"), at=DAY1),
        entry("d-hot", "deposit", (HOT, "customer:c-2:BTC", "3"), at=DAY1),
        entry("d-jpy", "deposit", (TRUST, "customer:c-1:JPY", "10000000"), at=DAY1),
        entry("provision", "reserve_provision",
              ("equity:capital:JPY", "reserve:liability:JPY", "2000000000"),
              (RESERVE_CASH, OPERATING, "2000000000"), at=DAY1),
    ])
    return engine


def _prices(tmp_path: Path) -> str:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"quote": "JPY", "as_of": "2025-11-26T23:00:00Z",
                                "prices": {"BTC": "15000000"}}))
    return str(path)


def _checks(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["rule"], c["asset"]): c for c in document["checks"]}


def test_dmm_like_theft_is_compensated_by_a_flagged_reserve_draw(
        exchange: Engine, tmp_path: Path) -> None:
    prices = _prices(tmp_path)
    before = _checks(reports.segregation(exchange, END1, prices))
    # Hot share 3 of 100 BTC: 97% cold. Guarantee 3 BTC against 3 BTC hot: exactly covered.
    assert (before["JP-COLD-95", "*"]["status"], before["JP-COLD-95", "*"]["value"]) == \
        ("pass", "0.9700")
    assert (before["JP-GUARANTEE", "BTC"]["value"], before["JP-GUARANTEE", "BTC"]["threshold"]) \
        == ("3.00000000", "3.00000000")
    first_run = service.run(exchange, as_of=END1, evidence_paths=[], prices_path=prices)
    assert _checks(first_run.result)["RESERVE-DRAW", "*"]["status"] == "pass"

    # 2 BTC stolen from the hot wallet.
    post(exchange, [entry("theft", "incident", ("loss:incident:BTC", HOT, "2"), at=DAY2,
                          metadata=THEFT)])
    with exchange.connect() as connection:
        [breach] = connection.execute(select(breaches)).all()
        assert (breach.asset, breach.opened_coverage_minor, breach.incident_id,
                breach.closed_entry_id) == ("BTC", -200_000_000, "INC-DMM", None)
        [record] = connection.execute(select(incidents)).all()
        assert record.kind == "theft"
    during = _checks(reports.segregation(exchange, END2, prices))
    assert (during["SEG-COVERAGE", "BTC"]["status"], during["SEG-COVERAGE", "BTC"]["value"]) == \
        ("fail", "-2.00000000")
    # 1 BTC hot of 98 held: 97/98 = 0.98979… cold, shown rounded down.
    assert during["JP-COLD-95", "*"]["value"] == "0.9897"
    # The guarantee (3 BTC) now exceeds the 1 BTC left hot.
    assert (during["JP-GUARANTEE", "BTC"]["status"], during["JP-GUARANTEE", "BTC"]["threshold"]) \
        == ("pass", "1.00000000")

    # The reserve pays 30,000,000 JPY (2 BTC at 15,000,000) for replacement coins; the coins
    # go into customer custody.
    post(exchange, [
        entry("draw", "reserve_draw", ("reserve:liability:JPY", RESERVE_CASH, "30000000"),
              at="2025-11-26T12:00:00+09:00", metadata={"incident": "INC-DMM"},
              memo="buy 2 BTC OTC"),
        entry("top-up", "top_up", (HOT, "loss:incident:BTC", "2"),
              at="2025-11-26T13:00:00+09:00", metadata={"incident": "INC-DMM"})])
    with exchange.connect() as connection:
        [breach] = connection.execute(select(breaches)).all()
        assert breach.closed_coverage_minor == 0 and breach.closed_entry_id is not None
        links = sorted((row.kind, row.asset, row.amount_minor)
                       for row in connection.execute(select(incident_links)))
    assert links == [("draw", "JPY", 30_000_000), ("loss", "BTC", 200_000_000),
                     ("top_up", "BTC", 200_000_000)]
    after = _checks(reports.segregation(exchange, END2, prices))
    assert after["SEG-COVERAGE", "BTC"]["status"] == "pass"
    assert after["JP-COLD-95", "*"]["value"] == "0.9700"

    second_run = service.run(exchange, as_of=END2, evidence_paths=[], prices_path=prices)
    [flag] = [c for c in second_run.result["checks"] if c["rule"] == "RESERVE-DRAW"]
    assert (flag["status"], flag["asset"], flag["value"], flag["numbers"]["incident"]) == \
        ("fail", "JPY", "30000000", "INC-DMM")
    # Another run for the same as-of flags the same draw: the window is the as-of's (the
    # previous business day's as-of, END1, up to END2), whatever runs came before.
    third_run = service.run(exchange, as_of=END2, evidence_paths=[], prices_path=prices)
    [again] = [c for c in third_run.result["checks"] if c["rule"] == "RESERVE-DRAW"]
    assert again == flag
    assert service.rerun(exchange, second_run.result["run_id"]).same
    assert service.rerun(exchange, third_run.result["run_id"]).same

    # Required: no trades, so the floor (2,000,000,000). Held: 2,000,000,000 − 30,000,000.
    # Loss ratio 30,000,000 / (100 BTC × 15,000,000 + 10,000,000) = 30 / 1510.
    reserve = reports.reserve(exchange, END2, prices)
    assert (reserve["required"], reserve["held"], reserve["gap"]) == \
        ("2000000000", "1970000000", "30000000")
    assert reserve["formula"]["numbers"]["loss_ratio"] == "0.01986754"
    assert reserve["check"]["status"] == "fail"
    [incident] = reserve["incidents"]
    assert [(link["kind"], link["amount"]) for link in incident["links"]] == [
        ("loss", "2.00000000"), ("draw", "30000000"), ("top_up", "2.00000000")]
    assert [(d["entry"], d["incident"], d["amount"]) for d in reserve["draws"]] == [
        ("draw", "INC-DMM", "30000000")]

    # Insurance of 500,000,000 paying 80% of a loss: counts min(500M, 0.8 × 2,000M) = 500M,
    # under the cap of 50% × 2,000M; 1,970M + 500M ≥ 2,000M.
    register = tmp_path / "insurance.json"
    register.write_text(json.dumps({"policies": [{
        "policy_id": "CYBER-1", "insurer": "Example Fire & Marine", "currency": "JPY",
        "limit": "500000000", "covered_share": "0.8",
        "period_start": "2025-04-01T00:00:00+09:00", "period_end": "2026-04-01T00:00:00+09:00"}]}))
    load_register(exchange, parse_register(register.read_bytes(), str(register)), str(register))
    insured = reports.reserve(exchange, END2, prices)
    assert (insured["insurance"]["eligible"], insured["gap"], insured["check"]["status"]) == \
        ("500000000", "-470000000", "pass")

    # The insurer pays 20,000,000 into the reserve account: a recovery linked to the incident.
    post(exchange, [entry("recovery", "insurance_recovery",
                          (RESERVE_CASH, "reserve:liability:JPY", "20000000"),
                          at="2025-11-26T15:00:00+09:00", metadata={"incident": "INC-DMM"})])
    recovered = reports.reserve(exchange, END2, prices)
    assert (recovered["held"], recovered["gap"]) == ("1990000000", "-490000000")
    assert [(link["kind"], link["amount"]) for link in recovered["incidents"][0]["links"]][-1] \
        == ("recovery", "20000000")


def test_draw_needs_an_incident_and_nothing_else_may_take_from_the_reserve(
        exchange: Engine) -> None:
    before = snapshot(exchange)
    refusals = {
        "no incident": entry("d1", "reserve_draw",
                             ("reserve:liability:JPY", RESERVE_CASH, "1000"), at=DAY2),
        "unknown incident": entry("d2", "reserve_draw",
                                  ("reserve:liability:JPY", RESERVE_CASH, "1000"), at=DAY2,
                                  metadata={"incident": "INC-NONE"}),
        "reserve money spent as a transfer": entry("t1", "transfer", (OPERATING, RESERVE_CASH,
                                                                      "1000"), at=DAY2),
        "appropriation released by an adjustment": entry(
            "a1", "adjustment", ("reserve:liability:JPY", "equity:capital:JPY", "1000"), at=DAY2),
    }
    messages = {}
    for name, item in refusals.items():
        with pytest.raises(InputError) as refused:
            post(exchange, [item])
        messages[name] = refused.value
    assert messages["no incident"].field == "metadata.incident"
    assert "must name the incident" in messages["no incident"].reason
    assert 'unknown incident "INC-NONE"' in messages["unknown incident"].reason
    assert "only a reserve_draw" in messages["reserve money spent as a transfer"].reason
    assert "only a reserve_draw" in messages["appropriation released by an adjustment"].reason
    assert snapshot(exchange) == before


def test_ftx_like_use_of_customer_money_is_refused_and_a_misdirected_receipt_is_an_incident(
        exchange: Engine, tmp_path: Path) -> None:
    before = snapshot(exchange)
    for kind in ("adjustment", "withdrawal", "transfer"):
        with pytest.raises(InputError, match="segregation firewall"):
            post(exchange, [entry(f"rent-{kind}", kind, ("expense:rent:JPY", TRUST, "4800000"),
                                  at=DAY2)])
    # A customer's 1,000,000 JPY lands in the company's own account: as a deposit, the
    # ledger would owe it with nothing in customer custody, so it is refused.
    misdirected = ("custody:company:operating:JPY", "customer:c-9:JPY", "1000000")
    with pytest.raises(InputError, match="segregation firewall"):
        post(exchange, [entry("dep-9", "deposit", misdirected, at=DAY2)])
    assert snapshot(exchange) == before
    # What happened is recorded as an incident: a breach of 1,000,000 JPY.
    post(exchange, [entry("dep-9", "incident", misdirected, at=DAY2,
                          metadata={"incident": "INC-MIS", "incident_kind": "misdirected_funds"})])
    prices = _prices(tmp_path)
    during = _checks(reports.segregation(exchange, END2, prices))
    assert (during["JP-FIAT-TRUST", "JPY"]["status"], during["JP-FIAT-TRUST", "JPY"]["value"],
            during["JP-FIAT-TRUST", "JPY"]["threshold"]) == ("fail", "10000000", "11000000")
    post(exchange, [entry("fix-9", "top_up", (TRUST, OPERATING, "1000000"),
                          at="2025-11-26T10:00:00+09:00", metadata={"incident": "INC-MIS"})])
    after = _checks(reports.segregation(exchange, END2, prices))
    assert after["JP-FIAT-TRUST", "JPY"]["status"] == "pass"
    reserve = reports.reserve(exchange, END2, prices)
    [incident] = reserve["incidents"]
    assert (incident["kind"], [(b["asset"], b["opened_coverage"], b["closed_by"])
                               for b in incident["breaches"]]) == (
        "misdirected_funds", [("JPY", "-1000000", "fix-9")])


def test_fees_leave_excess_in_the_customer_pool_until_a_sweep_takes_it_out(
        exchange: Engine, tmp_path: Path) -> None:
    prices = _prices(tmp_path)
    post(exchange, [entry("fee-1", "fee", ("customer:c-1:JPY", "revenue:fees:JPY", "5000"),
                          at=DAY2)])
    flagged = _checks(reports.segregation(exchange, END2, prices))["SEG-EXCESS", "JPY"]
    assert (flagged["status"], flagged["value"], flagged["threshold"]) == ("fail", "5000", "0")
    before = snapshot(exchange)
    with pytest.raises(InputError) as refused:
        post(exchange, [entry("sweep-big", "sweep", (OPERATING, TRUST, "6000"), at=DAY2)])
    assert "only 5000 JPY of company money stands there; too much by 1000 JPY" in \
        refused.value.reason
    assert snapshot(exchange) == before
    post(exchange, [entry("sweep", "sweep", (OPERATING, TRUST, "5000"), at=DAY2)])
    swept = _checks(reports.segregation(exchange, END2, prices))["SEG-EXCESS", "JPY"]
    assert (swept["status"], swept["value"]) == ("pass", "0")


def test_reports_through_the_cli_exit_1_when_a_check_fails(exchange: Engine,
                                                             tmp_path: Path) -> None:
    db = exchange.url.render_as_string(hide_password=False)
    prices = _prices(tmp_path)
    at = "2025-11-26T23:00:00Z"
    statement = cli("--db", db, "report", "segregation", "--as-of", at, "--prices", prices,
                    "--format", "json")
    assert statement.returncode == 0, statement.stderr
    document = json.loads(statement.stdout)
    [btc] = [row for row in document["assets"] if row["asset"] == "BTC"]
    assert (btc["customer_custody"], btc["hot_share"], btc["guarantee_cold"]) == (
        {"cold_wallet": "97.00000000", "hot_wallet": "3.00000000"}, "0.030000", "3.00000000")
    post(exchange, [entry("fee-1", "fee", ("customer:c-1:JPY", "revenue:fees:JPY", "5000"),
                          at=DAY2)])
    assert cli("--db", db, "report", "segregation", "--as-of", at, "--prices",
               prices).returncode == 1
    reserve = cli("--db", db, "report", "reserve", "--as-of", at, "--format", "json")
    assert reserve.returncode == 0, reserve.stderr  # 2,000,000,000 held against the floor
    assert json.loads(reserve.stdout)["check"]["value"] == "2000000000"
    table = cli("--db", db, "report", "reserve", "--as-of", at)
    assert "JP-RESERVE" in table.stdout and "pass" in table.stdout


def test_reserve_draws_are_reported_by_a_run_that_applies_the_rule_whatever_ran_before(
        exchange: Engine, tmp_path: Path) -> None:
    prices = _prices(tmp_path)
    service.run(exchange, as_of=END1, evidence_paths=[], prices_path=prices)
    post(exchange, [
        entry("theft", "incident", ("loss:incident:BTC", HOT, "1"), at=DAY2, metadata=THEFT),
        entry("draw", "reserve_draw", ("reserve:liability:JPY", RESERVE_CASH, "15000000"),
              at="2025-11-26T12:00:00+09:00", metadata={"incident": "INC-DMM"})])
    without = parse_rulebook(json.dumps({"name": "no-draws", "version": "1", "extends": "jp-fsa",
                                         "rules": {"RESERVE-DRAW": None}}), "test")
    blind = service.run(exchange, as_of=END2, evidence_paths=[], prices_path=prices,
                        rulebook=without)
    assert not [c for c in blind.result["checks"] if c["rule"] == "RESERVE-DRAW"]
    after = service.run(exchange, as_of=END2, evidence_paths=[], prices_path=prices)
    [flag] = [c for c in after.result["checks"] if c["rule"] == "RESERVE-DRAW"]
    assert (flag["status"], flag["numbers"]["entry"]) == ("fail", "draw")
    assert service.rerun(exchange, after.result["run_id"]).same


def test_an_incident_may_record_reserve_money_lost(exchange: Engine) -> None:
    post(exchange, [entry("reserve-theft", "incident",
                          ("expense:rent:JPY", RESERVE_CASH, "1000000"), at=DAY2,
                          metadata={"incident": "INC-BANK", "incident_kind": "theft"})])
    reserve = reports.reserve(exchange, END2, None)
    assert reserve["held"] == "1999000000"
    assert [(d["entry"], d["type"], d["incident"]) for d in reserve["draws"]] == [
        ("reserve-theft", "incident", "INC-BANK")]
    [incident] = reserve["incidents"]
    assert [(link["kind"], link["asset"], link["amount"]) for link in incident["links"]] == [
        ("loss", "JPY", "1000000")]


def test_trading_volume_in_an_18_decimal_token_does_not_overflow(engine: Engine,
                                                                  tmp_path: Path) -> None:
    """9.3 ETH at 18 decimals is past SQLite's 64-bit integers: summed outside SQL."""
    chart = json.loads(json.dumps(CHART))
    chart["assets"].append({"code": "ETH", "kind": "crypto", "scale": 18, "chain": "ethereum"})
    chart["accounts"].append({"code": "custody:customer:cold:ETH", "asset": "ETH",
                              "pool": "customer", "role": "custody", "location": "cold_wallet"})
    load_chart(engine, parse_chart(json.dumps(chart), "chart.json"), "chart.json")
    post(engine, [
        entry("eth", "deposit", ("custody:customer:cold:ETH", "customer:c-1:ETH", "9"), at=DAY1),
        entry("btc", "deposit", (COLD, "customer:c-2:BTC", "1"), at=DAY1)]
        + [entry(f"swap-{n}", "trade", ("customer:c-1:ETH", "customer:c-2:ETH", "4.5"),
                 ("customer:c-2:BTC", "customer:c-1:BTC", "0.1"), at=DAY2) for n in range(2)])
    prices_file = tmp_path / "eth-prices.json"
    prices_file.write_text(json.dumps({"quote": "JPY", "as_of": "2025-11-26T23:00:00Z",
                                       "prices": {"BTC": "15000000", "ETH": "500000"}}))
    reserve = reports.reserve(engine, END2, str(prices_file))
    # No JPY leg: ½ (9 ETH × 500,000 + 0.2 BTC × 15,000,000) = 3,750,000.
    assert reserve["formula"]["numbers"]["traded_value"] == "3750000"

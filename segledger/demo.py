"""`segledger demo`: a small exchange's day, posted through the same path as `segledger post`.

The chart and the day's entries are written as files first (so a user can read the formats),
then loaded and posted; the amounts come from a seeded generator, so every run is the same
and a second run skips every entry as a duplicate.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ledger import service
from ledger.errors import InputError
from ledger.model import Role
from ledger.money import format_amount, parse_amount
from ledger.reserves import parse_register
from ledger.storage.engine import make_engine
from ledger.storage.meta import mark_as_demo, refuse_unless_demo
from ledger.storage.reading import balances_at, coverage_at
from ledger.storage.reserve_store import load_register
from segledger.output import console as output_console

# ETH is kept in gwei (scale 9), not wei: on SQLite an amount is a 64-bit integer, which holds
# only 9.22 ETH in wei. Reconciliation reports the sub-gwei remainder on chain as dust.
SCALES = {"JPY": 0, "BTC": 8, "ETH": 9}
PRICES_JPY = {"BTC": 15_000_000, "ETH": 520_000}
CUSTOMERS = [f"c-{n:03d}" for n in range(1, 41)]
DAY = "2025-11-25"
JST = "+09:00"


def _chart() -> dict[str, Any]:
    accounts: list[dict[str, Any]] = [
        {"code": "custody:customer:trust:JPY", "asset": "JPY", "pool": "customer",
         "role": "custody", "location": "bank_trust",
         "external": {"bank": "Demo Trust Bank", "bank_account": "7654321",
                      "iban": "JP00DEMO0000007654321"}},
        {"code": "custody:company:operating:JPY", "asset": "JPY", "pool": "company",
         "role": "custody", "location": "bank", "external": {"bank_account": "1111111"}},
        {"code": "custody:company:reserve:JPY", "asset": "JPY", "pool": "company",
         "role": "custody", "location": "bank", "purpose": "reserve",
         "external": {"bank_account": "2222222"}},
        {"code": "equity:capital:JPY", "asset": "JPY", "pool": "company", "role": "equity"},
        {"code": "revenue:fees:JPY", "asset": "JPY", "pool": "company", "role": "revenue"},
        {"code": "expense:operations:JPY", "asset": "JPY", "pool": "company", "role": "expense"},
        {"code": "expense:reserve-provision:JPY", "asset": "JPY", "pool": "company",
         "role": "expense"},
        {"code": "reserve:liability:JPY", "asset": "JPY", "pool": "company", "role": "reserve"},
        {"code": "loss:incident:BTC", "asset": "BTC", "pool": "company", "role": "loss"},
        {"code": "suspense:unidentified:JPY", "asset": "JPY", "pool": "customer",
         "role": "suspense"},
    ]
    wallets = {"BTC": ("bc1qdemocold", "bc1qdemohot", "bc1qdemoguarantee", "bc1qdemoops"),
               "ETH": ("0xC01d", "0x0407", "0x6a2a", "0x0905")}
    for asset, (cold, hot, guarantee, ops) in wallets.items():
        accounts += [
            {"code": f"custody:customer:cold:{asset}", "asset": asset, "pool": "customer",
             "role": "custody", "location": "cold_wallet", "external": {"addresses": [cold]}},
            {"code": f"custody:customer:hot:{asset}", "asset": asset, "pool": "customer",
             "role": "custody", "location": "hot_wallet", "external": {"addresses": [hot]}},
            {"code": f"custody:company:guarantee:{asset}", "asset": asset, "pool": "company",
             "role": "custody", "location": "cold_wallet", "purpose": "guarantee",
             "external": {"addresses": [guarantee]}},
            {"code": f"custody:company:hot:{asset}", "asset": asset, "pool": "company",
             "role": "custody", "location": "hot_wallet", "external": {"addresses": [ops]}},
            {"code": f"equity:capital:{asset}", "asset": asset, "pool": "company",
             "role": "equity"},
            {"code": f"revenue:fees:{asset}", "asset": asset, "pool": "company",
             "role": "revenue"},
            {"code": f"expense:network-fees:{asset}", "asset": asset, "pool": "company",
             "role": "expense"},
        ]
    assets = [{"code": "JPY", "kind": "fiat", "scale": 0},
              {"code": "BTC", "kind": "crypto", "scale": 8, "chain": "bitcoin"},
              {"code": "ETH", "kind": "crypto", "scale": SCALES["ETH"], "chain": "ethereum"}]
    return {"assets": assets, "accounts": accounts}


@dataclass
class _Day:
    """Generates entries while tracking balances, so every entry it writes is valid."""

    rng: random.Random
    entries: list[dict[str, Any]] = field(default_factory=list)
    held: dict[tuple[str, str], int] = field(default_factory=dict)
    fees_minor: dict[str, int] = field(default_factory=dict)
    clock_s: int = 8 * 3600

    def add(self, key: str, kind: str, hhmm: str, lines: list[tuple[str, str, int, str]],
            memo: str, day: str = DAY, **extra: Any) -> None:
        """`hhmm` is kept for earlier days; the day itself runs on a clock that only moves
        forward, because balances are tracked in generation order and must hold in time order."""
        if day == DAY:
            self.clock_s += 100
            hhmm = f"{self.clock_s // 3600:02d}:{self.clock_s // 60 % 60:02d}:{self.clock_s % 60:02d}"
        else:
            hhmm = f"{hhmm}:00"
        self.entries.append({
            "key": f"demo-{key}", "type": kind, "effective_at": f"{day}T{hhmm}{JST}",
            "memo": memo, **extra,
            "lines": [{"debit": d, "credit": c, "amount": format_amount(a, SCALES[asset])}
                      for d, c, a, asset in lines]})

    def owe(self, customer: str, asset: str, delta: int) -> None:
        self.held[customer, asset] = self.held.get((customer, asset), 0) + delta

    def random_minor(self, asset: str, low: str, high: str) -> int:
        scale = SCALES[asset]
        low_minor, high_minor = (parse_amount(x, scale) for x in (low, high))
        # Round to 1/10,000 of a unit (or whole yen) so the demo's amounts read like real ones.
        step = max(1, 10 ** max(0, scale - 4))
        return int(self.rng.randrange(low_minor, high_minor, step) // step * step)


def _opening(day: _Day) -> None:
    previous = "2025-11-24"
    day.add("capital-JPY", "adjustment", "09:00", [
        ("custody:company:operating:JPY", "equity:capital:JPY", 3_000_000_000, "JPY")],
        "paid-in capital", day=previous)
    day.add("reserve-opening", "reserve_provision", "09:30", [
        ("expense:reserve-provision:JPY", "reserve:liability:JPY", OPENING_RESERVE_JPY, "JPY"),
        ("custody:company:reserve:JPY", "custody:company:operating:JPY", OPENING_RESERVE_JPY,
         "JPY")], "liability reserve (責任準備金) built up so far, held in its own bank account",
        day=previous)
    for asset, guarantee, ops in (("BTC", "4", "0.5"), ("ETH", "80", "5")):
        day.add(f"capital-{asset}", "adjustment", "09:00", [
            (f"custody:company:guarantee:{asset}", f"equity:capital:{asset}",
             parse_amount(guarantee, SCALES[asset]), asset),
            (f"custody:company:hot:{asset}", f"equity:capital:{asset}",
             parse_amount(ops, SCALES[asset]), asset)],
            f"company {asset}: performance-guarantee coins (cold) and operating float (hot)",
            day=previous)
    for customer in CUSTOMERS:
        jpy = day.random_minor("JPY", "50000", "3000000")
        day.owe(customer, "JPY", jpy)
        day.add(f"open-{customer}-JPY", "deposit", "10:00", [
            ("custody:customer:trust:JPY", f"customer:{customer}:JPY", jpy, "JPY")],
            "opening balance", day=previous, metadata={"end_to_end_id": f"E2E-{customer}-0"})
        for asset, high in (("BTC", "1.5"), ("ETH", "20")):
            amount = day.random_minor(asset, "0.01", high)
            day.owe(customer, asset, amount)
            day.add(f"open-{customer}-{asset}", "deposit", "10:00", [
                (f"custody:customer:cold:{asset}", f"customer:{customer}:{asset}", amount, asset)],
                "opening balance held cold", day=previous)


def _deposits(day: _Day) -> None:
    for n in range(30):
        customer = day.rng.choice(CUSTOMERS)
        amount = day.random_minor("JPY", "10000", "1000000")
        day.owe(customer, "JPY", amount)
        day.add(f"dep-jpy-{n:03d}", "deposit", f"{8 + n // 3:02d}:{n % 3 * 20:02d}", [
            ("custody:customer:trust:JPY", f"customer:{customer}:JPY", amount, "JPY")],
            "bank transfer in", metadata={"end_to_end_id": f"E2E-{DAY}-{n:04d}"})
    for n in range(20):
        asset = "BTC" if n % 2 == 0 else "ETH"
        customer = day.rng.choice(CUSTOMERS)
        amount = day.random_minor(asset, "0.001" if asset == "BTC" else "0.05",
                                  "0.3" if asset == "BTC" else "4")
        day.owe(customer, asset, amount)
        day.add(f"dep-{asset.lower()}-{n:03d}", "deposit", f"{9 + n // 3:02d}:{n % 3 * 15 + 5:02d}",
                [(f"custody:customer:hot:{asset}", f"customer:{customer}:{asset}", amount, asset)],
                "on-chain deposit", metadata={"txid": f"{asset.lower()}tx{n:060d}"})


def _trades(day: _Day) -> None:
    for n in range(80):
        asset = "BTC" if n % 3 else "ETH"
        buyer, seller = day.rng.sample(CUSTOMERS, 2)
        quantity = day.random_minor(asset, "0.001" if asset == "BTC" else "0.02",
                                    "0.05" if asset == "BTC" else "1")
        quantity = min(quantity, day.held.get((seller, asset), 0))
        price = PRICES_JPY[asset] + day.rng.randrange(-50_000, 50_000, 100)
        cost = quantity * price // 10 ** SCALES[asset]
        fee = max(1, cost // 1000)  # 0.1% taker fee, in yen
        if quantity <= 0 or day.held.get((buyer, "JPY"), 0) < cost + fee:
            continue
        day.owe(buyer, "JPY", -(cost + fee))
        day.owe(seller, "JPY", cost)
        day.owe(seller, asset, -quantity)
        day.owe(buyer, asset, quantity)
        day.fees_minor["JPY"] = day.fees_minor.get("JPY", 0) + fee
        day.add(f"trade-{n:03d}", "trade", f"{9 + n // 8:02d}:{n % 8 * 7 + 1:02d}", [
            (f"customer:{buyer}:JPY", f"customer:{seller}:JPY", cost, "JPY"),
            (f"customer:{seller}:{asset}", f"customer:{buyer}:{asset}", quantity, asset),
            (f"customer:{buyer}:JPY", "revenue:fees:JPY", fee, "JPY")],
            f"{asset}/JPY at {price:,} JPY, taker fee 0.1%",
            metadata={"order_ids": [f"o-{n}-b", f"o-{n}-s"], "price_jpy": str(price)})


def _withdrawals(day: _Day) -> None:
    for n in range(12):
        customer = day.rng.choice(CUSTOMERS)
        amount = min(day.random_minor("JPY", "10000", "500000"), day.held[customer, "JPY"] - 330)
        if amount <= 0:
            continue
        day.owe(customer, "JPY", -(amount + 330))
        day.fees_minor["JPY"] = day.fees_minor.get("JPY", 0) + 330
        day.add(f"wd-jpy-{n:03d}", "withdrawal", f"{13 + n // 3:02d}:{n % 3 * 20 + 10:02d}", [
            (f"customer:{customer}:JPY", "custody:customer:trust:JPY", amount, "JPY"),
            (f"customer:{customer}:JPY", "revenue:fees:JPY", 330, "JPY")],
            "bank transfer out, 330 JPY withdrawal fee",
            metadata={"end_to_end_id": f"WD-{DAY}-{n:04d}"})
    fee_btc, network_btc = 20_000, 3_100
    for n in range(6):
        customer = day.rng.choice(CUSTOMERS)
        amount = min(day.random_minor("BTC", "0.005", "0.1"), day.held[customer, "BTC"] - fee_btc)
        if amount <= 0:
            continue
        day.owe(customer, "BTC", -(amount + fee_btc))
        day.add(f"wd-btc-{n:03d}", "withdrawal", f"{14 + n:02d}:45", [
            (f"customer:{customer}:BTC", "custody:customer:hot:BTC", amount, "BTC"),
            (f"customer:{customer}:BTC", "revenue:fees:BTC", fee_btc, "BTC"),
            ("expense:network-fees:BTC", "custody:company:hot:BTC", network_btc, "BTC")],
            "on-chain withdrawal; 0.0002 BTC fee charged, network fee paid by the company",
            metadata={"txid": f"btcwd{n:059d}"})


def _close_of_day(day: _Day) -> None:
    # Customer coins that arrived hot go cold, keeping hot custody under the 5% rule.
    for asset in ("BTC", "ETH"):
        hot = sum(e_line_amount(day, asset))
        if hot > 0:
            day.add(f"hot-to-cold-{asset}", "transfer", "18:00", [
                (f"custody:customer:cold:{asset}", f"custody:customer:hot:{asset}",
                 hot * 9 // 10, asset)],
                f"consolidate the day's {asset} deposits into cold storage")
    _hot_wallet_theft(day)
    day.add("sweep-fees-JPY", "sweep", "18:30", [
        ("custody:company:operating:JPY", "custody:customer:trust:JPY", day.fees_minor["JPY"],
         "JPY")], "sweep the day's JPY fees out of the customer trust account")
    day.add("reserve-provision", "reserve_provision", "19:00", [
        ("expense:reserve-provision:JPY", "reserve:liability:JPY", 2_000_000, "JPY"),
        ("custody:company:reserve:JPY", "custody:company:operating:JPY", 2_000_000, "JPY")],
        "liability reserve (責任準備金): monthly provision, funded in the reserve account")
    day.add("dup-deposit", "deposit", "19:30", [
        ("custody:customer:trust:JPY", f"customer:{CUSTOMERS[0]}:JPY", 12_345, "JPY")],
        "deposit booked twice by the bank feed", metadata={"end_to_end_id": f"E2E-{DAY}-0000"})
    day.add("dup-deposit-reversal", "reversal", "19:35", [], "reverse the double booking",
            reverses="demo-dup-deposit")
    day.entries[-1].pop("lines")


def _hot_wallet_theft(day: _Day) -> None:
    """A DMM-like theft from the BTC hot wallet, compensated from the liability reserve:
    the incident opens a breach; the reserve pays for replacement coins (a flagged draw);
    the top-up into customer custody closes the breach."""
    stolen = sum(e_line_amount(day, "BTC")) // 2
    if stolen <= 0:
        return
    incident = f"INC-{DAY}-01"
    day.add("theft-BTC", "incident", "18:10", [
        ("loss:incident:BTC", "custody:customer:hot:BTC", stolen, "BTC")],
        "hot wallet key compromised: coins sent to an unknown address",
        metadata={"incident": incident, "incident_kind": "theft"})
    cost_jpy = -(-stolen * PRICES["BTC"] // 10**SCALES["BTC"])  # rounded up to the yen
    day.add("theft-draw", "reserve_draw", "18:20", [
        ("reserve:liability:JPY", "custody:company:reserve:JPY", cost_jpy, "JPY")],
        "reserve pays for replacement BTC bought OTC", metadata={"incident": incident})
    day.add("theft-top-up", "top_up", "18:25", [
        ("custody:customer:hot:BTC", "loss:incident:BTC", stolen, "BTC")],
        "replacement BTC delivered into customer custody", metadata={"incident": incident})


def e_line_amount(day: _Day, asset: str) -> list[int]:
    """Net flows into the customer hot wallet of `asset` over the day so far."""
    flows = []
    for entry in day.entries:
        for line in entry.get("lines", []):
            amount = parse_amount(line["amount"], SCALES[asset])
            if line["debit"] == f"custody:customer:hot:{asset}":
                flows.append(amount)
            elif line["credit"] == f"custody:customer:hot:{asset}":
                flows.append(-amount)
    return flows


def build_files(directory: Path) -> tuple[Path, Path]:
    day = _Day(random.Random(20251125))
    _opening(day)
    _deposits(day)
    _trades(day)
    _withdrawals(day)
    _close_of_day(day)
    directory.mkdir(parents=True, exist_ok=True)
    chart_path, entries_path = directory / "chart.json", directory / f"{DAY}.jsonl"
    chart_path.write_text(json.dumps(_chart(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    entries_path.write_text(
        "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in day.entries), "utf-8")
    return chart_path, entries_path


FTX_LIKE = {
    "key": "demo-ftx-like-rent", "type": "adjustment", "effective_at": f"{DAY}T20:00:00{JST}",
    "memo": "pay the office rent from the customer trust account",
    "lines": [{"debit": "expense:operations:JPY", "credit": "custody:customer:trust:JPY",
               "amount": "4800000"}]}


DEMO_DIRECTORY = Path("segledger-demo")


def demo_url(directory: Path = DEMO_DIRECTORY) -> str:
    """The demo's own ledger: a file beside its input files, never the user's ledger."""
    return f"sqlite:///{directory / 'ledger.db'}"


def run_demo(url: str | None, directory: Path = DEMO_DIRECTORY) -> None:
    """Build the demo on `url` (else its own file): only into an empty database or an earlier
    demo's; anything else is refused before a byte is written."""
    console = output_console()
    own = url is None
    if own:
        directory.mkdir(parents=True, exist_ok=True)
    url = url or demo_url(directory)
    refuse_unless_demo(make_engine(url))
    chart_path, entries_path = build_files(directory)
    engine = service.init(url)
    mark_as_demo(engine)
    console.print(f"[bold]Ledger[/]: {url}" + (" (the demo's own file)" if own else ""))
    chart = service.load_chart_file(engine, str(chart_path))
    console.print(f"[bold]Chart[/]: {chart_path} ({chart.assets_added} assets, "
                  f"{chart.accounts_added} accounts added)")
    result = service.post_file(engine, str(entries_path))
    console.print(f"[bold]Day[/]: {entries_path}: posted {result.posted} entries "
                  f"({result.postings} postings), skipped {result.skipped} duplicates")
    insurance = directory / "insurance.json"
    insurance.write_text(json.dumps(INSURANCE, indent=1) + "\n", "utf-8")
    load_register(engine, parse_register(insurance.read_bytes(), str(insurance)),
                  str(insurance))
    refused = directory / "ftx-like.jsonl"
    refused.write_text(json.dumps(FTX_LIKE) + "\n", "utf-8")
    try:
        service.post_file(engine, str(refused))
        console.print("[red]the firewall let a company expense consume customer money[/]")
    except InputError as error:
        # One line whatever its length: the message is what a reader greps for.
        console.print(f"[bold]Refused, as it must be[/]: {error.render()}", soft_wrap=True)
    with engine.connect() as connection:
        _print_tables(console, connection)
    _reconcile(console, engine, directory, entries_path)
    db = f"--db {url} " if own else ""
    console.print(
        f"\nNext (the demo's ledger is {url}; `export SEGLEDGER_DATABASE_URL={url}` saves "
        "typing --db):\n"
        f"  segledger {db}balances --prefix customer:c-001\n"
        "      one customer's positions\n"
        f"  segledger {db}--tz Asia/Tokyo balances --as-of {DAY}T12:00:00+09:00\n"
        "      the ledger at noon that day, times in Japan's zone\n"
        f"  segledger {db}coverage --format json\n"
        "      coverage per asset, for scripts\n"
        f"  segledger {db}verify\n"
        "      re-check the whole journal\n"
        f"  {entries_path}\n"
        "      the day's entries: the JSONL format\n"
        f"  segledger {db}reconcile history\n"
        "      every run; then `reconcile show RUN_ID`, `reconcile rerun RUN_ID`\n"
        f"  segledger {db}report segregation --as-of {AS_OF} --prices {directory}/prices.json\n"
        "      the auditor's daily statement\n"
        f"  segledger {db}report reserve --as-of {AS_OF} --prices {directory}/prices.json\n"
        "      the liability reserve, the theft and its draw", soft_wrap=True)


def _print_tables(console: Console, connection: Any) -> None:
    table = Table(title="Custody and company accounts")
    for column in ("account", "asset", "balance"):
        table.add_column(column, justify="right" if column == "balance" else "left")
    for balance in balances_at(connection):
        if balance.account.role is not Role.CUSTOMER_LIABILITY:
            table.add_row(balance.account.code, balance.account.asset,
                          format_amount(balance.balance_minor, SCALES[balance.account.asset]))
    console.print(table)
    cover = Table(title="Customer pool coverage per asset")
    for column in ("asset", "customer custody", "by location", "customer liabilities",
                   "coverage"):
        cover.add_column(column, justify="left" if column in ("asset", "by location") else "right")
    rows = coverage_at(connection)
    for row in rows:
        cover.add_row(
            row.asset, format_amount(row.custody_minor, row.scale),
            "\n".join(f"{location} {format_amount(minor, row.scale)}"
                      for location, minor in row.custody_by_location_minor.items()),
            format_amount(row.liabilities_minor, row.scale),
            format_amount(row.coverage_minor, row.scale))
    console.print(cover)
    for row in rows:
        if row.coverage_minor > 0:
            console.print(
                f"{row.asset}: {format_amount(row.coverage_minor, row.scale)} {row.asset} of "
                "company money (fees) stands in the customer pool; a `sweep` takes it out.")


AS_OF = f"{DAY}T23:59:59{JST}"
OPENING_RESERVE_JPY = 1_500_000_000
PRICES = {"BTC": 15_000_000, "ETH": 520_000}  # JPY per unit at the day's close
INSURANCE = {"policies": [{
    "policy_id": "DEMO-CYBER-2025", "insurer": "Demo Marine & Fire", "currency": "JPY",
    "limit": "1000000000", "covered_share": "0.8",
    "period_start": "2025-04-01T00:00:00+09:00", "period_end": "2026-04-01T00:00:00+09:00"}]}
BANK_FEE_JPY = 440


def _reconcile(console: Console, engine: Any, directory: Path, entries_path: Path) -> None:
    """The day's statement from the trust bank (with a transfer fee the ledger has not booked)
    and a custodian snapshot of every other custody account, reconciled against the ledger."""
    from ledger.service import parse_instant
    from reconcile import service as reconcile_service
    from reconcile.adapters.camt053 import write_statement

    as_of = parse_instant(AS_OF, "as_of")
    trust = "custody:customer:trust:JPY"
    with engine.connect() as connection:
        balances = {row.account.code: row for row in balances_at(connection, as_of)}
    movements = []
    for item in map(json.loads, entries_path.read_text("utf-8").splitlines()):
        if item["effective_at"].startswith(DAY) and item["type"] != "reversal" \
                and item["key"] != "demo-dup-deposit":
            for line in item["lines"]:
                sign = 1 if line["debit"] == trust else -1 if line["credit"] == trust else 0
                if sign:
                    movements.append((str(sign * parse_amount(line["amount"], 0)),
                                      item.get("metadata", {}).get("end_to_end_id"), item["memo"]))
    movements.append((str(-BANK_FEE_JPY), None, "transfer fee charged by the trust bank"))
    statement = directory / f"trust-statement-{DAY}.xml"
    statement.write_bytes(write_statement(
        "JP00DEMO0000007654321", "JPY", str(balances[trust].balance_minor - BANK_FEE_JPY), DAY,
        movements))
    snapshot = directory / f"custodian-{DAY}.json"
    snapshot.write_text(json.dumps({"observations": [
        {"account": code, "as_of": AS_OF, "source": "demo-custodian",
         "amount": format_amount(row.balance_minor, SCALES[row.account.asset])}
        for code, row in sorted(balances.items())
        if code.startswith("custody:") and code != trust]}, indent=1) + "\n", "utf-8")
    prices = directory / "prices.json"
    prices.write_text(json.dumps({"quote": "JPY", "as_of": AS_OF, "source": "demo close",
                                  "prices": {k: str(v) for k, v in PRICES.items()}}) + "\n")
    outcome = reconcile_service.run(engine, as_of=as_of, evidence_paths=[str(statement),
                                                                         str(snapshot)],
                                    prices_path=str(prices))
    result = outcome.result
    console.print(f"\n[bold]Reconciliation[/] {result['run_id']} as of {AS_OF}: "
                  f"[{'green' if result['status'] == 'clean' else 'red'}]{result['status']}[/]")
    for found in result["breaks"]:
        console.print(f"  break: {found['account']} {found['kind']} {found['difference']} "
                      f"{found['asset']} (open since {found['open_since']})", soft_wrap=True)
    matching = result["matching"].get(trust)
    if matching:
        for item in matching["unmatched_external"]:
            console.print(f"  explained by the statement line {item['amount']} JPY "
                          f"\"{item['description']}\", which the ledger has not booked",
                          soft_wrap=True)
    failed = [c for c in result["checks"] if c["status"] == "fail"]
    console.print(f"  checks: {len(result['checks']) - len(failed)} pass, {len(failed)} fail"
                  + "".join(f"\n  fail: {c['rule']} {c['asset']}: {c['detail']}" for c in failed),
                  soft_wrap=True)

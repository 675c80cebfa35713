"""Evidence for a reconciliation of the generated exchange at its last daily close.

One camt.053 statement a trust bank account (the day's opening and closing booked balances and
every booked line of the day, with the end-to-end ids the ledger's entries carry) and one
custodian snapshot (observation CSV) of every wallet and company bank account: balances
without movements, as a custodian reports them. Optionally a few planted breaks: a shortfall,
an account without evidence, a snapshot of an account the chart does not have.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from bench.chart import COLD_WALLETS, CRYPTO, SPECS, TRUST_ACCOUNTS, cold, custody_accounts, hot, trust
from bench.generator import Exchange, Movement
from ledger.money import format_amount

CAMT = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
SOURCE = "custodian-x"


@dataclass(frozen=True)
class Planted:
    account: str
    kind: str  # shortfall | missing_evidence | unknown_account


def _amount(minor: int, currency: str) -> str:
    return format_amount(abs(minor), SPECS[currency].scale)


def _balance(code: str, minor: int, currency: str, day: date) -> str:
    return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
            f"<Amt Ccy=\"{currency}\">{_amount(minor, currency)}</Amt>"
            f"<CdtDbtInd>{'CRDT' if minor >= 0 else 'DBIT'}</CdtDbtInd>"
            f"<Dt><Dt>{day.isoformat()}</Dt></Dt></Bal>\n")


def _entry(move: Movement, currency: str, day: date) -> str:
    if move.reference:
        details = (f"<NtryDtls><TxDtls><Refs><EndToEndId>{escape(move.reference)}</EndToEndId>"
                   f"</Refs></TxDtls></NtryDtls>")
    else:
        details = f"<AddtlNtryInf>{escape(move.text)}</AddtlNtryInf>"
    return (f"<Ntry><Amt Ccy=\"{currency}\">{_amount(move.minor, currency)}</Amt>"
            f"<CdtDbtInd>{'CRDT' if move.minor >= 0 else 'DBIT'}</CdtDbtInd><Sts>BOOK</Sts>"
            f"<BookgDt><Dt>{day.isoformat()}</Dt></BookgDt>{details}</Ntry>\n")


def write_statement(path: Path, account_number: str, currency: str, day: date, opening: int,
                    closing: int, moves: list[Movement], created: datetime) -> Path:
    """A camt.053.001.02 statement of one account and one day; opening + lines = closing."""
    assert opening + sum(move.minor for move in moves) == closing, "the statement adds up"
    when = created.isoformat()
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{CAMT}">'
                  f"<BkToCstmrStmt>\n<GrpHdr><MsgId>BENCH-{account_number}-{day:%Y%m%d}</MsgId>"
                  f"<CreDtTm>{when}</CreDtTm></GrpHdr>\n"
                  f"<Stmt><Id>{account_number}-{day:%Y%m%d}</Id><CreDtTm>{when}</CreDtTm>\n"
                  f"<Acct><Id><Othr><Id>{account_number}</Id></Othr></Id><Ccy>{currency}</Ccy>"
                  f"</Acct>\n")
        out.write(_balance("OPBD", opening, currency, day))
        out.write(_balance("CLBD", closing, currency, day))
        for move in moves:
            out.write(_entry(move, currency, day))
        out.write("</Stmt></BkToCstmrStmt></Document>\n")
    return path


def write_evidence(exchange: Exchange, directory: Path, breaks: int = 0
                   ) -> tuple[list[Path], list[Planted]]:
    """The statements and the snapshot for `exchange.as_of()`, with `breaks` planted breaks
    (0 to 3 of the kinds above, then more shortfalls)."""
    directory.mkdir(parents=True, exist_ok=True)
    as_of = exchange.as_of()
    files = []
    for k in range(TRUST_ACCOUNTS):
        code = trust(k)
        files.append(write_statement(
            directory / f"trust{k:02d}.camt053.xml", str(9_100_000 + k), "JPY", exchange.day,
            exchange.day_opening.get(code, 0), exchange.books[code],
            exchange.day_moves.get(code, []), as_of))
    rows = {account["code"]: format_amount(exchange.books[account["code"]],
                                           SPECS[account["asset"]].scale)
            for account in custody_accounts() if account["external"].get("addresses")
            or account["pool"] == "company"}
    planted = []
    shortfalls = [cold(asset, k) for k in range(COLD_WALLETS) for asset in CRYPTO]
    for number in range(breaks):
        if number == 1:
            rows.pop(hot("ETH", 0))
            planted.append(Planted(hot("ETH", 0), "missing_evidence"))
        elif number == 2:
            rows["custody:customer:cold99:BTC"] = "1"
            planted.append(Planted("custody:customer:cold99:BTC", "unknown_account"))
        else:
            code = shortfalls.pop(0)
            scale = SPECS[code.rsplit(":", 1)[1]].scale
            minor = exchange.books[code]
            # One minor unit short; an empty wallet reported with one unit too many.
            rows[code] = format_amount(minor - 1 if minor else 1, scale)
            planted.append(Planted(code, "shortfall" if minor else "excess"))
    snapshot = directory / "wallets.csv"
    with snapshot.open("w", encoding="utf-8", newline="\n") as out:
        out.write("account,as_of,amount,source\n")
        for code in sorted(rows):
            out.write(f"{code},{as_of.isoformat()},{rows[code]},{SOURCE}\n")
    files.append(snapshot)
    return files, planted


def write_prices(path: Path, as_of: datetime) -> Path:
    prices = {asset: str(SPECS[asset].price_jpy) for asset in CRYPTO}
    path.write_text(json.dumps({"quote": "JPY", "as_of": as_of.isoformat(),
                                "source": "bench", "prices": prices}, indent=1) + "\n", "utf-8")
    return path

"""BAI2 cash-management balance reports, parsed by the bai2 library."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from bai2 import bai2 as bai2_parser  # type: ignore[import-untyped]

from ledger.errors import InputError
from reconcile.evidence import Movement, Observation

CLOSING_LEDGER = "015"
# BAI2 amounts carry no decimal point: the currency's minor unit is implied.
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "CLP", "ISK", "VND"})


def looks_like(content: bytes) -> bool:
    return content.lstrip()[:3] == b"01,"


def parse(content: bytes, source: str) -> list[Observation]:
    try:
        report = bai2_parser.parse_from_string(content.decode("ascii"), check_integrity=True)
    except UnicodeDecodeError:
        raise InputError("BAI2 must be ASCII text", source=source) from None
    except Exception as error:
        raise InputError(f"malformed BAI2: {error}", source=source) from None
    observations = []
    for group in report.children:
        as_of = group.header.as_of_date
        for index, account in enumerate(group.children):
            observations.append(_account(account, group.header, as_of, source, index))
    if not observations:
        raise InputError("no account in the BAI2 file", source=source)
    return observations


def _scale(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(0 if currency in ZERO_DECIMAL_CURRENCIES else -2)


def _account(account: Any, header: Any, as_of: date, source: str, index: int) -> Observation:
    number = str(account.header.customer_account_number)
    currency = account.header.currency or header.currency or "USD"
    closing = [s for s in account.header.summary_items
               if s.type_code is not None and s.type_code.code == CLOSING_LEDGER]
    if len(closing) != 1:
        raise InputError(f"account {number} has no closing ledger balance (type 015)",
                         source=source, field=f"account[{index}]")
    movements = []
    for detail in account.children:
        transaction = detail.type_code.transaction.value if detail.type_code else "misc"
        sign = -1 if transaction == "debit" else 1
        movements.append(Movement(
            amount=sign * _scale(int(detail.amount), currency), booked_on=as_of,
            reference=detail.customer_reference or detail.bank_reference or None,
            description=detail.text or ""))
    return Observation(
        source=source, kind="bai2", account={"bank_account": number}, currency=currency,
        amount=_scale(int(closing[0].amount), currency), as_of=as_of,
        movements=tuple(movements), facts={"originator": header.originator_id})

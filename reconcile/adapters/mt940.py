"""SWIFT MT940 customer statements, parsed by the mt-940 library."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import mt940

from ledger.errors import InputError
from reconcile.evidence import Movement, Observation

TAGS = re.compile(rb"(?:^|\n):(20|25|28C|60[FM]|61|62[FM]|86):")


def looks_like(content: bytes) -> bool:
    """MT940 field tags (:20:, :25:, :60F:, :61:, :86: …) at the start of a line."""
    return TAGS.search(content[:20_000]) is not None


def _decode(content: bytes) -> str:
    for encoding in ("utf-8", "latin-1"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")


def parse(content: bytes, source: str) -> list[Observation]:
    try:
        statement = mt940.models.Transactions()
        statement.parse(_decode(content))
    except Exception as error:
        raise InputError(f"malformed MT940: {error}", source=source) from None
    data: dict[str, Any] = statement.data
    closing = data.get("final_closing_balance")
    if closing is None:
        raise InputError("no closing balance (:62F:) in the statement", source=source)
    # A statement without :25: still has a balance: it becomes an unknown_account break.
    account_id = str(data.get("account_identification") or "").strip()
    movements = tuple(_movement(transaction.data) for transaction in statement.transactions
                      if "amount" in transaction.data)
    return [Observation(
        source=source, kind="mt940", account=_account(account_id),
        currency=str(closing.amount.currency), amount=Decimal(closing.amount.amount),
        as_of=_as_date(closing.date), movements=movements,
        facts={"statement_number": data.get("statement_number"),
               "transaction_reference": data.get("transaction_reference"),
               "account_identification": account_id})]


def _account(account_id: str) -> dict[str, str]:
    """`:25:` holds an IBAN, or "BANKCODE/ACCOUNT", or an account number."""
    compact = account_id.replace(" ", "")
    if not compact:
        return {"account_identification": ""}
    if re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", compact):
        return {"iban": compact}
    return {"bank_account": compact.rsplit("/", 1)[-1], "account_identification": account_id}


def _as_date(value: Any) -> date:
    return date(value.year, value.month, value.day)


def _movement(data: dict[str, Any]) -> Movement:
    reference = data.get("customer_reference") or data.get("bank_reference")
    if reference in ("NONREF", "NOTPROVIDED"):
        reference = None
    details = data.get("transaction_details") or data.get("extra_details") or ""
    return Movement(amount=Decimal(data["amount"].amount), booked_on=_as_date(data["date"]),
                    reference=reference, description=" ".join(str(details).split()))

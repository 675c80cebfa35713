"""The plan's rules file, read strictly: the administrator's numbers for tier 2.

    {"basic_payment": "200000", "early_share": "0.21", "estate": "2000000000",
     "pay_from": "custody:company:operating:JPY",
     "charge_to": "expense:administration:distributions:JPY"}

Amounts are decimal text in units of the quote currency (the recorded commencement price
table's), turned into minor units once that currency's scale is known; the early share is a
decimal from 0 to 1. Every number is text in quotes: a JSON number is refused, because a
float is not the decimal it prints and an integer here would be read differently elsewhere.
Unknown fields are refused, so a misspelt "basic_paymnet" is never silently a zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ledger.administration.input_files import decimal_field
from ledger.administration.inputs import MAX_MINOR
from ledger.errors import InputError
from ledger.files import text_of
from ledger.json_input import from_pydantic, line_of, loads_strict, locate
from ledger.model import ACCOUNT_CODE
from ledger.money import parse_amount

# A share with more digits than this is a typing mistake (the plan's own bound is 40).
MAX_SHARE_CHARS = 40


def _amount(value: Any) -> str:
    return decimal_field(value, "200000", positive=False)


def _share(value: Any) -> Decimal:
    text = decimal_field(value, "0.21", positive=False)
    if len(text) > MAX_SHARE_CHARS:
        raise ValueError(f"has more than {MAX_SHARE_CHARS} characters")
    share = Decimal(text)
    if share > 1:
        raise ValueError(f"is a share from 0 to 1, not {text}")
    return share


class _RulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    basic_payment: Annotated[str, BeforeValidator(_amount)]
    early_share: Annotated[Decimal, BeforeValidator(_share)]
    estate: Annotated[str, BeforeValidator(_amount)]
    pay_from: Annotated[str, Field(pattern=ACCOUNT_CODE.pattern)]
    charge_to: Annotated[str, Field(pattern=ACCOUNT_CODE.pattern)]


@dataclass(frozen=True)
class RulesFile:
    """The rules as read: amounts still decimal text in quote units (see `in_minor`)."""

    basic_payment: str
    early_share: Decimal
    estate: str
    pay_from: str
    charge_to: str
    source: str
    text: str = ""  # the file's text, to name the line of an error found later

    def in_minor(self, quote: str, quote_scale: int) -> tuple[int, int]:
        """(basic payment, estate) in the quote currency's minor unit."""
        return (self._minor(self.basic_payment, "basic_payment", quote, quote_scale),
                self._minor(self.estate, "estate", quote, quote_scale))

    def _minor(self, text: str, field: str, quote: str, quote_scale: int) -> int:
        line = line_of(self.text, field) if self.text else None
        try:
            minor = parse_amount(text, quote_scale, allow_zero=True)
        except InputError as error:
            raise InputError(f"{error.reason} ({quote}, the quote of the commencement prices)",
                             source=self.source, field=field, line=line) from None
        if minor > MAX_MINOR:
            digits = len(text.partition(".")[0].lstrip("0"))
            raise InputError(f"has {digits} digits before the point, more than the ledger "
                             f"holds ({len(str(MAX_MINOR)) - quote_scale} in {quote})",
                             source=self.source, field=field, line=line)
        return minor


def parse_rules(content: bytes, source: str) -> RulesFile:
    """The rules file's values, checked for form; the accounts are checked against the chart
    (and the amounts against the quote's scale) by the plan's service."""
    text = text_of(content, source)
    try:
        try:
            parsed = _RulesIn.model_validate(loads_strict(text))
        except ValidationError as error:
            raise from_pydantic(error, _RulesIn) from None
    except InputError as error:
        raise locate(error, text).located(source=source) from None
    return RulesFile(parsed.basic_payment, parsed.early_share, parsed.estate, parsed.pay_from,
                     parsed.charge_to, source, text)

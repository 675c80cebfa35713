"""Price tables: the value of each asset in a quote currency (JPY by default) at one time.

A value is exact: minor units × price, in `Decimal` with room for every digit. Where no price
is known the caller gets None and must say "n/a" with the reason, never a guess.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
)

from ledger.errors import InputError, shown
from ledger.files import text_of
from ledger.json_input import from_pydantic, iso_text, kind_of, loads_strict, locate
from ledger.model import ASSET_CODE
from ledger.money import PLAIN_DECIMAL

MAX_PRICES = 10_000
# 200 significant digits: a uint256 amount (78 digits) times a 40-digit price, exactly.
EXACT = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.Overflow,
                                         decimal.InvalidOperation])


def plain_decimal(value: Any) -> Decimal:
    """A decimal given as text ("0.95") or a JSON integer; floats are refused (0.1 is not 0.1)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        given = f"the number {value} (write it in quotes)" if isinstance(value, float) \
            else kind_of(value)
        raise ValueError(f"must be a decimal number as text, such as \"0.95\", not {given}")
    text = str(value)
    if len(text) > 60 or not PLAIN_DECIMAL.fullmatch(text):
        raise ValueError(f"{shown(text, 40)} is not a plain decimal number such as \"0.95\"")
    return Decimal(text)


# Written back as plain digits ("0.0000001", never "1E-7"), so that what is stored reads again.
PlainDecimal = Annotated[Decimal, BeforeValidator(plain_decimal),
                         PlainSerializer(lambda value: format(value, "f"), return_type=str)]


class _PricesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quote: Annotated[str, Field(pattern=ASSET_CODE.pattern)] = "JPY"
    as_of: Annotated[AwareDatetime, BeforeValidator(iso_text)]
    prices: Annotated[dict[str, PlainDecimal], Field(max_length=MAX_PRICES)]
    source: Annotated[str | None, Field(max_length=200)] = None


@dataclass(frozen=True)
class PriceTable:
    quote: str
    as_of: datetime
    prices: Mapping[str, Decimal]
    source: str | None = None

    def price(self, asset: str) -> Decimal | None:
        if asset == self.quote:
            return Decimal(1)
        return self.prices.get(asset)

    def value(self, asset: str, amount_minor: int, scale: int) -> Decimal | None:
        """Exact value of an amount in the quote currency; None without a price."""
        price = self.price(asset)
        if price is None:
            return None
        return EXACT.multiply(EXACT.scaleb(Decimal(amount_minor), -scale), price)

    def to_json(self) -> dict[str, Any]:
        return {"quote": self.quote, "as_of": self.as_of.isoformat(), "source": self.source,
                "prices": {asset: str(price) for asset, price in sorted(self.prices.items())}}


def parse_prices(content: bytes, source: str) -> PriceTable:
    text = text_of(content, source)
    try:
        return _parse_prices(text, source)
    except InputError as error:
        raise locate(error, text).located(source=source) from None


def _parse_prices(text: str, source: str) -> PriceTable:
    raw = loads_strict(text)
    try:
        parsed = _PricesIn.model_validate(raw)
    except ValidationError as error:
        raise from_pydantic(error, _PricesIn).located(source=source) from None
    for asset, price in parsed.prices.items():
        if not ASSET_CODE.fullmatch(asset):
            raise InputError(f"{shown(asset, 40)} is not an asset code (1 to 20 capital "
                             "letters, digits and . _ -)", source=source,
                             field=f"prices.{asset[:40]}")
        if price <= 0:
            raise InputError(f"the price of {asset} must be greater than zero", source=source,
                             field=f"prices.{asset}")
        if asset == parsed.quote and price != 1:
            # One unit of the quote is worth one unit of the quote: any other price is a file
            # that contradicts itself, and either reading of it would be a guess.
            raise InputError(f"{asset} is the quote currency: its price is 1, not "
                             f"{format(price, 'f')}", source=source, field=f"prices.{asset}")
    return PriceTable(parsed.quote, parsed.as_of.astimezone(UTC), dict(parsed.prices),
                      parsed.source)


def check_covers(table: PriceTable, needed: Iterable[str], known_assets: Iterable[str],
                 source: str) -> None:
    """Every asset the ledger holds has a price; every priced asset is one the ledger knows."""
    known = set(known_assets)
    if table.quote not in known:
        raise InputError(f"quote currency {table.quote} is not an asset of the ledger",
                         source=source, field="quote")
    for asset in sorted(table.prices):
        if asset not in known:
            raise InputError(f"{asset} is not an asset of the ledger", source=source,
                             field=f"prices.{asset}")
    missing = sorted(set(needed) - set(table.prices) - {table.quote})
    if missing:
        raise InputError(f"no price for {', '.join(missing)}, which the ledger holds at the "
                         "as-of time", source=source, field=f"prices.{missing[0]}")


def table_from_json(document: Mapping[str, Any]) -> PriceTable:
    """Back from `to_json` (a stored run's price table)."""
    return parse_prices(json.dumps({k: v for k, v in document.items() if v is not None}
                                   ).encode(), "stored price table")


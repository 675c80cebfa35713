"""The administrator's input files: creditors' elections and disputed claims, as JSON or CSV.

    elections  JSON {"elections": [{"creditor", "option", "payment"}, …]}
               CSV  header creditor,option,payment (any order)
    disputes   JSON {"disputes": [{"creditor", "asset", "claimed", "status", "allowed"}, …]}
               CSV  header creditor,asset,claimed,status[,allowed] (any order)

A file whose first character (after a byte-order mark and blanks) is `{` is read as JSON,
any other as CSV. Amounts are decimal text in the asset's units ("0.5"), never a JSON number:
a binary float is not the decimal it prints, and an integer beside decimal text is a file
whose author was not careful. What needs the ledger (is the creditor known, how many
decimals has the asset) is checked when the file is recorded; every error names the file,
the line and the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ledger import files
from ledger.errors import InputError, shown
from ledger.files import text_of
from ledger.json_input import from_pydantic, kind_of, line_of, loads_strict, locate
from ledger.model import ASSET_CODE, CUSTOMER_ID
from ledger.money import MAX_AMOUNT_CHARS, PLAIN_DECIMAL

MAX_LINES = 1_000_000
ELECTION_COLUMNS = ("creditor", "option", "payment")
DISPUTE_COLUMNS = ("creditor", "asset", "claimed", "status", "allowed")
DISPUTE_REQUIRED = ("creditor", "asset", "claimed", "status")


def decimal_field(value: Any, example: str, *, positive: bool) -> str:
    """The one check of a decimal written in an administrator's file (an amount, a share):
    text in quotes, plain digits with at most one point, not negative, above zero when
    `positive`. Its decimals are checked against the asset's scale when the ledger's assets
    are known."""
    if isinstance(value, bool) or not isinstance(value, str):
        given = f"the number {value} (write it in quotes: \"{value}\"; a JSON number is " \
            "refused: a float is not the decimal it prints)" \
            if isinstance(value, (int, float)) else kind_of(value)
        raise ValueError(f"must be a decimal number as text, such as \"{example}\", not {given}")
    if value.startswith("-") and PLAIN_DECIMAL.fullmatch(value[1:]):
        raise ValueError(f"must not be negative, not {value}")
    if len(value) > MAX_AMOUNT_CHARS or not PLAIN_DECIMAL.fullmatch(value):
        raise ValueError(f"{shown(value, 40)} is not a plain decimal number such as "
                         f"\"{example}\" (digits and at most one point; no sign, exponent, "
                         "spaces or separators)")
    if positive and Decimal(value) == 0:
        raise ValueError(f"must be greater than zero, not {value}")
    return value


def amount_text(value: Any) -> str:
    """An amount in a file of elections or disputes: decimal text above zero."""
    return decimal_field(value, "0.5", positive=True)


Amount = Annotated[str, BeforeValidator(amount_text)]
Creditor = Annotated[str, Field(pattern=CUSTOMER_ID.pattern)]


class _ElectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    creditor: Creditor
    option: Literal["early", "final"]
    payment: Literal["crypto", "fiat"]


class _ElectionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    elections: Annotated[list[_ElectionIn], Field(min_length=1, max_length=MAX_LINES)]


class _DisputeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    creditor: Creditor
    asset: Annotated[str, Field(pattern=ASSET_CODE.pattern)]
    claimed: Amount
    status: Literal["open", "allowed", "rejected"]
    allowed: Amount | None = None


class _DisputesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disputes: Annotated[list[_DisputeIn], Field(min_length=1, max_length=MAX_LINES)]


@dataclass(frozen=True)
class ElectionLine:
    where: str  # "elections[3]" in JSON, "" in CSV
    line: int | None  # the CSV line; a JSON line is found only for an error
    creditor: str
    option: str
    payment: str


@dataclass(frozen=True)
class DisputeLine:
    where: str
    line: int | None
    creditor: str
    asset: str
    claimed: str  # decimal text in the asset's units
    status: str
    allowed: str | None


Item = TypeVar("Item", ElectionLine, DisputeLine)


@dataclass(frozen=True)
class InputFile(Generic[Item]):
    source: str
    text: str
    items: tuple[Item, ...]

    def error(self, item: ElectionLine | DisputeLine, field: str, reason: str) -> InputError:
        """An error about one field of one item, with the file and the line named."""
        path = f"{item.where}.{field}" if item.where else field
        line = item.line if item.line is not None else line_of(self.text, path)
        return InputError(reason, source=self.source, line=line, field=path)


def parse_elections(content: bytes, source: str) -> InputFile[ElectionLine]:
    text = text_of(content, source)
    rows = _rows(text, source, "elections", _ElectionsIn, _ElectionIn, ELECTION_COLUMNS,
                 ELECTION_COLUMNS)
    items = tuple(ElectionLine(where, line, row.creditor, row.option, row.payment)
                  for where, line, row in rows)
    parsed = InputFile(source, text, items)
    seen: set[str] = set()
    for item in items:
        if item.creditor in seen:
            raise parsed.error(item, "creditor", f"creditor {shown(item.creditor)} appears twice "
                                                 "in this file; a creditor elects once")
        seen.add(item.creditor)
    return parsed


def parse_disputes(content: bytes, source: str) -> InputFile[DisputeLine]:
    text = text_of(content, source)
    rows = _rows(text, source, "disputes", _DisputesIn, _DisputeIn, DISPUTE_COLUMNS,
                 DISPUTE_REQUIRED)
    items = tuple(DisputeLine(where, line, row.creditor, row.asset, row.claimed, row.status,
                              row.allowed) for where, line, row in rows)
    parsed = InputFile(source, text, items)
    seen: set[tuple[str, str]] = set()
    for item in items:
        if (item.creditor, item.asset) in seen:
            raise parsed.error(item, "creditor", f"the dispute of {shown(item.creditor)} in "
                                                 f"{item.asset} appears twice in this file")
        seen.add((item.creditor, item.asset))
        _check_ruling(parsed, item)
    return parsed


def _check_ruling(parsed: InputFile[DisputeLine], item: DisputeLine) -> None:
    if item.status == "allowed" and item.allowed is None:
        raise parsed.error(item, "allowed", "an allowed dispute gives the amount allowed "
                                            "(all of the claimed amount, or part of it)")
    if item.status != "allowed" and item.allowed is not None:
        raise parsed.error(item, "allowed", f"only an allowed dispute has an allowed amount, "
                                            f"and this one is {item.status}")
    if item.allowed is not None and Decimal(item.allowed) > Decimal(item.claimed):
        raise parsed.error(item, "allowed", f"{item.allowed} allowed is more than the "
                                            f"{item.claimed} claimed (too much)")


Row = TypeVar("Row", _ElectionIn, _DisputeIn)


def _rows(text: str, source: str, name: str, document: type[BaseModel], model: type[Row],
          columns: Sequence[str], required: Sequence[str]) -> list[tuple[str, int | None, Row]]:
    if text.lstrip().startswith("{"):
        try:
            try:
                parsed = document.model_validate(loads_strict(text))
            except ValidationError as error:
                raise from_pydantic(error, document).located(source=source) from None
        except InputError as error:
            raise locate(error, text).located(source=source) from None
        items: list[Row] = getattr(parsed, name)
        return [(f"{name}[{index}]", None, row) for index, row in enumerate(items)]
    return [("", line, _csv_row(model, cells, source, line))
            for line, cells in files.csv_table(text, source, what=name, columns=columns,
                                               required=required, max_rows=MAX_LINES)]


def _csv_row(model: type[Row], cells: Mapping[str, str], source: str, line: int) -> Row:
    try:
        return model.model_validate({key: value for key, value in cells.items()
                                     if not (key == "allowed" and value == "")})
    except ValidationError as error:
        raise from_pydantic(error, model).located(source=source, line=line) from None

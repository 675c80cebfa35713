"""Custodian or manual snapshots (CONTRACT.md): JSON {"observations": [...]} or CSV with the
columns account,as_of,amount,source, read by its header (in any order)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ledger.errors import InputError, shown
from ledger.files import csv_table, text_of, without_bom
from ledger.json_input import field_path, from_pydantic, iso_text, loads_strict, locate
from ledger.money import PLAIN_DECIMAL
from reconcile.evidence import Observation

CSV_COLUMNS = ["account", "as_of", "amount", "source"]
MAX_OBSERVATIONS = 1_000_000
# A header cell: a plain column name (any case), so a statement's first line is never one.
_HEADER_CELL = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]{0,39}", re.ASCII)


class _ObservationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: Annotated[str, Field(min_length=1, max_length=200)]
    as_of: Annotated[AwareDatetime, BeforeValidator(iso_text)]
    amount: Annotated[str, Field(min_length=1, max_length=100)]
    source: Annotated[str, Field(min_length=1, max_length=200)]


class _FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    observations: Annotated[list[dict[str, Any]], Field(max_length=MAX_OBSERVATIONS)]


def looks_like_json(content: bytes) -> bool:
    body = without_bom(content)
    return body.lstrip()[:1] == b"{" and b'"observations"' in body[:100_000]


def looks_like_csv(content: bytes) -> bool:
    """A header naming at least two of the columns, in any order: a header with a wrong or a
    missing column is still recognised, so that parse_csv can say which column is wrong."""
    first = without_bom(content).split(b"\n", 1)[0].strip().decode("utf-8", "replace")
    cells = [cell.strip() for cell in first.split(",")]
    return (all(_HEADER_CELL.fullmatch(cell) for cell in cells)
            and len({cell.lower() for cell in cells} & set(CSV_COLUMNS)) >= 2)


def parse_json(content: bytes, source: str) -> list[Observation]:
    text = text_of(content, source)
    try:
        raw = loads_strict(text)
        try:
            items = _FileIn.model_validate(raw).observations
        except ValidationError as error:
            raise from_pydantic(error, _FileIn) from None
        if not items:
            # As for a CSV with a header only: a snapshot of nothing is a broken export, and
            # read as "no balances seen" it would hide every account it should have listed.
            raise InputError("no observations in the file", field="observations")
        return [_observation(item, source, f"observations[{n}]", None)
                for n, item in enumerate(items)]
    except InputError as error:
        raise locate(error, text).located(source=source) from None


def parse_csv(content: bytes, source: str) -> list[Observation]:
    """CSV read by its header: the columns account, as_of, amount, source in any order."""
    return [_observation(cells, source, "", line)
            for line, cells in csv_table(text_of(content, source), source, what="observations",
                                         columns=CSV_COLUMNS, max_rows=MAX_OBSERVATIONS)]


def _observation(item: Any, source: str, where: str, line: int | None) -> Observation:
    try:
        parsed = _ObservationIn.model_validate(item)
    except ValidationError as error:
        problem = from_pydantic(error, _ObservationIn)
        path = field_path([part for part in (where, problem.field) if part])
        raise InputError(problem.reason, source=source, line=line, field=path or None) from None
    try:
        amount = _amount(parsed.amount)
    except InputError as error:
        raise error.located(source=source, line=line,
                            field=f"{where}.amount" if where else "amount") from None
    return Observation(
        source=source, kind="observation", account={"account": parsed.account}, currency="",
        amount=amount, as_of=parsed.as_of, facts={"reported_by": parsed.source})


def _amount(text: str) -> Decimal:
    """A balance as plain ASCII digits with an optional fraction. No exponent: "1E+999999999"
    is one short string and a number no one can hold in minor units. No sign: what a custodian
    holds for us is never below zero, so "-3" is a broken export, not a balance. No spaces,
    "_" or non-ASCII digits, which Decimal() would quietly read."""
    if text.startswith("-") and PLAIN_DECIMAL.fullmatch(text[1:]):
        raise InputError(f"{text} is negative: a custodian balance is never below zero")
    if not PLAIN_DECIMAL.fullmatch(text):
        raise InputError(f"{shown(text, 40)} is not a plain decimal number such as "
                         "\"12.5\" (digits and at most one point; no sign, exponent, spaces "
                         "or separators)")
    return Decimal(text)

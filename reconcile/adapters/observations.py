"""Custodian or manual snapshots (CONTRACT.md): JSON {"observations": [...]} or CSV with the
columns account,as_of,amount,source, read by its header (in any order)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ledger.errors import InputError, shown
from ledger.files import text_of, without_bom
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
    reader = csv.reader(io.StringIO(text_of(content, source), newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise InputError("empty file: the first line names the columns "
                             f"{', '.join(CSV_COLUMNS)}", source=source)
        columns = _columns(header, source)
        observations = []
        for row in reader:
            line = reader.line_num
            if not row:
                continue  # a blank line
            if len(row) != len(columns):
                raise InputError(f"this row has {len(row)} values, the header names "
                                 f"{len(columns)} columns", source=source, line=line)
            observations.append(_observation(dict(zip(columns, row, strict=True)), source, "",
                                             line))
            if len(observations) > MAX_OBSERVATIONS:
                raise InputError(f"more than {MAX_OBSERVATIONS} rows", source=source, line=line)
    except csv.Error as error:
        problem = ("a value is longer than the CSV reader's limit" if "larger" in str(error)
                   else "a quoted value is not closed, or a line break is inside a value")
        raise InputError(f"malformed CSV: {problem}", source=source,
                         line=reader.line_num) from None
    if not observations:
        raise InputError("no observations in the file", source=source)
    return observations


def _columns(header: Sequence[str], source: str) -> list[str]:
    names = [cell.strip().lower() for cell in header]
    expected = f"the columns are {', '.join(CSV_COLUMNS)}, in any order"
    for name in names:
        if names.count(name) > 1:
            raise InputError(f"column {name} appears twice in the header", source=source, line=1)
    unknown = [name for name in names if name not in CSV_COLUMNS]
    if unknown:
        raise InputError(f"unknown column{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(shown(name) for name in unknown)}: {expected}",
                         source=source, line=1)
    missing = [name for name in CSV_COLUMNS if name not in names]
    if missing:
        raise InputError(f"missing column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)}: {expected}", source=source, line=1)
    return names


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

"""Custodian or manual snapshots (CONTRACT.md): JSON {"observations": [...]} or CSV with the
columns account,as_of,amount,source."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from ledger.entries import field_path
from ledger.errors import InputError
from reconcile.evidence import Observation

CSV_COLUMNS = ["account", "as_of", "amount", "source"]
MAX_OBSERVATIONS = 1_000_000


class _ObservationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: Annotated[str, Field(min_length=1, max_length=200)]
    as_of: AwareDatetime
    amount: Annotated[str, Field(min_length=1, max_length=100)]
    source: Annotated[str, Field(min_length=1, max_length=200)]


class _FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    observations: Annotated[list[dict[str, Any]], Field(max_length=MAX_OBSERVATIONS)]


def looks_like_json(content: bytes) -> bool:
    return content.lstrip()[:1] == b"{" and b'"observations"' in content[:100_000]


def looks_like_csv(content: bytes) -> bool:
    first = content.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].strip().decode("utf-8", "replace")
    return [c.strip() for c in first.split(",")] == CSV_COLUMNS


def parse_json(content: bytes, source: str) -> list[Observation]:
    try:
        raw = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"malformed JSON: {error}", source=source) from None
    try:
        items = _FileIn.model_validate(raw).observations
    except ValidationError as error:
        first = error.errors()[0]
        raise InputError(first["msg"], source=source, field=field_path(first["loc"])) from None
    return [_observation(item, source, f"observations[{n}]", None) for n, item in enumerate(items)]


def parse_csv(content: bytes, source: str) -> list[Observation]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text (byte {error.start})", source=source) from None
    reader = csv.DictReader(io.StringIO(text))
    observations = []
    for row in reader:
        line = reader.line_num
        if None in row or any(value is None for value in row.values()):
            raise InputError("wrong number of columns", source=source, line=line)
        observations.append(_observation(row, source, "", line))
        if len(observations) > MAX_OBSERVATIONS:
            raise InputError(f"more than {MAX_OBSERVATIONS} rows", source=source, line=line)
    if not observations:
        raise InputError("no observations in the file", source=source)
    return observations


def _observation(item: Any, source: str, where: str, line: int | None) -> Observation:
    try:
        parsed = _ObservationIn.model_validate(item)
    except ValidationError as error:
        first = error.errors()[0]
        path = field_path([*([where] if where else []), *first["loc"]])
        raise InputError(first["msg"], source=source, line=line, field=path) from None
    try:
        amount = Decimal(parsed.amount.strip())
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite():
        raise InputError(f"amount {parsed.amount!r} is not a decimal number", source=source,
                         line=line, field=f"{where}.amount" if where else "amount")
    return Observation(
        source=source, kind="observation", account={"account": parsed.account}, currency="",
        amount=amount, as_of=parsed.as_of, facts={"reported_by": parsed.source})

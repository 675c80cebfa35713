"""Reading entries from JSON Lines into drafts, and the canonical content hash of an entry."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ledger.errors import InputError
from ledger.json_input import loads_strict
from ledger.model import ACCOUNT_CODE, Entry, EntryType

# Limits on everything: a hit limit is a clear error, never a hang or an out-of-memory.
MAX_LINE_BYTES = 1_000_000
MAX_LINES_PER_ENTRY = 10_000
MAX_ENTRIES_PER_BATCH = 2_000_000
MAX_MEMO_CHARS = 2_000
KEY_PATTERN = r"^[\x21-\x7e]{1,128}$"


class _LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    debit: Annotated[str, Field(pattern=ACCOUNT_CODE.pattern)]
    credit: Annotated[str, Field(pattern=ACCOUNT_CODE.pattern)]
    # Checked by ledger.money.parse_amount once the asset (and so its scale) is known.
    amount: Any


class _EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, Field(pattern=KEY_PATTERN)]
    type: EntryType
    effective_at: Annotated[AwareDatetime, BeforeValidator(iso_text)]
    memo: Annotated[str | None, Field(max_length=MAX_MEMO_CHARS)] = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    lines: Annotated[list[_LineIn], Field(max_length=MAX_LINES_PER_ENTRY)] = Field(
        default_factory=list
    )
    reverses: Annotated[str | None, Field(pattern=KEY_PATTERN)] = None


@dataclass(frozen=True)
class DraftLine:
    debit: str
    credit: str
    amount: Any


@dataclass(frozen=True)
class Draft:
    """An entry as read from a file: accounts not yet resolved, amounts not yet scaled."""

    line_no: int
    key: str
    type: EntryType
    effective_at: datetime
    memo: str | None
    metadata: dict[str, Any]
    lines: tuple[DraftLine, ...]
    reverses: str | None


def field_path(loc: Iterable[int | str]) -> str:
    """("lines", 0, "amount") -> "lines[0].amount"."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def from_pydantic(error: ValidationError) -> InputError:
    first = error.errors()[0]
    # A validator's ValueError reads "Value error, <message>": the user needs the message only.
    return InputError(first["msg"].removeprefix("Value error, "),
                      field=field_path(first["loc"]) or None)


def iso_text(value: Any) -> Any:
    """Times are ISO 8601 text with an offset (CONTRACT.md), not Unix numbers; years within
    1900-2999, so that no arithmetic on them can overflow."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time with its offset, as text")
    if not re.match(r"^(19|2[0-9])[0-9]{2}-", value):
        raise ValueError(f"{value[:40]!r}: the year must be between 1900 and 2999")
    return value


def parse_draft(raw: dict[str, Any] | Any, line_no: int) -> Draft:
    if not isinstance(raw, dict):
        raise InputError("an entry must be a JSON object")
    try:
        parsed = _EntryIn.model_validate(raw)
    except ValidationError as error:
        raise from_pydantic(error) from None
    if parsed.type is EntryType.REVERSAL:
        if parsed.reverses is None:
            raise InputError("a reversal names the entry it reverses", field="reverses")
        if parsed.lines:
            raise InputError("a reversal carries no lines: the ledger writes the mirror", field="lines")
    else:
        if parsed.reverses is not None:
            raise InputError("only a reversal entry may carry 'reverses'", field="reverses")
        if not parsed.lines:
            raise InputError("an entry needs at least one line", field="lines")
    return Draft(
        line_no=line_no,
        key=parsed.key,
        type=parsed.type,
        effective_at=parsed.effective_at.astimezone(UTC),
        memo=parsed.memo,
        metadata=parsed.metadata,
        lines=tuple(DraftLine(ln.debit, ln.credit, ln.amount) for ln in parsed.lines),
        reverses=parsed.reverses,
    )


def read_drafts(lines: Iterable[bytes | str], source: str) -> Iterator[Draft]:
    """Parse JSON Lines; blank lines are skipped; every error names the source and line."""
    count = 0
    for line_no, raw_line in enumerate(lines, start=1):
        try:
            text = raw_line.decode("utf-8") if isinstance(raw_line, bytes) else raw_line
        except UnicodeDecodeError as error:
            raise InputError(f"not UTF-8 text (byte {error.start} of the line)",
                             source=source, line=line_no) from None
        if len(text) > MAX_LINE_BYTES:
            raise InputError(f"line is longer than {MAX_LINE_BYTES} bytes", source=source, line=line_no)
        if not text.strip():
            continue
        count += 1
        if count > MAX_ENTRIES_PER_BATCH:
            raise InputError(
                f"more than {MAX_ENTRIES_PER_BATCH} entries in one batch; split the file",
                source=source,
                line=line_no,
            )
        try:
            raw = loads_strict(text)
        except InputError as error:
            raise error.located(source=source, line=line_no) from None
        try:
            yield parse_draft(raw, line_no)
        except InputError as error:
            raise error.located(source=source, line=line_no) from None


def content_hash(entry: Entry) -> str:
    """SHA-256 of the entry's canonical content: same meaning, same hash ("0.5" == "0.50")."""
    canonical = {
        "type": entry.type.value,
        "effective_at": entry.effective_at.astimezone(UTC).isoformat(),
        "memo": entry.memo,
        "metadata": entry.metadata,
        "reverses": entry.reverses,
        "lines": [] if entry.reverses else [
            [line.debit, line.credit, str(line.amount_minor)] for line in entry.lines
        ],
    }
    data = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()

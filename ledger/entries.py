"""Reading entries from JSON Lines into drafts, and the canonical content hash of an entry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ledger.errors import ErrorLog, InputError
from ledger.files import MAX_ENTRY_LINE_BYTES
from ledger.json_input import field_path as field_path
from ledger.json_input import from_pydantic as from_pydantic
from ledger.json_input import iso_text as iso_text
from ledger.json_input import loads_strict, meaning
from ledger.model import ACCOUNT_CODE, Entry, EntryType

# Limits on everything: a hit limit is a clear error, never a hang or an out-of-memory.
MAX_LINE_BYTES = MAX_ENTRY_LINE_BYTES
MAX_LINES_PER_ENTRY = 10_000
MAX_ENTRIES_PER_BATCH = 2_000_000
MAX_MEMO_CHARS = 2_000
KEY_PATTERN = meaning(r"^[\x21-\x7e]{1,128}$",
                      "an entry key: 1 to 128 printable ASCII characters, without spaces")


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


def parse_draft(raw: dict[str, Any] | Any, line_no: int) -> Draft:
    if not isinstance(raw, dict):
        raise InputError("an entry must be a JSON object {…} on one line")
    try:
        parsed = _EntryIn.model_validate(raw)
    except ValidationError as error:
        raise from_pydantic(error, _EntryIn) from None
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
        # As written (offset kept), so that errors show the time the user wrote; the content
        # hash and storage convert to UTC.
        effective_at=parsed.effective_at,
        memo=parsed.memo,
        metadata=parsed.metadata,
        lines=tuple(DraftLine(ln.debit, ln.credit, ln.amount) for ln in parsed.lines),
        reverses=parsed.reverses,
    )


def read_drafts(
    lines: Iterable[bytes | str], source: str, errors: ErrorLog | None = None
) -> Iterator[Draft]:
    """Parse JSON Lines; blank lines are skipped; every error names the source and line.

    Without `errors`, the first bad line raises. With it (`post --check`), a bad line is
    logged and left out, and reading goes on with the next until the log is full.
    """
    count = 0
    for line_no, raw_line in enumerate(lines, start=1):
        if errors is not None and errors.full:
            return
        if _too_long(raw_line):
            _fail(InputError(f"the line is longer than {MAX_LINE_BYTES} bytes; an entry is one "
                             "line of at most that size"), source, line_no, errors)
            continue
        try:
            text = raw_line.decode("utf-8") if isinstance(raw_line, bytes) else raw_line
        except UnicodeDecodeError as error:
            _fail(InputError(f"not UTF-8 text (byte {error.start + 1} of the line); save the "
                             "file as UTF-8"), source, line_no, errors)
            continue
        if not text.strip():
            continue
        count += 1
        if count > MAX_ENTRIES_PER_BATCH:
            # Not one line's fault: the whole file is refused, in a check as in a post.
            raise InputError(
                f"more than {MAX_ENTRIES_PER_BATCH} entries in one batch; split the file",
                source=source,
                line=line_no,
            )
        try:
            yield parse_draft(loads_strict(text), line_no)
        except InputError as error:
            _fail(error, source, line_no, errors)


def _too_long(line: bytes | str) -> bool:
    """Over MAX_LINE_BYTES as the file holds it, in UTF-8 bytes (a line of Japanese text has
    three for each character), its line break not counted."""
    if isinstance(line, bytes):
        ending = 2 if line.endswith(b"\r\n") else 1 if line.endswith(b"\n") else 0
        return len(line) - ending > MAX_LINE_BYTES
    if len(line) * 4 <= MAX_LINE_BYTES:
        return False  # at most four bytes a character: no need to encode it to know
    return len(line.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES


def _fail(error: InputError, source: str, line_no: int, errors: ErrorLog | None) -> None:
    located = error.located(source=source, line=line_no)
    if errors is None:
        raise located from None
    errors.add(located)


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

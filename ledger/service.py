"""What each command does, between the file system and storage; the CLI only formats."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from dateutil.parser import isoparse
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import OperationalError

from ledger.chart import parse_chart
from ledger.entries import Draft, read_drafts
from ledger.errors import EnvironmentFailure, InputError
from ledger.storage.chart_store import ChartResult, load_chart
from ledger.storage.engine import make_engine, schema_is_current, upgrade
from ledger.storage.posting import PostResult, Progress, post_batch


def parse_instant(text: str, field: str) -> datetime:
    """An ISO 8601 time with its offset; 'now' for the current time. No guessing of zones."""
    if text == "now":
        return datetime.now(UTC)
    try:
        value = isoparse(text)
    except ValueError:
        raise InputError(f"{text!r} is not an ISO 8601 time", field=field) from None
    if value.tzinfo is None:
        raise InputError(f"{text!r} has no UTC offset (write e.g. 2025-11-25T00:00:00+09:00)",
                         field=field)
    if not 1900 <= value.year <= 2999:
        raise InputError(f"{text!r}: the year must be between 1900 and 2999", field=field)
    return value.astimezone(UTC)


def connect(url: str | None) -> Engine:
    """An engine on a reachable database whose schema is at head."""
    engine = make_engine(url)
    try:
        current = schema_is_current(engine)
    except OperationalError as error:
        raise EnvironmentFailure(f"database unreachable: {_first_line(error)}") from None
    if not current:
        with engine.connect() as connection:
            empty = not inspect(connection).has_table("entries")
        hint = "has no segledger schema" if empty else "has an older schema"
        raise InputError(f"the database {hint}; run `segledger init` first", field="--db")
    return engine


def init(url: str | None) -> Engine:
    engine = make_engine(url)
    try:
        upgrade(engine)
    except OperationalError as error:
        raise EnvironmentFailure(f"database unreachable: {_first_line(error)}") from None
    return engine


def _first_line(error: Exception) -> str:
    orig = getattr(error, "orig", error)
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def load_chart_file(engine: Engine, path: str) -> ChartResult:
    text = _read_text(path)
    return load_chart(engine, parse_chart(text, path), path)


def _read_text(path: str) -> str:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", source=path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text (byte {error.start})", source=path) from None


class _HashingLines:
    """Lines of a binary stream, hashed as they are read (the batch records the file's SHA-256)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.bytes_read = 0

    def __iter__(self) -> Iterator[bytes]:
        for line in self.stream:
            self.digest.update(line)
            self.bytes_read += len(line)
            yield line


def read_entry_file(path: str, progress: Progress | None = None) -> tuple[list[Draft], str]:
    """All drafts of a JSONL file (or '-' for stdin) and the file's SHA-256."""
    source = "<stdin>" if path == "-" else path
    try:
        stream: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", source=source) from None
    with stream:
        lines = _HashingLines(stream)
        total = Path(path).stat().st_size if path != "-" else 0
        drafts = []
        for draft in read_drafts(lines, source):
            drafts.append(draft)
            if progress and len(drafts) % 10_000 == 0:
                progress("read", lines.bytes_read, total)
    return drafts, lines.digest.hexdigest()


def post_file(
    engine: Engine, path: str, *, use_copy: bool | None = None, progress: Progress | None = None
) -> PostResult:
    drafts, sha256 = read_entry_file(path, progress)
    source = "<stdin>" if path == "-" else path
    if not drafts:
        raise InputError("no entries in the file", source=source)
    return post_batch(engine, drafts, source=source, sha256=sha256, use_copy=use_copy,
                      progress=progress)

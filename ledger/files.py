"""The one reader of user files: charts, entries, prices, rulebooks, registers, chain configs,
evidence. One size limit, UTF-8 with or without a byte-order mark, and errors a user can act on.

A file's bytes are kept as read (a run stores its evidence and that file's SHA-256 exactly as
given); the byte-order mark is dropped only where the bytes become text, by `text_of`.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from ledger.errors import InputError, shown

# One limit for every file read whole. Entry files are streamed instead: their limits are per
# line and per batch (ledger.entries), since a day's batch may be far larger than this.
MAX_FILE_BYTES = 50_000_000
# One line of an entry file, its line break not counted. A longer line is cut here, as it is
# read: a multi-gigabyte line without a line break is never held in memory.
MAX_ENTRY_LINE_BYTES = 1_000_000
# Room for the line break ("\r\n") after a line of the largest size.
_LINE_BREAK_BYTES = 2
# How much of an over-long line is read at a time while it is skipped (`post --check` goes on).
SKIP_CHUNK_BYTES = 1 << 20
BOM = codecs.BOM_UTF8
STDIN = "-"


def source_name(path: str) -> str:
    """How errors name a file: its path as given, or <stdin>."""
    return "<stdin>" if path == STDIN else path


def read_file(path: str) -> bytes:
    """The bytes of a user file ('-' reads stdin), refused beyond MAX_FILE_BYTES."""
    source = source_name(path)
    try:
        if path == STDIN:
            content = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        else:
            with open(path, "rb") as stream:
                # One byte over the limit is enough to know; a huge file is never read whole.
                content = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise unreadable(error, source) from None
    check_size(content, source)
    return content


def read_text(path: str) -> str:
    """A user file as text: see `read_file` and `text_of`."""
    return text_of(read_file(path), source_name(path))


def check_size(content: bytes, source: str) -> None:
    if len(content) > MAX_FILE_BYTES:
        raise InputError(f"the file is larger than the {MAX_FILE_BYTES // 1_000_000} MB limit "
                         "for one file", source=source)


def without_bom(content: bytes) -> bytes:
    """The bytes without a leading UTF-8 byte-order mark (some Windows tools write one)."""
    return content[len(BOM):] if content.startswith(BOM) else content


def text_of(content: bytes, source: str) -> str:
    """UTF-8 text of a file's bytes, a leading byte-order mark dropped; within the limit."""
    check_size(content, source)
    body = without_bom(content)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        line = body[:error.start].count(b"\n") + 1
        column = error.start - (body.rfind(b"\n", 0, error.start) + 1) + 1
        raise InputError(f"not UTF-8 text (byte {column} of the line); save the file as UTF-8",
                         source=source, line=line) from None


def csv_table(text: str, source: str, *, what: str, columns: Sequence[str],
              required: Sequence[str] | None = None,
              max_rows: int) -> list[tuple[int, dict[str, str]]]:
    """The rows of a CSV file read by its header, each as (line number, column → cell).

    The header names `columns` in any order (those not in `required` may be left out; all
    are required by default). Blank lines are skipped; a row with another number of values,
    a malformed quote, more than `max_rows` rows, or no row at all is refused, naming the line.
    """
    needed = list(columns) if required is None else list(required)
    reader = csv.reader(io.StringIO(text, newline=""))
    found: list[tuple[int, dict[str, str]]] = []
    try:
        header = next(reader, None)
        if header is None:
            raise InputError(f"empty file: the first line names the columns "
                             f"{', '.join(needed)}", source=source)
        names = _csv_header(header, source, columns, needed)
        for cells in reader:
            if not cells or cells == [""]:
                continue  # a blank line
            line = reader.line_num
            if len(cells) != len(names):
                raise InputError(f"this row has {len(cells)} values, the header names "
                                 f"{len(names)} columns", source=source, line=line)
            found.append((line, dict(zip(names, cells, strict=True))))
            if len(found) > max_rows:
                raise InputError(f"more than {max_rows:,} rows", source=source, line=line)
    except csv.Error as error:
        problem = ("a value is longer than the CSV reader's limit" if "larger" in str(error)
                   else "a quoted value is not closed, or a line break is inside a value")
        raise InputError(f"malformed CSV: {problem}", source=source,
                         line=reader.line_num) from None
    if not found:
        raise InputError(f"no {what} in the file", source=source)
    return found


def _csv_header(header: Sequence[str], source: str, columns: Sequence[str],
                required: Sequence[str]) -> list[str]:
    names = [cell.strip().lower() for cell in header]
    optional = [column for column in columns if column not in required]
    expected = (f"the columns are {', '.join(columns)}, in any order"
                + (f" ({', '.join(optional)} may be left out)" if optional else ""))
    for name in names:
        if names.count(name) > 1:
            raise InputError(f"column {name} appears twice in the header", source=source, line=1)
    unknown = [name for name in names if name not in columns]
    if unknown:
        raise InputError(f"unknown column{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(shown(name) for name in unknown)}: {expected}",
                         source=source, line=1)
    missing = [name for name in required if name not in names]
    if missing:
        raise InputError(f"missing column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)}: {expected}", source=source, line=1)
    return names


def unreadable(error: OSError, source: str) -> InputError:
    """An OSError as a user reads it: what is wrong with the path, not errno's name."""
    if isinstance(error, FileNotFoundError):
        return InputError("cannot read: no such file", source=source)
    if isinstance(error, IsADirectoryError):
        return InputError("cannot read: a directory, not a file", source=source)
    if isinstance(error, PermissionError):
        return InputError("cannot read: permission denied", source=source)
    return InputError(f"cannot read: {error.strerror or 'input/output error'}", source=source)


class EntryLines:
    """The lines of an entry file ('-' for stdin) as bytes, streamed; the byte-order mark of
    the first line dropped; the SHA-256 of the bytes as read (what the batch records).

    A line longer than MAX_ENTRY_LINE_BYTES is yielded cut, a few bytes over the limit and
    without its line break: enough for the reader to refuse it. The rest of it is skipped only
    if the reader asks for the next line, a chunk at a time."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.source = source_name(path)
        self.digest = hashlib.sha256()
        self.bytes_read = 0
        try:
            if path == STDIN:
                self.stream: BinaryIO = sys.stdin.buffer
                self.total_bytes = 0
            else:
                if Path(path).is_dir():
                    raise IsADirectoryError(21, "Is a directory", path)
                self.stream = open(path, "rb")  # noqa: SIM115 - closed by close()
                self.total_bytes = Path(path).stat().st_size
        except OSError as error:
            raise unreadable(error, self.source) from None

    def __iter__(self) -> Iterator[bytes]:
        first = True
        try:
            # The byte-order mark is not part of the first line: room for it too.
            while line := self._read_line(MAX_ENTRY_LINE_BYTES + _LINE_BREAK_BYTES
                                          + (len(BOM) if first else 0)):
                cut = not line.endswith(b"\n") and len(line) > MAX_ENTRY_LINE_BYTES
                yield without_bom(line) if first else line
                first = False
                while cut and (rest := self._read_line(SKIP_CHUNK_BYTES)):
                    cut = not rest.endswith(b"\n")
        except OSError as error:
            raise unreadable(error, self.source) from None

    def _read_line(self, limit: int) -> bytes:
        line = self.stream.readline(limit)
        self.digest.update(line)
        self.bytes_read += len(line)
        return line

    @property
    def sha256(self) -> str:
        return self.digest.hexdigest()

    def close(self) -> None:
        if self.path != STDIN:
            self.stream.close()

    def __enter__(self) -> EntryLines:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

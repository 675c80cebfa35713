"""Formatting for the terminal, JSON and CSV; the one place that decides how a value is shown.

- JSON: one document on stdout, amounts as decimal strings, times ISO 8601 with offset.
- CSV: a header and flat cells; a nested value (a dict or a list) is a bug in the caller,
  which must spread it over columns, because a CSV cell holding raw JSON is no use in a
  spreadsheet.
- Table: fits the terminal's width, never truncates a cell (identifiers such as run ids and
  entry keys fold onto the next line instead), amounts right-aligned with thousands
  separators, times in the zone the user picked with `--tz`.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.parser import isoparse
from rich.console import Console
from rich.table import Table

from ledger.errors import InputError

# Width for tables written to a file or a pipe, where no terminal sets one: wide enough that
# a row of identifiers and amounts stays on one line, so that `grep` finds it whole.
PIPE_WIDTH = 200


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


Kind = Literal["text", "amount", "time", "count"]


@dataclass(frozen=True)
class Column:
    """`name` is the row key and the CSV/JSON name; `kind` says how a table shows it."""

    name: str
    kind: Kind = "text"
    header: str | None = None


_zone: tzinfo = UTC


def set_zone(name: str) -> None:
    """The zone times are shown in (`--tz`); UTC unless the user picks another."""
    global _zone
    if name.upper() == "UTC":
        _zone = UTC
        return
    try:
        _zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Asia" is a folder of zones
        raise InputError(f"{name} is not a time zone name such as Asia/Tokyo or UTC",
                         field="--tz") from None


def show_time(value: datetime | str | None) -> str:
    """An instant in the display zone, ISO 8601 with its offset; text that is not a time
    (a note such as "n/a") is shown as it is."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(_zone).isoformat()
    try:
        parsed = isoparse(value)
    except ValueError:
        return value
    return parsed.astimezone(_zone).isoformat() if parsed.tzinfo else value


def group_digits(amount: str) -> str:
    """"-1234567.50" -> "-1,234,567.50": thousands separators for reading, tables only."""
    if not amount:
        return amount
    sign = "-" if amount.startswith("-") else ""
    whole, dot, fraction = amount.removeprefix("-").partition(".")
    if not (whole.isascii() and whole.isdigit()):
        return amount  # not a plain number ("n/a", a note): shown as it is
    groups: list[str] = []
    while len(whole) > 3:
        whole, groups = whole[:-3], [whole[-3:], *groups]
    return sign + ",".join([whole, *groups]) + dot + fraction


def line(text: str) -> None:
    """One line of prose on stdout, exactly as given (no markup, no highlighting)."""
    console().print(text, markup=False, highlight=False)


def write_out(out: Path, write: Callable[[Path], None]) -> None:
    """The one writer of `--out FILE`, as `reconcile export --out` writes its directory: the
    file must not exist (an existing one is refused, never overwritten); `write` fills a file
    beside it, which is moved into place only once complete, so a failure leaves nothing.
    The move cannot replace a file created in the meantime: it is a hard link, which refuses
    an existing name, then the removal of the partial file."""
    check_new(out)
    partial = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        write(partial)
        os.link(partial, out)
    except FileExistsError:
        raise InputError(f"{out} already exists; choose a new file", field="--out") from None
    except OSError as error:
        if error.errno in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP) \
                and partial.exists():
            _rename_new(partial, out)  # a file system without hard links
        else:
            raise InputError(f"cannot write {out}: {error.strerror}", field="--out") from None
    finally:
        if partial.exists():
            partial.unlink()


def check_new(out: Path | None) -> None:
    """Refuse an existing --out: called first by a command that records something, so that
    a refused --out leaves nothing written."""
    if out is not None and os.path.lexists(out):
        raise InputError(f"{out} already exists; choose a new file", field="--out")


def _rename_new(partial: Path, out: Path) -> None:
    check_new(out)
    try:
        os.rename(partial, out)
    except OSError as error:
        raise InputError(f"cannot write {out}: {error.strerror}", field="--out") from None


def print_out(out: Path, write: Callable[[], None]) -> None:
    """`write_out` for output that `write` prints to stdout (UTF-8 text)."""
    def into(path: Path) -> None:
        with path.open("w", encoding="utf-8", newline="") as handle, redirect_stdout(handle):
            write()
    write_out(out, into)


def console(stderr: bool = False) -> Console:
    """The terminal's width on a terminal; a fixed wide one (or $COLUMNS) elsewhere."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream)
    width = os.environ.get("COLUMNS", "")
    return Console(file=stream, width=int(width) if width.isdigit() else PIPE_WIDTH)


def emit(fmt: Format, title: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]],
         document: Any = None, *, totals: Sequence[dict[str, Any]] = ()) -> None:
    """One JSON document (`document`, else the rows), a CSV of the rows, or a table of the
    rows followed by its total rows."""
    if fmt is Format.JSON:
        print_json(rows if document is None else document)
    elif fmt is Format.CSV:
        write_csv(columns, rows)
    else:
        print_table(title, columns, rows, totals=totals)


def print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False, default=_json_value)
    sys.stdout.write("\n")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return show_time(value)
    raise TypeError(f"{type(value).__name__} has no JSON form")


def write_csv(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([column.name for column in columns])
    for row in rows:
        writer.writerow([_csv_cell(column, row.get(column.name)) for column in columns])


def _csv_cell(column: Column, value: Any) -> str:
    assert not isinstance(value, (dict, list, tuple)), f"nested value in CSV column {column.name}"
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if column.kind == "time":
        return show_time(value)
    return str(value)


def print_table(title: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]], *,
                totals: Sequence[dict[str, Any]] = (), out: Console | None = None) -> None:
    table = Table(title=title or None, title_justify="left")
    for column in columns:
        numeric = column.kind in ("amount", "count")
        table.add_column(column.header or column.name, justify="right" if numeric else "left",
                         overflow="fold")
    for number, row in enumerate(rows, start=1):
        # A rule under the last row sets the totals apart.
        table.add_row(*(table_cell(column, row.get(column.name)) for column in columns),
                      end_section=bool(totals) and number == len(rows))
    for row in totals:
        table.add_row(*(table_cell(column, row.get(column.name)) for column in columns),
                      style="bold")
    (out or console()).print(table)


def table_cell(column: Column, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if column.kind == "time":
        return show_time(value)
    if column.kind == "amount":
        return group_digits(str(value))
    if column.kind == "count" and isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{key} {table_cell(column, item)}" for key, item in value.items())
    return str(value)

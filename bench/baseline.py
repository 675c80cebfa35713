"""The floor under every posting figure: a raw COPY of the same posting rows into a table
without an index, a key, a constraint or a trigger, (a) from Python through psycopg's
`cursor.copy` and `write_row`, as segledger's COPY path writes, and (b) through `psql \\copy`
from a file. Both commit (and so wait for the WAL flush), as a post does.

The rows are those the ledger writes for the batch: (entry_id, line_no, account_id, asset,
amount_minor, effective_at), two a line, entry and account ids numbered in order of first use.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.chart import SPECS, chart
from ledger.money import parse_amount

TABLE = "bench_raw_postings"
COLUMNS = "entry_id, line_no, account_id, asset, amount_minor, effective_at"
# The ledger's own column types (schema.postings), and nothing else.
CREATE = (f"CREATE TABLE {TABLE} (entry_id bigint NOT NULL, line_no integer NOT NULL, "
          "account_id bigint NOT NULL, asset varchar(20) NOT NULL, "
          "amount_minor numeric(78, 0) NOT NULL, effective_at timestamptz NOT NULL)")

Row = tuple[int, int, int, str, int, datetime]


def posting_rows(path: str) -> Iterator[Row]:
    """The posting rows of an entry file, streamed."""
    ids = {account["code"]: n for n, account in enumerate(chart()["accounts"], start=1)}
    with open(path, encoding="utf-8") as lines:
        for entry_id, text in enumerate(lines, start=1):
            entry = json.loads(text)
            at = datetime.fromisoformat(entry["effective_at"])
            for line_no, line in enumerate(entry["lines"]):
                asset = line["debit"].rsplit(":", 1)[1]
                minor = parse_amount(line["amount"], SPECS[asset].scale)
                for code, sign in ((line["debit"], 1), (line["credit"], -1)):
                    account_id = ids.setdefault(code, len(ids) + 1)
                    yield entry_id, line_no, account_id, asset, sign * minor, at


def _fresh_table(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        connection.execute(CREATE)
        with contextlib.suppress(psycopg.Error):  # not a superuser: measure without
            connection.execute("CHECKPOINT")  # start from clean buffers, as each post does


def _count(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
        return int(row[0]) if row else 0


def copy_psycopg(url: str, rows: list[Row]) -> float:
    """Seconds for COPY … FROM STDIN with write_row of every row, and the commit."""
    _fresh_table(url)
    with psycopg.connect(url) as connection:
        started = time.perf_counter()
        with connection.cursor() as cursor, cursor.copy(
                f"COPY {TABLE} ({COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        connection.commit()
        seconds = time.perf_counter() - started
    assert _count(url) == len(rows)
    return seconds


def write_copy_file(path: Path, rows: list[Row]) -> Path:
    """The rows in COPY's text format, as psql sends them."""
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for entry_id, line_no, account_id, asset, minor, at in rows:
            out.write(f"{entry_id}\t{line_no}\t{account_id}\t{asset}\t{minor}\t{at.isoformat()}\n")
    return path


def copy_psql(url: str, psql: str, path: Path, expected: int) -> float:
    """Seconds for `psql \\copy … FROM FILE` (the program's start and connection included)."""
    _fresh_table(url)
    started = time.perf_counter()
    subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
                    f"\\copy {TABLE} ({COLUMNS}) FROM '{path}'"], check=True,
                   capture_output=True)
    seconds = time.perf_counter() - started
    assert _count(url) == expected
    return seconds


def measure(url: str, batch: str, psql: str | None, scratch: str) -> dict[str, Any]:
    """Both figures for the posting rows of `batch` (a worker step: see bench.worker)."""
    rows = list(posting_rows(batch))
    result: dict[str, Any] = {"rows": len(rows)}
    seconds = copy_psycopg(url, rows)
    result.update(psycopg_seconds=round(seconds, 3), psycopg_rows_per_s=round(len(rows) / seconds))
    if psql:
        path = write_copy_file(Path(scratch) / "raw-postings.tsv", rows)
        del rows
        seconds = copy_psql(url, psql, path, result["rows"])
        path.unlink()
        result.update(psql_seconds=round(seconds, 3), psql_rows_per_s=round(result["rows"] / seconds))
    else:
        result["psql"] = "no psql program found"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
    return result

"""Formatting for the terminal, JSON and CSV: amounts as decimal strings at the asset's scale."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def emit(fmt: Format, title: str, columns: Sequence[str], rows: Sequence[dict[str, Any]],
         document: Any = None) -> None:
    """One JSON document, a CSV with a header, or a table; nothing else on stdout."""
    if fmt is Format.JSON:
        json.dump(rows if document is None else document, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif fmt is Format.CSV:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        table = Table(title=title)
        for column in columns:
            numeric = column in NUMERIC_COLUMNS
            table.add_column(column, justify="right" if numeric else "left")
        for row in rows:
            table.add_row(*(_cell(row.get(column)) for column in columns))
        Console(width=max(100, Console().width)).print(table)


NUMERIC_COLUMNS = frozenset({"balance", "customer_custody", "customer_liabilities", "coverage"})


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)

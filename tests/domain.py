"""Building a domain-only book from the test chart (no database)."""

from __future__ import annotations

import json
from typing import Any

from ledger.batch import PostedEntry, PreparedBatch, prepare_batch
from ledger.book import Book
from ledger.chart import parse_chart
from ledger.entries import read_drafts
from tests.helpers import CHART, jsonl


def new_book() -> Book:
    chart = parse_chart(json.dumps(CHART), "chart.json")
    return Book(assets={a.code: a for a in chart.assets},
                accounts={a.code: a for a in chart.accounts})


def run(book: Book, entries: list[dict[str, Any]],
        posted: dict[str, PostedEntry] | None = None) -> PreparedBatch:
    drafts = list(read_drafts(jsonl(entries).splitlines(), "test.jsonl"))
    return prepare_batch(drafts, book, posted or {}, "test.jsonl")

"""Shared test data: a small exchange's chart, entry builders, and a database snapshot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text

from ledger.entries import read_drafts
from ledger.storage.posting import PostResult, post_batch
from ledger.storage.schema import accounts, balances, coverage

T0 = "2025-11-25T09:00:00+09:00"

CHART: dict[str, Any] = {
    "assets": [
        {"code": "JPY", "kind": "fiat", "scale": 0},
        {"code": "BTC", "kind": "crypto", "scale": 8, "chain": "bitcoin"},
    ],
    "accounts": [
        {"code": "custody:customer:trust:JPY", "asset": "JPY", "pool": "customer",
         "role": "custody", "location": "bank_trust", "external": {"bank_account": "1234567"}},
        {"code": "custody:company:operating:JPY", "asset": "JPY", "pool": "company",
         "role": "custody", "location": "bank"},
        {"code": "custody:customer:cold:BTC", "asset": "BTC", "pool": "customer",
         "role": "custody", "location": "cold_wallet", "external": {"addresses": ["bc1qcold"]}},
        {"code": "custody:customer:hot:BTC", "asset": "BTC", "pool": "customer",
         "role": "custody", "location": "hot_wallet"},
        {"code": "custody:company:guarantee:BTC", "asset": "BTC", "pool": "company",
         "role": "custody", "location": "cold_wallet", "purpose": "guarantee"},
        {"code": "equity:capital:JPY", "asset": "JPY", "pool": "company", "role": "equity"},
        {"code": "equity:capital:BTC", "asset": "BTC", "pool": "company", "role": "equity"},
        {"code": "revenue:fees:JPY", "asset": "JPY", "pool": "company", "role": "revenue"},
        {"code": "expense:rent:JPY", "asset": "JPY", "pool": "company", "role": "expense"},
        {"code": "loss:incident:BTC", "asset": "BTC", "pool": "company", "role": "loss"},
        {"code": "custody:company:reserve:JPY", "asset": "JPY", "pool": "company",
         "role": "custody", "location": "bank", "purpose": "reserve"},
        {"code": "reserve:liability:JPY", "asset": "JPY", "pool": "company", "role": "reserve"},
    ],
}


def entry(key: str, kind: str, *lines: tuple[str, str, str], at: str = T0,
          **extra: Any) -> dict[str, Any]:
    return {"key": key, "type": kind, "effective_at": at, **extra,
            "lines": [{"debit": d, "credit": c, "amount": a} for d, c, a in lines]}


THEFT = {"incident": "INC-1", "incident_kind": "theft"}


def deposit(key: str, customer: str, amount: str, asset: str = "JPY", at: str = T0) -> dict[str, Any]:
    custody = "custody:customer:trust:JPY" if asset == "JPY" else "custody:customer:hot:BTC"
    return entry(key, "deposit", (custody, f"customer:{customer}:{asset}", amount), at=at)


def jsonl(entries: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(item) + "\n" for item in entries)


def write_jsonl(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(jsonl(entries), "utf-8")
    return path


def post(engine: Engine, entries: list[dict[str, Any]], *, use_copy: bool | None = None,
         source: str = "test.jsonl") -> PostResult:
    drafts = list(read_drafts(jsonl(entries).splitlines(), source))
    return post_batch(engine, drafts, source=source, sha256="0" * 64, use_copy=use_copy)


def balance_map(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(accounts.c.code, balances.c.balance_minor)
            .join(balances, balances.c.account_id == accounts.c.id))
        return {row.code: row.balance_minor for row in rows}


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything a rejected batch must leave as it was."""
    with engine.connect() as connection:
        counts = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("assets", "accounts", "batches", "entries", "postings", "balances",
                          "breaches", "closed_periods", "incidents", "incident_links",
                          "insurance_policies")
        }
        covered = {row.asset: row.coverage_minor for row in connection.execute(select(coverage))}
    return {"counts": counts, "balances": balance_map(engine), "coverage": covered}


def cli(*args: str, stdin: str | None = None, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `segledger` command in a subprocess (`env` adds to the inherited environment)."""
    return subprocess.run([sys.executable, "-m", "segledger", *args], capture_output=True,
                          text=True, input=stdin, cwd=cwd, timeout=300,
                          env={**os.environ, **env} if env else None)

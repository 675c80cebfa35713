"""The results as a table a person reads, and as JSON (`--json PATH`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Lines = list[tuple[str, str]]


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _ratios(r: dict[str, Any]) -> str:
    parts = [f"{r[key]} of {label}" for key, label in (("ratio_to_psycopg_copy", "psycopg COPY"),
                                                       ("ratio_to_psql_copy", "psql \\copy"))
             if key in r]
    return f"; {', '.join(parts)}" if parts else ""


def _post(r: dict[str, Any]) -> Lines:
    return [("postings/s", f"{_n(r['postings_per_s'])} ({_n(r['postings'])} postings, "
                           f"{_n(r['entries'])} entries in {r['seconds']} s, peak RSS "
                           f"{r['peak_rss_mb']} MB){_ratios(r)}")]


def _baseline(r: dict[str, Any]) -> Lines:
    lines = [("psycopg write_row", f"{_n(r['psycopg_rows_per_s'])} rows/s ({_n(r['rows'])} rows "
                                   f"in {r['psycopg_seconds']} s)")]
    if "psql_rows_per_s" in r:
        lines.append(("psql \\copy", f"{_n(r['psql_rows_per_s'])} rows/s (in {r['psql_seconds']} s,"
                                     " the program's start included)"))
    else:
        lines.append(("psql \\copy", str(r.get("psql"))))
    return lines


def _again(r: dict[str, Any]) -> Lines:
    lines = []
    number = 1
    while f"batch_{number}_seconds" in r:
        against = r.get(f"batch_{number}_vs_batch_1")
        lines.append((f"batch {number}", f"{r[f'batch_{number}_seconds']} s, "
                                         f"{_n(r[f'batch_{number}_postings_per_s'])} postings/s"
                                         + (f", {against}× batch 1" if against else "")))
        number += 1
    return lines


def _past(r: dict[str, Any]) -> Lines:
    return [("balance at a past time",
             f"median {r['median_ms']} ms, p90 {r['p90_ms']} ms, max {r['max_ms']} ms over "
             f"{r['calls']} times"),
            ("history", f"{_n(r['postings_on_account'])} postings on {r['account']} "
                        f"(posted at {_n(r['setup_post_postings_per_s'])} postings/s)")]


def _trial(r: dict[str, Any]) -> Lines:
    return [("service call", f"{r['service_seconds']} s for {_n(r['accounts'])} accounts, "
                             f"peak RSS {r['service_peak_rss_mb']} MB"),
            ("`balances` table", f"{r['command_table_seconds']} s, peak RSS "
                                 f"{r['command_peak_rss_mb']} MB")]


def _reconcile(r: dict[str, Any]) -> Lines:
    return [("run", f"{r['seconds']} s, peak RSS {r['peak_rss_mb']} MB, {_n(r['customers'])} "
                    f"customers, {_n(r['postings_in_ledger'])} postings"),
            ("stored result", f"{_n(r['stored_result_bytes'])} bytes "
                              f"({_n(r['unmatched_ledger_items'])} unmatched ledger items listed)"),
            ("found", f"{r['status']}: {r['breaks']} breaks ({r['planted_breaks']} planted), "
                      f"{r['failed_checks']} failed checks")]


def _segregation(r: dict[str, Any]) -> Lines:
    return [("report", f"{r['seconds']} s, peak RSS {r['peak_rss_mb']} MB, "
                       f"{r['failed_checks']} failed checks")]


FORMATS: dict[str, Callable[[dict[str, Any]], Lines]] = {
    "baseline": _baseline, "post_copy": _post, "post_insert": _post, "post_again": _again,
    "sqlite": _post, "past_balance": _past, "trial_balance": _trial, "reconcile": _reconcile,
    "segregation": _segregation,
}
TITLES = {
    "baseline": "raw COPY, unindexed table", "post_copy": "post, PostgreSQL COPY path",
    "post_insert": "post, PostgreSQL INSERT path", "post_again": "post, batches after the first",
    "sqlite": "post, SQLite", "past_balance": "past balance, one hot account",
    "trial_balance": "trial balance at a past time", "reconcile": "reconcile run",
    "segregation": "report segregation",
}


def lines_of(name: str, result: dict[str, Any]) -> Lines:
    if "error" in result:
        return [("FAILED", result["error"])]
    if "skipped" in result:
        return [("skipped", result["skipped"])]
    try:
        return FORMATS[name](result)
    except KeyError:
        return [(key, _n(value)) for key, value in result.items()]


def header(document: dict[str, Any]) -> list[str]:
    machine = document["machine"]
    lines = [f"machine:  {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB, "
             f"{machine['os']}, {machine['python']}; load average {machine.get('load_average_1m')} "
             "at the start"]
    postgres = document.get("postgres")
    if postgres:
        settings = ", ".join(f"{k}={v}" for k, v in postgres["settings"].items())
        disk = postgres["disk"]
        where = disk.get("path") or "?"
        lines.append(f"postgres: {postgres['version']} ({postgres['server']}); {settings}")
        lines.append(f"data:     {where}: {disk.get('filesystem', '?')} on {disk.get('kind')}")
    size = document["size"]
    lines.append(f"size:     {size['name']}: {_n(size['customers'])} customers, {size['batches']} "
                 f"batches of {_n(size['entries'])} entries; SQLite {_n(size['sqlite_entries'])} "
                 f"entries; history {_n(size['history'])} postings; seed {document['seed']}")
    for name, counts in document.get("datasets", {}).items():
        shown = ", ".join(f"{_n(value)} {key}" for key, value in counts.items()
                          if key not in ("generate_seconds", "account"))
        on = f" on {counts['account']}" if "account" in counts else ""
        lines.append(f"data set: {name}: {shown}{on} (written in {counts['generate_seconds']} s)")
    lines.extend(f"WARNING:  {warning}" for warning in document.get("warnings", []))
    lines.append(f"commands: each measured command includes its start, "
                 f"{document['command_start_seconds']} s (`segledger --version`)")
    return lines


def table(document: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str]] = []
    for name, result in document["scenarios"].items():
        for index, (label, value) in enumerate(lines_of(name, result)):
            rows.append((TITLES.get(name, name) if index == 0 else "", label, value))
    first = max((len(row[0]) for row in rows), default=0)
    second = max((len(row[1]) for row in rows), default=0)
    body = [f"{a:<{first}}  {b:<{second}}  {c}" for a, b, c in rows]
    rule = "-" * min(120, max((len(line) for line in body), default=20))
    return "\n".join([*header(document), rule, *body, rule,
                      f"total {document['total_seconds']} s"])


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=1, default=str) + "\n", "utf-8")

"""`segledger reconcile …`: run, history, show, rerun, export."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ledger import service as ledger_service
from ledger.errors import InputError
from reconcile import service, store
from reconcile.rules import load_rulebook
from segledger.common import EXIT_PROBLEM, db_url, handled, progress_bar
from segledger.output import Format

app = typer.Typer(help="Reconciliation of the ledger against banks, chains and custodians.",
                  no_args_is_help=True)


@app.command("run")
@handled
def run_command(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option("--as-of", help="ISO 8601 time with offset.")],
    evidence: Annotated[list[str] | None, typer.Option(
        "--evidence", help="camt.053, MT940, BAI2 or observation file; repeatable.")] = None,
    chain_config: Annotated[str | None, typer.Option("--chain-config")] = None,
    prices: Annotated[str | None, typer.Option(
        "--prices", help="Price file: values for the rules that compare by value.")] = None,
    rulebook: Annotated[str, typer.Option(
        "--rulebook", help="Preset (jp-fsa, hk-sfc) or rulebook file.")] = "jp-fsa",
    fmt: Annotated[Format, typer.Option("--format")] = Format.TABLE,
) -> None:
    """Compare the ledger at --as-of with the evidence; exit 1 on breaks or failed checks."""
    at = ledger_service.parse_instant(as_of, "--as-of")
    book = load_rulebook(rulebook)
    engine = ledger_service.connect(db_url(ctx))
    with progress_bar() as report:
        outcome = service.run(engine, as_of=at, evidence_paths=evidence or [],
                              chain_config_path=chain_config, progress=report,
                              prices_path=prices, rulebook=book)
    _print_result(outcome.result, fmt)
    if outcome.problems:
        raise typer.Exit(EXIT_PROBLEM)

@app.command("history")
@handled
def history_command(ctx: typer.Context,
                    fmt: Annotated[Format, typer.Option("--format")] = Format.TABLE) -> None:
    """Past runs, newest first."""
    with ledger_service.connect(db_url(ctx)).connect() as connection:
        runs = store.history(connection)
    rows = []
    for run in runs:
        result = json.loads(run.result)
        rows.append({"run_id": run.run_id, "as_of": result["as_of"],
                     "created_at": result["created_at"], "status": run.status,
                     "breaks": len(result["breaks"]),
                     "failed_checks": sum(c["status"] == "fail" for c in result["checks"]),
                     "result_sha256": run.result_sha256})
    _emit_rows(rows, fmt, "Reconciliation runs")

@app.command("show")
@handled
def show_command(ctx: typer.Context, run_id: str,
                 fmt: Annotated[Format, typer.Option("--format")] = Format.TABLE) -> None:
    """One stored run, as it was stored."""
    with ledger_service.connect(db_url(ctx)).connect() as connection:
        run = store.load_run(connection, run_id)
    if run is None:
        raise InputError(f"no reconciliation run {run_id!r}", field="RUN_ID")
    result = json.loads(run.result)
    _print_result(result, fmt)
    if result["status"] == "breaks" or any(c["status"] == "fail" for c in result["checks"]):
        raise typer.Exit(EXIT_PROBLEM)

@app.command("rerun")
@handled
def rerun_command(ctx: typer.Context, run_id: str,
                  fmt: Annotated[Format, typer.Option("--format")] = Format.TABLE) -> None:
    """Repeat a stored run from its stored evidence; exit 1 unless the result is the same."""
    outcome = service.rerun(ledger_service.connect(db_url(ctx)), run_id)
    if fmt is Format.JSON:
        json.dump({"run_id": run_id, "same": outcome.same,
                   "differences": outcome.differences, "result": outcome.outcome.result},
                  sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        _print_result(outcome.outcome.result, fmt)
        print(f"rerun of {run_id}: " + ("same result as stored" if outcome.same else
              "DIFFERENT from the stored result:\n  " + "\n  ".join(outcome.differences)))
    if not outcome.same:
        raise typer.Exit(EXIT_PROBLEM)

@app.command("export")
@handled
def export_command(ctx: typer.Context, run_id: str,
                   out: Annotated[Path, typer.Option("--out", help="Directory to write.")]
                   ) -> None:
    """Write a run for an auditor: result.json, accounts/breaks/checks CSV, evidence files."""
    with ledger_service.connect(db_url(ctx)).connect() as connection:
        run = store.load_run(connection, run_id)
        if run is None:
            raise InputError(f"no reconciliation run {run_id!r}", field="RUN_ID")
        evidence = store.load_evidence(connection, run.seq)
    result = json.loads(run.result)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for name in ("accounts", "breaks", "checks"):
        (out / f"{name}.csv").write_text(_csv(result[name]))
    folder = out / "evidence"
    folder.mkdir(exist_ok=True)
    for position, (_, _, file) in enumerate(evidence):
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in Path(file.name).name)
        (folder / f"{position:03d}-{safe}").write_bytes(file.content)
    print(f"exported {run_id} to {out} ({len(evidence)} evidence files)")



def _csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    columns = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v
                         for k, v in row.items()})
    return buffer.getvalue()


def _emit_rows(rows: list[dict[str, Any]], fmt: Format, title: str) -> None:
    if fmt is Format.JSON:
        json.dump(rows, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif fmt is Format.CSV:
        sys.stdout.write(_csv(rows))
    else:
        table = Table(title=title)
        for column in (rows[0] if rows else {"(none)": ""}):
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
        Console(width=max(120, Console().width)).print(table)


def _print_result(result: dict[str, Any], fmt: Format) -> None:
    if fmt is Format.JSON:
        json.dump(result, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
        return
    if fmt is Format.CSV:
        sys.stdout.write(_csv(result["accounts"]))
        return
    console = Console(width=max(120, Console().width))
    console.print(f"[bold]{result['run_id']}[/] as of {result['as_of']}: "
                  f"[{'green' if result['status'] == 'clean' else 'red'}]{result['status']}[/]")
    _emit_rows([{k: a[k] for k in ("account", "asset", "ledger", "external", "difference",
                                   "source")} for a in result["accounts"]], fmt, "Custody accounts")
    if result["breaks"]:
        _emit_rows([{k: b[k] for k in ("account", "asset", "kind", "difference", "open_since")}
                    for b in result["breaks"]], fmt, "Breaks")
    _emit_rows([{k: c.get(k, "") for k in ("rule", "asset", "status", "value", "threshold",
                                           "detail")} for c in result["checks"]], fmt, "Checks")

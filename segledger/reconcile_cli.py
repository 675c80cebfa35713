"""`segledger reconcile …`: run, history, show, rerun, export.

Each command parses its options, calls one service function and formats what that returns
through segledger.output, the one formatter: a table that fits the terminal, one complete
JSON document, or a CSV whose cells are flat (never a dict or a list written as JSON).
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import uuid
from collections.abc import Mapping, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text
from sqlalchemy import Engine

from ledger import service as ledger_service
from ledger.errors import InputError
from reconcile import service
from reconcile.rules import load_rulebook
from segledger.common import EXIT_PROBLEM, db_url, handled, progress_bar
from segledger.output import Column, Format, console, print_json, print_table, show_time, write_csv

app = typer.Typer(help="Reconciliation of the ledger against banks, chains and custodians.",
                  no_args_is_help=True)

FORMAT_HELP = "table (fits the terminal), json (one complete document) or csv (flat cells)."
CSV_RULES = (
    "No cell holds JSON: a check's numbers become number_<name> columns, and a list of plain "
    "values (addresses, rule ids) is one cell joined by spaces.")
RUN_CSV_RULES = (
    "No cell holds JSON: an account's evidence facts become fact_<name> columns, its "
    "transaction matching matching_<name> (counts of matched and unmatched items, amounts "
    "explained and unexplained), a check's numbers number_<name>; a list of plain values "
    "(addresses, rule ids) is one cell joined by spaces.")
RUN_LAYOUT = (
    "--format json prints the whole stored result (run_id, as_of, created_at, status, "
    "rulebook, prices, evidence, accounts, breaks, checks, matching), each break with "
    "open_since (the run where it first appeared) and age_days (whole days from that run's "
    "as-of to this one's).\n\n"
    "--format csv prints one CSV in long form: a `section` column (run: one row with run_id, "
    "as_of, created_at, status, rulebook; then accounts, breaks, checks) and the union of "
    "their columns; each row fills its own section's columns. " + RUN_CSV_RULES)

FormatOption = Annotated[Format, typer.Option("--format", help=FORMAT_HELP)]
RunId = Annotated[str, typer.Argument(help="Run id, as `reconcile history` lists it.",
                                      show_default=False)]


@app.command("run", help=(
    "Compare the ledger at --as-of with the evidence, store the run and show it; exit 1 on "
    "breaks or a failed check.\n\n" + RUN_LAYOUT))
@handled
def run_command(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option("--as-of", help="ISO 8601 time with offset.")],
    evidence: Annotated[list[str] | None, typer.Option(
        "--evidence", help="camt.053, MT940, BAI2 or observation file; repeatable.")] = None,
    chain_config: Annotated[str | None, typer.Option(
        "--chain-config", help="Chain node file: the nodes to ask for on-chain balances.")
    ] = None,
    prices: Annotated[str | None, typer.Option(
        "--prices", help="Price file: values for the rules that compare by value.")] = None,
    rulebook: Annotated[str, typer.Option(
        "--rulebook", help="Preset (jp-fsa, hk-sfc) or rulebook file.")] = "jp-fsa",
    fmt: FormatOption = Format.TABLE,
) -> None:
    at = ledger_service.parse_instant(as_of, "--as-of")
    book = load_rulebook(rulebook)
    engine = ledger_service.connect(db_url(ctx))
    with progress_bar() as report:
        outcome = service.run(engine, as_of=at, evidence_paths=evidence or [],
                              chain_config_path=chain_config, progress=report,
                              prices_path=prices, rulebook=book)
    _print_run(outcome.document, fmt)
    if outcome.problems:
        raise typer.Exit(EXIT_PROBLEM)


HISTORY_COLUMNS = (
    Column("run_id"), Column("as_of", "time"), Column("created_at", "time"), Column("status"),
    Column("breaks", "count"), Column("failed_checks", "count", "failed"),
    Column("failed_rules"), Column("oldest_break_age_days", "count", "oldest break (days)"),
    Column("rulebook"), Column("result_sha256"))
HISTORY_TABLE = ("run_id", "as_of", "created_at", "status", "breaks", "failed_checks",
                 "failed_rules", "oldest_break_age_days")


@app.command("history", help=(
    "Stored runs, newest first (in the order they were made), with their breaks, failed "
    "checks and the age in days of the oldest break; exit 0 whatever the runs found.\n\n"
    "--format json prints a list of runs (failed_rules a list); --format csv one row a run "
    "(failed_rules joined by spaces). When more runs match than --limit, a note on stderr "
    "says so."))
@handled
def history_command(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only runs whose as-of is at or after this time (ISO 8601, offset).")
    ] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Only runs whose as-of is at or before this time (ISO 8601, offset).")
    ] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="Only runs with this status: clean or breaks.")] = None,
    rule: Annotated[str | None, typer.Option(
        "--rule", help="Only runs where a check of this rule failed, e.g. JP-COLD-95.")] = None,
    limit: Annotated[int, typer.Option(
        "--limit", help=f"At most this many runs (1 to {service.MAX_HISTORY_RUNS}).")
    ] = service.DEFAULT_HISTORY_RUNS,
    fmt: FormatOption = Format.TABLE,
) -> None:
    found = service.history(
        ledger_service.connect(db_url(ctx)),
        since=None if since is None else ledger_service.parse_instant(since, "--since"),
        until=None if until is None else ledger_service.parse_instant(until, "--until"),
        status=status, rule=rule, limit=limit)
    runs = [{**vars(run), "failed_rules": list(run.failed_rules)} for run in found.runs]
    if fmt is Format.JSON:
        print_json(runs)
    elif fmt is Format.CSV:
        write_csv(HISTORY_COLUMNS, [flat_row(run) for run in runs])
    else:
        print_table("Reconciliation runs", _pick(HISTORY_COLUMNS, HISTORY_TABLE),
                    [flat_row(run) for run in runs])
    if found.more:
        print(f"note: more runs match; these are the newest {limit} (raise --limit)",
              file=sys.stderr)


@app.command("show", help=(
    "One stored run, as it was stored, with the age of each break; exit 0 whatever the run "
    "found (`run` and `rerun` are the commands that exit 1).\n\n" + RUN_LAYOUT))
@handled
def show_command(ctx: typer.Context, run_id: RunId, fmt: FormatOption = Format.TABLE) -> None:
    engine = ledger_service.connect(db_url(ctx))
    _refuse_tampered(engine, run_id)
    _print_run(service.show(engine, run_id).document, fmt)


def _refuse_tampered(engine: Engine, run_id: str) -> None:
    """A run changed behind the ledger's back is not shown as if it were the stored one."""
    problem = service.seal_problem(engine, run_id)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        raise typer.Exit(EXIT_PROBLEM)


@app.command("rerun", help=(
    "Repeat a stored run from its stored evidence and the ledger as it stood then; exit 1 "
    "unless the result is the same, byte for byte.\n\n"
    "--format json prints {run_id, same, differences, result}, the result as `show` prints "
    "it. With --format table the verdict follows the run; with --format csv the CSV is the "
    "run's (layout below) and the verdict goes to stderr.\n\n" + RUN_LAYOUT))
@handled
def rerun_command(ctx: typer.Context, run_id: RunId, fmt: FormatOption = Format.TABLE) -> None:
    again = service.rerun(ledger_service.connect(db_url(ctx)), run_id)
    if fmt is Format.JSON:
        print_json({"run_id": run_id, "same": again.same, "differences": again.differences,
                    "result": again.outcome.document})
    else:
        _print_run(again.outcome.document, fmt)
        verdict = f"rerun of {run_id}: " + (
            "same result as stored" if again.same else
            "DIFFERENT from the stored result:\n  " + "\n  ".join(again.differences))
        print(verdict, file=sys.stderr if fmt is Format.CSV else sys.stdout)
    if not again.same:
        raise typer.Exit(EXIT_PROBLEM)


@app.command("export", help=(
    "Write a run for an auditor into a new directory: result.json (as `show --format json` "
    "prints it), run.csv, accounts.csv, breaks.csv and checks.csv (one section each, the "
    "columns and flat cells of `show --format csv`), and evidence/ with every stored "
    "evidence file, numbered in stored order. The directory must "
    "not exist yet: the export is written beside it and renamed into place when complete, "
    "so a failed export leaves nothing behind."))
@handled
def export_command(
    ctx: typer.Context, run_id: RunId,
    out: Annotated[Path, typer.Option(
        "--out", help="New directory to create (must not exist; missing parents are made).")],
) -> None:
    if os.path.lexists(out):
        raise InputError(f"{out} already exists; choose a new directory", field="--out")
    engine = ledger_service.connect(db_url(ctx))
    _refuse_tampered(engine, run_id)
    contents = service.export_contents(engine, run_id)
    try:
        _write_export(contents, out)
    except OSError as error:
        raise InputError(f"cannot write {out}: {error.strerror}", field="--out") from None
    print(f"exported {run_id} to {out} ({len(contents.evidence)} evidence files)")


def _write_export(contents: service.RunExport, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        with (partial / "result.json").open("w", encoding="utf-8") as handle, \
                redirect_stdout(handle):
            print_json(contents.outcome.document)
        for section in run_sections(contents.outcome.document):
            with (partial / f"{section.name}.csv").open("w", encoding="utf-8",
                                                        newline="") as handle, \
                    redirect_stdout(handle):
                write_csv(section.columns, section.rows)
        folder = partial / "evidence"
        folder.mkdir()
        for position, (_, _, file) in enumerate(contents.evidence):
            safe = "".join(ch if ch.isalnum() or ch in "._-" else "_"
                           for ch in Path(file.name).name)
            (folder / f"{position:03d}-{safe}").write_bytes(file.content)
        _rename_into_place(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _rename_into_place(partial: Path, out: Path) -> None:
    # The check before the export refused an existing --out; this closes the gap since:
    # rename() refuses a file and a directory that is not empty (an empty one it would
    # replace, losing nothing).
    try:
        os.rename(partial, out)
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            raise InputError(f"{out} already exists; choose a new directory",
                             field="--out") from None
        raise


# Long-form CSV: several kinds of row in one file, told apart by the `section` column.

@dataclass(frozen=True)
class Section:
    """One kind of row: a `section` of a long-form CSV, and one table on the terminal."""

    name: str
    title: str
    columns: Sequence[Column]  # every column the rows may fill, in order
    rows: Sequence[dict[str, Any]]  # flat cells only
    table: Sequence[str] = ()  # the columns a table shows, in order (all when empty)


def write_sections(sections: Sequence[Section]) -> None:
    """One CSV: `section`, then the union of the sections' columns in order of appearance."""
    columns: dict[str, Column] = {"section": Column("section")}
    for section in sections:
        for column in section.columns:
            columns.setdefault(column.name, column)
    write_csv(list(columns.values()),
              [{"section": section.name, **row} for section in sections for row in section.rows])


def print_sections(sections: Sequence[Section]) -> None:
    for section in sections:
        if section.rows:
            columns = _pick(section.columns, section.table) if section.table else section.columns
            print_table(section.title, columns, section.rows)
        else:
            console().print(f"{section.title}: none", markup=False, highlight=False)


def emit_sections(fmt: Format, document: Any, sections: Sequence[Section]) -> None:
    """The JSON document, the sections as one long-form CSV, or the sections as tables."""
    if fmt is Format.JSON:
        print_json(document)
    elif fmt is Format.CSV:
        write_sections(sections)
    else:
        print_sections(sections)


def flat_cell(value: Any) -> Any:
    """A value for one CSV cell: a list of plain values joined by spaces, a truth value as
    true/false; a mapping has no cell of its own (`spread` it over columns)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return " ".join(str(flat_cell(item)) for item in value if item is not None)
    assert not isinstance(value, Mapping), "spread a mapping over columns"
    return value


def flat_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: flat_cell(value) for key, value in row.items()}


def spread(prefix: str, mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    """A nested mapping as one column per leaf: {"a": {"b": 1}} under "x" is x_a_b = 1."""
    cells: dict[str, Any] = {}
    for key, value in (mapping or {}).items():
        name = f"{prefix}_{key}"
        if isinstance(value, Mapping):
            cells.update(spread(name, value))
        else:
            cells[name] = flat_cell(value)
    return cells


def spread_columns(rows: Sequence[Mapping[str, Any]], prefix: str,
                   kind: Any = "text") -> list[Column]:
    """The columns `spread` made under `prefix`, in order of first appearance."""
    names = dict.fromkeys(key for row in rows for key in row if key.startswith(f"{prefix}_"))
    return [Column(name, kind) for name in names]


def _pick(columns: Sequence[Column], names: Sequence[str]) -> list[Column]:
    by_name = {column.name: column for column in columns}
    return [by_name[name] for name in names if name in by_name]


CHECK_COLUMNS = (Column("rule"), Column("asset"), Column("account"), Column("status"),
                 Column("value", "amount"), Column("threshold", "amount"), Column("detail"))
CHECK_TABLE = ("rule", "asset", "status", "value", "threshold", "detail")


def check_section(checks: Sequence[Mapping[str, Any]]) -> Section:
    rows = [{**{column.name: flat_cell(check.get(column.name)) for column in CHECK_COLUMNS},
             **spread("number", check.get("numbers"))} for check in checks]
    return Section("checks", "Checks", [*CHECK_COLUMNS, *spread_columns(rows, "number")],
                   rows, CHECK_TABLE)


# A run: accounts, breaks, checks.

RUN_COLUMNS = (Column("run_id"), Column("as_of", "time"), Column("created_at", "time"),
               Column("status"), Column("rulebook"), Column("rulebook_version"),
               Column("evidence_files", "count"))
ACCOUNT_COLUMNS = (
    Column("account"), Column("asset"), Column("pool"), Column("location"), Column("purpose"),
    Column("ledger", "amount"), Column("external", "amount"), Column("difference", "amount"),
    Column("dust", "amount"), Column("source"), Column("evidence_as_of", "time"))
MATCHING_COLUMNS = (
    Column("matching_matched", "count"), Column("matching_unmatched_external", "count"),
    Column("matching_unmatched_ledger", "count"), Column("matching_explained", "amount"),
    Column("matching_unexplained", "amount"))
ACCOUNT_TABLE = ("account", "asset", "location", "ledger", "external", "difference", "source")
BREAK_COLUMNS = (
    Column("account"), Column("asset"), Column("kind"), Column("difference", "amount"),
    Column("open_since"), Column("age_days", "count", "age (days)"), Column("detail"))


def run_sections(document: Mapping[str, Any]) -> list[Section]:
    matching: Mapping[str, Any] = document.get("matching") or {}
    accounts = [{**{column.name: flat_cell(account.get(column.name))
                    for column in ACCOUNT_COLUMNS},
                 **spread("fact", account.get("facts")),
                 **_matching_cells(matching.get(account["account"]))}
                for account in document["accounts"]]
    breaks = [{column.name: flat_cell(found.get(column.name)) for column in BREAK_COLUMNS}
              for found in document["breaks"]]
    book = document.get("rulebook") or {}
    run = {"run_id": document["run_id"], "as_of": document["as_of"],
           "created_at": document.get("created_at"), "status": document["status"],
           "rulebook": book.get("name"), "rulebook_version": book.get("version"),
           "evidence_files": len(document.get("evidence") or [])}
    return [
        Section("run", "Run", RUN_COLUMNS, [run]),
        Section("accounts", "Custody accounts",
                [*ACCOUNT_COLUMNS, *spread_columns(accounts, "fact"), *MATCHING_COLUMNS],
                accounts, ACCOUNT_TABLE),
        Section("breaks", "Breaks", BREAK_COLUMNS, breaks),
        check_section(document["checks"]),
    ]


def _matching_cells(matching: Mapping[str, Any] | None) -> dict[str, Any]:
    if not matching:
        return {}
    return {"matching_matched": len(matching["matched"]),
            "matching_unmatched_external": len(matching["unmatched_external"]),
            "matching_unmatched_ledger": len(matching["unmatched_ledger"]),
            "matching_explained": matching["explained"],
            "matching_unexplained": matching["unexplained"]}


def _print_run(document: Mapping[str, Any], fmt: Format) -> None:
    if fmt is Format.TABLE:
        book = document.get("rulebook") or {}
        status = document["status"]
        console().print(Text.assemble(
            (document["run_id"], "bold"), f" as of {show_time(document['as_of'])}: ",
            (status, "green" if status == "clean" else "red"),
            f" (made {show_time(document.get('created_at'))}; rulebook "
            f"{book.get('name', '?')} {book.get('version', '')}; "
            f"{len(document.get('evidence') or [])} evidence files)"))
        print_sections(run_sections(document)[1:])  # the first, the run, is the line above
    else:
        emit_sections(fmt, document, run_sections(document))

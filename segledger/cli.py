"""The `segledger` command: parse arguments, call one service function, format the result."""

from __future__ import annotations

import sys
from importlib.metadata import version as package_version
from typing import Annotated, Any

import typer

from ledger import seals, service, views
from ledger.errors import InputError
from ledger.model import Location
from ledger.money import format_amount
from ledger.storage.reading import CoverageRow
from segledger import admin_cli, integrity_cli, ledger_cli, reconcile_cli, report_cli
from segledger.common import EXIT_INPUT, EXIT_PROBLEM, State, db_url, handled, progress_bar
from segledger.output import Column, Format, emit, set_zone, show_time

app = typer.Typer(
    help="segledger: the segregated customer-asset ledger of a crypto exchange.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Docstrings are wrapped at the source's width; markdown mode joins their lines.
    rich_markup_mode="markdown",
)
chart_app = typer.Typer(help="The chart of accounts.", no_args_is_help=True)
app.add_typer(chart_app, name="chart")
ledger_cli.install(app)  # balances, register, entry show, period close/list
integrity_cli.install(app)  # seal

def _print_version(value: bool) -> None:
    if value:
        print(f"segledger {package_version('segledger')}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option(
        "--db", help="Database URL (else SEGLEDGER_DATABASE_URL, else sqlite:///segledger.db).",
        show_default=False)] = None,
    tz: Annotated[str, typer.Option(
        "--tz", help="Time zone to show times in, e.g. Asia/Tokyo (times keep their offset).")
    ] = "UTC",
    version: Annotated[bool, typer.Option(
        "--version", help="Print the installed version and exit.", is_eager=True,
        callback=_print_version)] = False,
) -> None:
    """Exit codes: 0 fine, 1 a problem found, 2 bad input (nothing written), 3 environment."""
    ctx.obj = State(db=db)
    try:
        set_zone(tz)
    except InputError as error:
        print(f"error: {error.render()}", file=sys.stderr)
        raise typer.Exit(EXIT_INPUT) from None


@app.command()
@handled
def init(
    ctx: typer.Context,
    chart: Annotated[str | None, typer.Option(help="Chart file to load after the upgrade.")] = None,
) -> None:
    """Create or upgrade the schema to the newest revision; optionally load a chart."""
    engine = service.init(db_url(ctx))
    print("schema is at the newest revision")
    if chart:
        _report_chart(service.load_chart_file(engine, chart))


@chart_app.command("load")
@handled
def chart_load(
    ctx: typer.Context, file: Annotated[str, typer.Argument(help="Chart (JSON or YAML).")]
) -> None:
    """Add the chart's assets and accounts; identical ones are left, redefinitions refused."""
    _report_chart(service.load_chart_file(service.connect(db_url(ctx)), file))


def _report_chart(result: Any) -> None:
    print(f"chart loaded: {result.assets_added} assets and {result.accounts_added} accounts "
          f"added, {result.unchanged} unchanged")


@app.command()
@handled
def post(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="JSON Lines of entries; - reads stdin.")],
    copy: Annotated[bool | None, typer.Option(
        "--copy/--no-copy", help="Write with COPY (PostgreSQL; default there).")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Check the file against the ledger and write nothing: list every "
        "error (FILE:LINE: FIELD: reason), then a summary; exit 0 if clean, 2 if not. An "
        "entry with an error is left out, so the entries after it are checked against the "
        "balances without it.")] = False,
    max_errors: Annotated[int | None, typer.Option(
        "--max-errors", help="With --check: stop after this many errors "
        f"(default {service.DEFAULT_MAX_ERRORS}).", min=1, show_default=False)] = None,
) -> None:
    """Post a file of entries as one all-or-nothing batch: the first invalid entry stops it,
    with nothing written. An empty file posts nothing. --check lists every error instead."""
    if max_errors is not None and not check:
        raise InputError("only --check lists errors; without it the first error stops the post",
                         field="--max-errors")
    max_errors = max_errors or service.DEFAULT_MAX_ERRORS
    engine = service.connect(db_url(ctx))
    if not check:
        with progress_bar() as progress:
            result = service.post_file(engine, file, use_copy=copy, progress=progress)
        print(f"posted {result.posted} entries ({result.postings} postings), "
              f"skipped {result.skipped} duplicates")
        return
    with progress_bar() as progress:
        found = service.check_file(engine, file, max_errors=max_errors, use_copy=copy,
                                   progress=progress)
    for error in found.errors:
        print(error.render())
    summary = (f"{found.entries_checked} {'entry' if found.entries_checked == 1 else 'entries'}"
               f" checked, {len(found.errors)} {'error' if len(found.errors) == 1 else 'errors'}")
    if found.stopped:
        summary += (f" (stopped at --max-errors {max_errors}: the entries after the last error "
                    "listed were not checked)")
    print(summary)
    if found.errors:
        source = "<stdin>" if file == "-" else file
        print(f"error: {source}: the file has errors (listed above); nothing was written",
              file=sys.stderr)
        raise typer.Exit(EXIT_INPUT)


@app.command()
@handled
def coverage(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option("--as-of", help="ISO 8601 time with offset.")] = "now",
    fmt: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = Format.TABLE,
) -> None:
    """Customer coverage per asset: customer custody minus customer liabilities; exit 1 if an
    asset is short."""
    at = service.parse_instant(as_of, "--as-of")
    result = views.coverage(service.connect(db_url(ctx)), at)
    rows = [_coverage_row(row) for row in result.rows]
    locations = [location.value for location in Location
                 if any(location.value in row["by_location"] for row in rows)]
    columns = [Column("asset"), *(Column(f"custody_{name}", "amount", name) for name in locations),
               Column("customer_custody", "amount"), Column("customer_liabilities", "amount"),
               Column("coverage", "amount"), Column("status"), Column("open_breach")]
    for row in rows:
        row.update({f"custody_{name}": amount for name, amount in row["by_location"].items()})
    # JSON keeps its documented shape: a list of assets, custody by location nested.
    emit(fmt, f"Customer coverage as of {show_time(at)}", columns, rows,
         [{k: v for k, v in row.items() if not k.startswith("custody_")} for row in rows])
    if result.short:
        raise typer.Exit(EXIT_PROBLEM)


def _coverage_row(row: CoverageRow) -> dict[str, Any]:
    status = "short" if row.coverage_minor < 0 else ("excess" if row.coverage_minor else "exact")
    return {
        "asset": row.asset,
        "by_location": {k: format_amount(v, row.scale) for k, v in row.custody_by_location_minor.items()},
        "customer_custody": format_amount(row.custody_minor, row.scale),
        "customer_liabilities": format_amount(row.liabilities_minor, row.scale),
        "coverage": format_amount(row.coverage_minor, row.scale),
        "status": status,
        "open_breach": row.open_breach,
    }


@app.command()
@handled
def verify(
    ctx: typer.Context,
    fmt: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = Format.TABLE,
    seal: Annotated[str | None, typer.Option(
        "--seal", help="A seal file from `segledger seal`: also prove nothing before it changed.")
    ] = None,
) -> None:
    """Check the whole journal again from what is stored, the hash chain rebuilt from scratch;
    exit 1 naming each broken entry, run or record."""
    engine = service.connect(db_url(ctx))
    report = views.verify(engine) if seal is None else seals.verify_with_seal(engine, seal)
    problems = [vars(problem) for problem in report.problems]
    if fmt is Format.TABLE:
        for problem in report.problems:
            print(f"BROKEN {problem.check}: {problem.subject}: {problem.detail}")
        print(f"checked {report.entries_checked} entries, {report.postings_checked} postings, "
              f"{report.accounts_checked} accounts: "
              f"{'ok' if report.ok else f'{len(report.problems)} problems'}")
        print(f"hash chain: {report.hash_chain}")
    else:
        emit(fmt, "", [Column("check"), Column("subject"), Column("detail")], problems, {
            "ok": report.ok, "entries_checked": report.entries_checked,
            "postings_checked": report.postings_checked,
            "accounts_checked": report.accounts_checked, "hash_chain": report.hash_chain,
            "problems": problems})
    if not report.ok:
        raise typer.Exit(EXIT_PROBLEM)


@app.command()
@handled
def demo(ctx: typer.Context) -> None:
    """Build a small exchange's day and show what to look at next. It writes into its own file
    (segledger-demo/ledger.db, beside its input files) unless --db names another database,
    never into SEGLEDGER_DATABASE_URL's; a database holding a ledger that is not an earlier
    demo's is refused (exit 2) before anything is written."""
    from segledger.demo import run_demo

    run_demo(ctx.ensure_object(State).db)


def main() -> None:
    """Run the command; a usage mistake (an unknown option, a value not among the choices) is
    one line on stderr and exit 2, like every other bad input, not a framed help box."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        code = EXIT_INPUT
    except typer.TyperException as error:  # the command-line parser's usage errors
        format_message = getattr(error, "format_message", None)
        message = format_message() if callable(format_message) else str(error)
        if message:  # empty when the parser has already shown the help (no arguments)
            print(f"error: {message.replace('Value error, ', '')}", file=sys.stderr)
        code = getattr(error, "exit_code", EXIT_INPUT)
    sys.exit(code if isinstance(code, int) else 0)


app.add_typer(reconcile_cli.app, name="reconcile")
app.add_typer(report_cli.report_app, name="report")
app.add_typer(report_cli.insurance_app, name="insurance")
app.add_typer(admin_cli.admin_app, name="admin")

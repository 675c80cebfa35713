"""The `segledger` command: parse arguments, call one service function, format the result."""

from __future__ import annotations

from importlib.metadata import version as package_version
from typing import Annotated, Any

import typer

from ledger import service
from ledger.money import format_amount
from ledger.storage.engine import for_reading
from ledger.storage.integrity import verify as verify_ledger
from ledger.storage.reading import balances_at, close_period, coverage_at
from segledger import reconcile_cli, report_cli
from segledger.common import EXIT_PROBLEM, State, db_url, handled, progress_bar
from segledger.output import Format, emit

app = typer.Typer(
    help="segledger: the segregated customer-asset ledger of a crypto exchange.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
chart_app = typer.Typer(help="The chart of accounts.", no_args_is_help=True)
period_app = typer.Typer(help="Closed accounting periods.", no_args_is_help=True)
app.add_typer(chart_app, name="chart")
app.add_typer(period_app, name="period")

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
    version: Annotated[bool, typer.Option(
        "--version", help="Print the installed version and exit.", is_eager=True,
        callback=_print_version)] = False,
) -> None:
    ctx.obj = State(db=db)


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
) -> None:
    """Post a file of entries as one all-or-nothing batch."""
    engine = service.connect(db_url(ctx))
    with progress_bar() as progress:
        result = service.post_file(engine, file, use_copy=copy, progress=progress)
    print(f"posted {result.posted} entries ({result.postings} postings), "
          f"skipped {result.skipped} duplicates")


@app.command()
@handled
def balances(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option("--as-of", help="ISO 8601 time with offset.")] = "now",
    account: Annotated[str | None, typer.Option(help="Only accounts whose code starts so.")] = None,
    fmt: Annotated[Format, typer.Option("--format")] = Format.TABLE,
) -> None:
    """Normal-side balances at an effective time, of every account with a posting by then."""
    at = service.parse_instant(as_of, "--as-of")
    engine = service.connect(db_url(ctx))
    with for_reading(engine).connect() as connection:
        from ledger.storage.rows import load_assets

        scales = {code: asset.scale for code, asset in load_assets(connection).items()}
        rows = [
            {"account": row.account.code, "asset": row.account.asset,
             "balance": format_amount(row.balance_minor, scales[row.account.asset])}
            for row in balances_at(connection, at, account)
        ]
    emit(fmt, f"Balances as of {at.isoformat()}", ["account", "asset", "balance"], rows)


@app.command()
@handled
def coverage(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option("--as-of", help="ISO 8601 time with offset.")] = "now",
    fmt: Annotated[Format, typer.Option("--format")] = Format.TABLE,
) -> None:
    """Customer coverage per asset: customer custody minus customer liabilities."""
    at = service.parse_instant(as_of, "--as-of")
    with for_reading(service.connect(db_url(ctx))).connect() as connection:
        rows = [_coverage_row(row) for row in coverage_at(connection, at)]
    emit(fmt, f"Customer coverage as of {at.isoformat()}",
         ["asset", "customer_custody", "by_location", "customer_liabilities", "coverage", "status"],
         rows)
    if any(row["status"] == "short" for row in rows):
        raise typer.Exit(EXIT_PROBLEM)


def _coverage_row(row: Any) -> dict[str, Any]:
    status = "short" if row.coverage_minor < 0 else ("excess" if row.coverage_minor else "exact")
    return {
        "asset": row.asset,
        "customer_custody": format_amount(row.custody_minor, row.scale),
        "by_location": {k: format_amount(v, row.scale) for k, v in row.custody_by_location_minor.items()},
        "customer_liabilities": format_amount(row.liabilities_minor, row.scale),
        "coverage": format_amount(row.coverage_minor, row.scale),
        "status": status,
        "open_breach": row.open_breach,
    }


@app.command()
@handled
def verify(
    ctx: typer.Context, fmt: Annotated[Format, typer.Option("--format")] = Format.TABLE
) -> None:
    """Check the whole journal again from what is stored; exit 1 naming each broken entry."""
    with for_reading(service.connect(db_url(ctx))).connect() as connection:
        report = verify_ledger(connection)
    if fmt is Format.JSON:
        emit(fmt, "", [], [], {
            "ok": report.ok, "entries_checked": report.entries_checked,
            "postings_checked": report.postings_checked,
            "accounts_checked": report.accounts_checked, "hash_chain": report.hash_chain,
            "problems": [vars(p) for p in report.problems]})
    else:
        for problem in report.problems:
            print(f"BROKEN {problem.check}: {problem.subject}: {problem.detail}")
        print(f"checked {report.entries_checked} entries, {report.postings_checked} postings, "
              f"{report.accounts_checked} accounts: "
              f"{'ok' if report.ok else f'{len(report.problems)} problems'}")
        print(f"hash chain: {report.hash_chain}")
    if not report.ok:
        raise typer.Exit(EXIT_PROBLEM)


@period_app.command("close")
@handled
def period_close(
    ctx: typer.Context,
    through: Annotated[str, typer.Option(help="Last instant of the closed period (ISO 8601).")],
    by: Annotated[str, typer.Option(help="Who closes it.")] = "segledger",
    note: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Close every effective time up to --through: later entries dated in it are refused."""
    at = service.parse_instant(through, "--through")
    close_period(service.connect(db_url(ctx)), at, by, note)
    print(f"closed through {at.isoformat()}")


@app.command()
@handled
def demo(ctx: typer.Context) -> None:
    """Build a small exchange's day on the database and show what to look at next."""
    from segledger.demo import run_demo

    run_demo(db_url(ctx))


def main() -> None:
    app()


app.add_typer(reconcile_cli.app, name="reconcile")
app.add_typer(report_cli.report_app, name="report")
app.add_typer(report_cli.insurance_app, name="insurance")

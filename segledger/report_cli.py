"""`segledger report …` (the auditor's statements) and `segledger insurance …` (the register)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ledger import service as ledger_service
from ledger.errors import InputError
from ledger.money import format_amount
from ledger.reserves import parse_register
from ledger.storage import reserve_store
from ledger.storage.engine import for_reading
from reconcile import reports
from reconcile.rules import load_rulebook
from segledger.common import EXIT_PROBLEM, db_url, handled
from segledger.output import Format

report_app = typer.Typer(help="Daily statements for auditors: segregation, liability reserve.",
                         no_args_is_help=True)
insurance_app = typer.Typer(help="The insurance register behind the liability reserve.",
                            no_args_is_help=True)

AsOf = Annotated[str, typer.Option("--as-of", help="ISO 8601 time with offset.")]
Prices = Annotated[str | None, typer.Option("--prices", help="Price file (JPY quote).")]
RulebookOption = Annotated[str, typer.Option("--rulebook",
                                             help="Preset (jp-fsa, hk-sfc) or rulebook file.")]
FormatOption = Annotated[Format, typer.Option("--format")]


@report_app.command("segregation")
@handled
def segregation_command(ctx: typer.Context, as_of: AsOf, prices: Prices = None,
                        rulebook: RulebookOption = "jp-fsa",
                        fmt: FormatOption = Format.TABLE) -> None:
    """Per asset: liabilities, custody by location, coverage, excess, hot share, guarantee,
    fiat in trust; then the segregation checks. Exit 1 if a check fails."""
    document = _report(ctx, reports.segregation, as_of, prices, rulebook)
    if fmt is Format.JSON:
        _json(document)
    else:
        console = _console()
        console.print(f"[bold]Segregation statement[/] as of {document['as_of']} "
                      f"({document['rulebook']['name']} {document['rulebook']['version']}; "
                      f"{document['basis']})")
        table = Table("asset", "liabilities", "custody by location", "coverage", "excess",
                      "hot share", "guarantee (cold)", "in trust")
        for row in document["assets"]:
            table.add_row(row["asset"], row["customer_liabilities"],
                          ", ".join(f"{k} {v}" for k, v in row["customer_custody"].items()),
                          row["coverage"], row["excess"], str(row.get("hot_share") or ""),
                          str(row.get("guarantee_cold") or ""), str(row.get("in_trust") or ""))
        console.print(table)
        _checks(console, document["checks"])
    if document["failed"]:
        raise typer.Exit(EXIT_PROBLEM)


@report_app.command("reserve")
@handled
def reserve_command(ctx: typer.Context, as_of: AsOf, prices: Prices = None,
                    rulebook: RulebookOption = "jp-fsa",
                    fmt: FormatOption = Format.TABLE) -> None:
    """The required liability reserve and how it was computed, the reserve held, eligible
    insurance, the gap, every draw with its incident. Exit 1 if JP-RESERVE fails."""
    document = _report(ctx, reports.reserve, as_of, prices, rulebook)
    if fmt is Format.JSON:
        _json(document)
    else:
        _print_reserve(document)
    if document["check"]["status"] == "fail":
        raise typer.Exit(EXIT_PROBLEM)


def _report(ctx: typer.Context, build: Callable[..., dict[str, Any]], as_of: str,
            prices: str | None, rulebook: str) -> dict[str, Any]:
    at = ledger_service.parse_instant(as_of, "--as-of")
    return build(ledger_service.connect(db_url(ctx)), at, prices, load_rulebook(rulebook))


def _print_reserve(document: dict[str, Any]) -> None:
    console = _console()
    currency = document["currency"]
    console.print(f"[bold]Liability reserve[/] as of {document['as_of']} "
                  f"(formula {document['formula']['version']}, in {currency})")
    if document["required"] is None:
        console.print(f"required: n/a: {document['formula']['not_computed_because']}")
    else:
        numbers = document["formula"]["numbers"]
        console.print(f"required {document['required']} = max(floor, traded value "
                      f"{numbers['traded_value']} × rate × incident factor "
                      f"{numbers['incident_factor']} × risk multiplier)")
    console.print(f"held {document['held']}  insurance eligible "
                  f"{document['insurance']['eligible']}  gap {document['gap']}")
    for title, rows in (("Reserve draws", document["draws"]),
                        ("Insurance in force", document["insurance"]["in_force"])):
        if rows:
            table = Table(*rows[0].keys(), title=title)
            for row in rows:
                table.add_row(*(str(v) for v in row.values()))
            console.print(table)
    for incident in document["incidents"]:
        console.print(f"incident {incident['incident']} ({incident['kind']}) opened "
                      f"{incident['opened_at']} by {incident['opened_by']}")
        for link in incident["links"]:
            console.print(f"  {link['kind']:9} {link['amount']} {link['asset']} "
                          f"{link['entry']} {link['effective_at']}")
        for breach in incident["breaches"]:
            state = (f"closed by {breach['closed_by']}" if breach["closed_by"] else "OPEN")
            console.print(f"  breach   {breach['asset']} {breach['opened_coverage']}: {state}")
    _checks(console, [document["check"]])


@insurance_app.command("load")
@handled
def insurance_load(ctx: typer.Context,
                   file: Annotated[str, typer.Argument(help="Register (JSON).")]) -> None:
    """Add policies to the register; a policy already there with the same terms is left."""
    try:
        content = Path(file).read_bytes()
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", source=file) from None
    drafts = parse_register(content, file)
    result = reserve_store.load_register(ledger_service.connect(db_url(ctx)), drafts, file)
    print(f"insurance register: {result.added} policies added, {result.unchanged} unchanged")


@insurance_app.command("list")
@handled
def insurance_list(ctx: typer.Context, fmt: FormatOption = Format.TABLE) -> None:
    """Every registered policy."""
    engine = ledger_service.connect(db_url(ctx))
    with for_reading(engine).connect() as connection:
        policies = reserve_store.policies(connection)
        scales = {row[0]: row[1] for row in connection.exec_driver_sql(
            "SELECT code, scale FROM assets")}
    rows = [{"policy_id": p.policy_id, "insurer": p.insurer, "currency": p.currency,
             "limit": format_amount(p.limit_minor, scales[p.currency]),
             "covered_share": str(p.covered_share), "period_start": p.period_start.isoformat(),
             "period_end": p.period_end.isoformat()} for p in policies]
    if fmt is Format.JSON:
        _json(rows)
        return
    table = Table("policy", "insurer", "limit", "share", "from", "to", title="Insurance register")
    for row in rows:
        table.add_row(row["policy_id"], row["insurer"], f"{row['limit']} {row['currency']}",
                      row["covered_share"], row["period_start"], row["period_end"])
    _console().print(table)


def _json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def _console() -> Console:
    return Console(width=max(120, Console().width))


def _checks(console: Console, checks: list[dict[str, Any]]) -> None:
    table = Table("rule", "asset", "status", "value", "threshold", "detail", title="Checks")
    colour = {"pass": "green", "fail": "red", "n/a": "yellow"}
    for check in checks:
        table.add_row(check["rule"], check["asset"],
                      f"[{colour[check['status']]}]{check['status']}[/]", check["value"],
                      check["threshold"], check["detail"])
    console.print(table)

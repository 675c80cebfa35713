"""`segledger report …` (the auditor's statements) and `segledger insurance …` (the register).

Like every command: parse the options, call one service function, format what it returns
through segledger.output (the long-form CSV of several sections is reconcile_cli's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

import typer

from ledger import files
from ledger import service as ledger_service
from ledger.reserves import parse_register
from ledger.storage import reserve_store
from reconcile import reports
from reconcile.rules import load_rulebook
from segledger.common import EXIT_PROBLEM, db_url, handled
from segledger.output import Column, Format, console, emit, group_digits, show_time
from segledger.reconcile_cli import (
    CSV_RULES,
    FORMAT_HELP,
    Section,
    check_section,
    emit_sections,
    flat_cell,
    print_sections,
    spread,
    spread_columns,
)

report_app = typer.Typer(help="Daily statements for auditors: segregation, liability reserve.",
                         no_args_is_help=True)
insurance_app = typer.Typer(help="The insurance register behind the liability reserve.",
                            no_args_is_help=True)

AsOf = Annotated[str, typer.Option("--as-of", help="ISO 8601 time with offset.")]
Prices = Annotated[str | None, typer.Option(
    "--prices", help="Price file (JPY quote): values for the rules that compare by value.")]
RulebookOption = Annotated[str, typer.Option("--rulebook",
                                             help="Preset (jp-fsa, hk-sfc) or rulebook file.")]
FormatOption = Annotated[Format, typer.Option("--format", help=FORMAT_HELP)]


@report_app.command("segregation", help=(
    "Per asset: customer liabilities, customer custody by location, coverage, excess, hot "
    "share, guarantee (cold), fiat in trust; then the segregation checks. Exit 1 if a check "
    "fails.\n\n"
    "--format json prints the whole statement. --format csv prints one CSV in long form: a "
    "`section` column (assets, checks) then the union of their columns; customer custody by "
    "location is spread over custody_<location> columns. " + CSV_RULES))
@handled
def segregation_command(ctx: typer.Context, as_of: AsOf, prices: Prices = None,
                        rulebook: RulebookOption = "jp-fsa",
                        fmt: FormatOption = Format.TABLE) -> None:
    document = _report(ctx, reports.segregation, as_of, prices, rulebook)
    if fmt is Format.TABLE:
        book = document["rulebook"]
        _line(f"Segregation statement as of {show_time(document['as_of'])} "
              f"({book['name']} {book['version']}; {document['basis']})")
    emit_sections(fmt, document, [_segregation_assets(document["assets"]),
                                  check_section(document["checks"])])
    if document["failed"]:
        raise typer.Exit(EXIT_PROBLEM)


ASSET_COLUMNS = (Column("asset"), Column("kind"),
                 Column("customer_liabilities", "amount", "liabilities"))
ASSET_TAIL = (
    Column("customer_custody_total", "amount", "custody"), Column("coverage", "amount"),
    Column("excess", "amount"), Column("open_breach", header="open breach"),
    Column("liabilities_value", "amount", "liabilities value"),
    Column("hot_share", header="hot share"),
    Column("guarantee_cold", "amount", "guarantee (cold)"),
    Column("guarantee_coverage", header="guarantee / hot"),
    Column("in_trust", "amount", "in trust"))


def _segregation_assets(assets: Sequence[Mapping[str, Any]]) -> Section:
    fixed = [*ASSET_COLUMNS, *ASSET_TAIL]
    rows = [{**{column.name: flat_cell(row.get(column.name)) for column in fixed},
             **spread("custody", row.get("customer_custody"))} for row in assets]
    custody = [Column(c.name, "amount", c.name.removeprefix("custody_"))
               for c in spread_columns(rows, "custody")]
    columns = [*ASSET_COLUMNS, *custody, *ASSET_TAIL]
    shown = [c.name for c in columns if c.name not in ("kind", "liabilities_value")]
    return Section("assets", "Per asset", columns, rows, shown)


@report_app.command("reserve", help=(
    "The required liability reserve and how it was computed, the reserve held, eligible "
    "insurance, the gap, every draw with its incident. Exit 1 if JP-RESERVE fails.\n\n"
    "--format json prints the whole statement. --format csv prints one CSV in long form: a "
    "`section` column then the union of the sections' columns: reserve (one row: required, "
    "held, insurance_eligible, gap; the formula's numbers as number_<name> and parameters "
    "as parameter_<name>), assets (held, appropriation and losses per asset), draws, "
    "insurance (policies in force), incidents, incident_links, breaches, checks. " + CSV_RULES))
@handled
def reserve_command(ctx: typer.Context, as_of: AsOf, prices: Prices = None,
                    rulebook: RulebookOption = "jp-fsa",
                    fmt: FormatOption = Format.TABLE) -> None:
    document = _report(ctx, reports.reserve, as_of, prices, rulebook)
    sections = _reserve_sections(document)
    if fmt is Format.TABLE:
        _print_reserve_summary(document)
        print_sections(sections[1:])  # the first, the summary row, is the lines above
    else:
        emit_sections(fmt, document, sections)
    if document["check"]["status"] == "fail":
        raise typer.Exit(EXIT_PROBLEM)


def _report(ctx: typer.Context, build: Callable[..., dict[str, Any]], as_of: str,
            prices: str | None, rulebook: str) -> dict[str, Any]:
    at = ledger_service.parse_instant(as_of, "--as-of")
    return build(ledger_service.connect(db_url(ctx)), at, prices, load_rulebook(rulebook))


def _line(text: str) -> None:
    console().print(text, markup=False, highlight=False)


def _print_reserve_summary(document: Mapping[str, Any]) -> None:
    currency = document["currency"]
    _line(f"Liability reserve as of {show_time(document['as_of'])} "
          f"(formula {document['formula']['version']}, in {currency})")
    if document["required"] is None:
        _line(f"required: n/a: {document['formula']['not_computed_because']}")
    else:
        numbers = document["formula"]["numbers"]
        _line(f"required {_amount(document['required'])} = max(floor, traded value "
              f"{_amount(numbers['traded_value'])} × rate × incident factor "
              f"{numbers['incident_factor']} × risk multiplier)")
    _line(f"held {_amount(document['held'])}  insurance eligible "
          f"{_amount(document['insurance']['eligible'])}  gap {_amount(document['gap'])}")


def _amount(value: str | None) -> str:
    return "n/a" if value is None else group_digits(value)


def _section(name: str, title: str, columns: Sequence[Column],
             items: Sequence[Mapping[str, Any]]) -> Section:
    rows = [{column.name: flat_cell(item.get(column.name)) for column in columns}
            for item in items]
    return Section(name, title, columns, rows)


def _reserve_sections(document: Mapping[str, Any]) -> list[Section]:
    formula = document["formula"]
    summary = {"currency": document["currency"], "required": document["required"],
               "held": document["held"],
               "insurance_eligible": document["insurance"]["eligible"],
               "insurance_cap": document["insurance"]["cap"], "gap": document["gap"],
               "formula": formula["version"],
               "not_computed_because": formula["not_computed_because"],
               **spread("number", formula["numbers"]),
               **spread("parameter", formula["parameters"])}
    summary_columns = [Column("currency"), Column("required", "amount"),
                       Column("held", "amount"), Column("insurance_eligible", "amount"),
                       Column("insurance_cap"), Column("gap", "amount"), Column("formula"),
                       Column("not_computed_because"), *spread_columns([summary], "number"),
                       *spread_columns([summary], "parameter")]
    by_asset: dict[str, dict[str, Any]] = {}
    for column, values in (("held", document["held_by_asset"]),
                           ("appropriation", document["appropriation_by_asset"]),
                           ("losses_in_window", document["losses_in_window"])):
        for asset, amount in sorted(values.items()):
            by_asset.setdefault(asset, {"asset": asset})[column] = amount
    incidents = document["incidents"]
    return [
        Section("reserve", "Liability reserve", summary_columns, [summary]),
        _section("assets", "Per asset", (
            Column("asset"), Column("held", "amount"), Column("appropriation", "amount"),
            Column("losses_in_window", "amount", "losses in window")),
            [by_asset[asset] for asset in sorted(by_asset)]),
        _section("draws", "Reserve draws", (
            Column("entry"), Column("type"), Column("effective_at", "time"),
            Column("recorded_at", "time"), Column("asset"), Column("amount", "amount"),
            Column("incident"), Column("incident_kind"), Column("memo")), document["draws"]),
        _section("insurance", "Insurance in force", (
            Column("policy_id"), Column("insurer"), Column("currency"),
            Column("limit", "amount"), Column("covered_share"), Column("period_start", "time"),
            Column("period_end", "time"), Column("valued", "amount"),
            Column("counted", "amount")), document["insurance"]["in_force"]),
        _section("incidents", "Incidents", (
            Column("incident"), Column("incident_kind"), Column("opened_at", "time"),
            Column("opened_by")),
            [{**item, "incident_kind": item["kind"]} for item in incidents]),
        _section("incident_links", "Entries of the incidents", (
            Column("incident"), Column("kind"), Column("entry"), Column("type"),
            Column("effective_at", "time"), Column("asset"), Column("amount", "amount"),
            Column("memo")),
            [{**link, "incident": item["incident"]} for item in incidents
             for link in item["links"]]),
        _section("breaches", "Segregation breaches of the incidents", (
            Column("incident"), Column("asset"), Column("opened_at", "time"),
            Column("opened_coverage", "amount"), Column("closed_by"),
            Column("closed_at", "time")),
            [{**breach, "incident": item["incident"]} for item in incidents
             for breach in item["breaches"]]),
        check_section([document["check"]]),
    ]


@insurance_app.command("load")
@handled
def insurance_load(ctx: typer.Context,
                   file: Annotated[str, typer.Argument(help="Register (JSON).")]) -> None:
    """Add policies to the register; a policy already there with the same terms is left."""
    source = files.source_name(file)
    drafts = parse_register(files.read_file(file), source)
    result = reserve_store.load_register(ledger_service.connect(db_url(ctx)), drafts, source)
    print(f"insurance register: {result.added} policies added, {result.unchanged} unchanged")


POLICY_COLUMNS = (
    Column("policy_id", header="policy"), Column("insurer"), Column("currency"),
    Column("limit", "amount"), Column("covered_share", header="share"),
    Column("period_start", "time", "from"), Column("period_end", "time", "to"))


@insurance_app.command("list", help=(
    "Every registered policy: insurer, currency, limit, covered share, period. --format json "
    "prints a list of policies, --format csv one row a policy."))
@handled
def insurance_list(ctx: typer.Context, fmt: FormatOption = Format.TABLE) -> None:
    policies = reports.insurance_register(ledger_service.connect(db_url(ctx)))
    emit(fmt, "Insurance register", POLICY_COLUMNS, policies)

"""`segledger admin freeze|record|claims|pool|elections|disputes` (registered on admin_cli).

Each command parses its options, calls one function of ledger.administration.service and
formats what it returns: a table, one JSON document, a long-form CSV (a `section` column, as
`reconcile show` writes), or for the claims an Excel workbook.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ledger import service as ledger_service
from ledger.administration import service
from ledger.administration.claims_report import ClaimsReport
from ledger.errors import InputError
from ledger.money import format_amount
from segledger.admin_cli import admin_app, disputes_app, elections_app
from segledger.common import db_url, handled, progress_bar
from segledger.output import Column, Format, check_new, emit, line, print_out, show_time, write_out
from segledger.reconcile_cli import FormatOption, Section, emit_sections, print_sections

# Shared by the admin commands of both modules (admin_plan_cli imports them from here).
FREEZE_FIRST = "Refused (exit 2) unless the ledger is frozen (`segledger admin freeze`)."
OutOption = Annotated[Path | None, typer.Option(
    "--out", help="Write to this new file instead of stdout (it must not exist; written "
    "beside it and renamed into place when complete, so a failure leaves nothing).",
    show_default=False)]


class ClaimsFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


@admin_app.command("freeze", help=(
    "Freeze the ledger at the cut-off for the court-appointed administrator. From then on "
    "every business entry is refused whatever its date (by segledger and by the database): "
    "only `distribution` entries dated after the cut-off and the administrator's records "
    "(`admin record FILE --reason …`) are accepted. Who froze, when, and the case are "
    "recorded.\n\n"
    "A freeze is final: freezing again is refused (exit 2, naming who froze and when) and "
    "there is no unfreeze. A cut-off in the future or an empty name is refused (exit 2)."))
@handled
def freeze_command(
    ctx: typer.Context,
    cutoff: Annotated[str, typer.Option(
        "--cutoff", help="The cut-off: ISO 8601 time with offset, not in the future (or now). "
        "Claims are the balances at effective times up to and including it.",
        show_default=False)],
    administrator: Annotated[str, typer.Option(
        "--administrator", help="The administrator's name, as the court appointed them.",
        show_default=False)],
    case_no: Annotated[str | None, typer.Option(
        "--case", help="The court's case number.", show_default=False)] = None,
) -> None:
    at = ledger_service.parse_instant(cutoff, "--cutoff")
    frozen = service.freeze(ledger_service.connect(db_url(ctx)), at, administrator, case_no)
    case = f", case {frozen.freeze.case_no}" if frozen.freeze.case_no else ""
    print(f"frozen by {frozen.freeze.administrator}{case}: cut-off "
          f"{show_time(frozen.freeze.cutoff)}, recorded {show_time(frozen.frozen_at)}")
    if frozen.later_entries:
        print(f"note: {frozen.later_entries} entries dated after the cut-off were recorded "
              "before the freeze; they are not part of the claims", file=sys.stderr)


@admin_app.command("record", help=(
    "Post a file of entries as the administrator's record (a recovered wallet, a correction "
    "ordered by the court): one all-or-nothing batch, read and checked as `segledger post` "
    "does, accepted after the freeze whatever the entries' dates, with the reason kept on "
    "the batch. An entry dated at or before the cut-off changes the claims (and so any plan "
    "made before it). " + FREEZE_FIRST + " An empty reason is refused."))
@handled
def record_command(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="JSON Lines of entries; - reads stdin.",
                                        show_default=False)],
    reason: Annotated[str, typer.Option(
        "--reason", help="Why the administrator records these entries (kept on the batch).",
        show_default=False)],
) -> None:
    engine = ledger_service.connect(db_url(ctx))
    with progress_bar() as progress:
        result = service.record(engine, file, reason, progress)
    print(f"posted {result.posted} entries ({result.postings} postings), "
          f"skipped {result.skipped} duplicates")


CLAIM_COLUMNS = (Column("creditor"), Column("asset"), Column("amount", "amount"),
                 Column("price", "amount"), Column("value", "amount"))
TOTAL_COLUMNS = (Column("asset"), Column("creditors", "count"), Column("amount", "amount"),
                 Column("price", "amount"), Column("value", "amount"))
UNIDENTIFIED_COLUMNS = (Column("account"), Column("asset"), Column("amount", "amount"),
                        Column("price", "amount"), Column("value", "amount"))
IN_FLIGHT_COLUMNS = (Column("kind"), Column("account"), Column("asset"),
                     Column("amount", "amount"), Column("on"), Column("entry"),
                     Column("reference"), Column("detail"))


@admin_app.command("claims", help=(
    "Each creditor's claim per asset at the cut-off, in kind (the asset's own decimals), and "
    "valued in the quote currency at the commencement price table when one is recorded "
    "(each value rounded down to the quote's minor unit); the totals per asset; the "
    "unidentified receipts held in customer-pool suspense accounts at the cut-off (owed to "
    "someone not yet identified: `admin plan` is refused until the administrator records "
    "whose they are); and the items in flight at the cut-off, for review: withdrawals "
    "booked but not confirmed "
    "(withdrawal_unconfirmed), deposits on a bank statement never credited "
    "(deposit_uncredited) and coins on chain beyond the ledger (chain_excess), from the "
    "reconciliation run closest to the cut-off (the latest at or before it, else the "
    "earliest after it). Without any run the output says the in-flight items are unknown.\n\n"
    "--format json prints one document: cutoff, case, administrator, prices (or null), "
    "quote, claims [creditor, asset, amount, price, value], totals [asset, creditors, "
    "amount, price, value], value_total, unidentified [account, asset, amount, price, "
    "value], in_flight_run, in_flight_note, in_flight [kind, "
    "account, asset, amount, on, entry, reference, detail]. --format csv prints one CSV in "
    "long form: a `section` column (case: one row with cutoff, case, administrator, quote, "
    "prices_as_of, prices_sha256, value_total, in_flight_run, in_flight_note; then claims, "
    "totals, unidentified, in_flight) and the union of their columns. --format xlsx writes a workbook to "
    "--out (sheets Case, Claims, Totals, Unidentified, In flight), every amount, price and value a text "
    "cell holding the exact decimal, so that no spreadsheet "
    "rounds it to a 15-digit float. Amounts are always decimal text.\n\n"
    + FREEZE_FIRST))
@handled
def claims_command(
    ctx: typer.Context,
    prices: Annotated[str | None, typer.Option(
        "--prices", help="Commencement price file ({quote, as_of, prices}) to record first: "
        "once for the case; the same table again is fine, a different one is refused; it must "
        "price every asset with a claim.", show_default=False)] = None,
    fmt: Annotated[ClaimsFormat, typer.Option(
        "--format", help="table, json, csv or xlsx (xlsx needs --out).")] = ClaimsFormat.TABLE,
    out: OutOption = None,
) -> None:
    if fmt is ClaimsFormat.XLSX and out is None:
        raise InputError("an xlsx workbook is written to a file: give --out FILE.xlsx",
                         field="--out")
    check_new(out)  # before the prices are recorded: a refusal writes nothing
    report = service.claims(ledger_service.connect(db_url(ctx)), prices)
    if fmt is ClaimsFormat.XLSX:
        assert out is not None
        write_out(out, lambda path: _write_workbook(report, path))
    elif out is not None:
        print_out(out, lambda: _print_claims(report, fmt))
    else:
        _print_claims(report, fmt)


UNIDENTIFIED_TITLE = "Unidentified receipts in suspense at the cut-off (owed, creditor unknown)"
UNIDENTIFIED_NOTE = ("no plan until they are identified: `segledger admin record FILE --reason "
                     "…` moving each to its customer's account")


def _claims_sections(document: Mapping[str, Any]) -> list[Section]:
    def rows(items: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> list[dict[str, Any]]:
        return [{column.name: item.get(column.name) for column in columns} for item in items]

    prices = document["prices"] or {}
    case = {"cutoff": document["cutoff"], "case": document["case"],
            "administrator": document["administrator"], "quote": document["quote"],
            "prices_as_of": prices.get("as_of"), "prices_sha256": prices.get("sha256"),
            "value_total": document["value_total"], "in_flight_run":
            (document["in_flight_run"] or {}).get("run_id"),
            "in_flight_note": document["in_flight_note"]}
    return [Section("case", "Case", [Column(name) for name in case], [case]),
            Section("claims", "Claims at the cut-off", CLAIM_COLUMNS,
                    rows(document["claims"], CLAIM_COLUMNS)),
            Section("totals", "Totals per asset", TOTAL_COLUMNS,
                    rows(document["totals"], TOTAL_COLUMNS)),
            Section("unidentified", UNIDENTIFIED_TITLE, UNIDENTIFIED_COLUMNS,
                    rows(document["unidentified"], UNIDENTIFIED_COLUMNS)),
            Section("in_flight", "In flight at the cut-off", IN_FLIGHT_COLUMNS,
                    rows(document["in_flight"], IN_FLIGHT_COLUMNS))]


def _print_claims(report: ClaimsReport, fmt: ClaimsFormat) -> None:
    document = report.to_json()
    if fmt is not ClaimsFormat.TABLE:
        emit_sections(Format(fmt.value), document, _claims_sections(document))
        return
    line(_caseline("Claims at the cut-off", report.freeze.cutoff, report.freeze.case_no,
                     report.freeze.administrator))
    if report.prices is None:
        line("no commencement price table recorded: amounts in kind only "
              "(record one with --prices FILE)")
    else:
        line(f"valued in {report.prices.quote} at the commencement prices as of "
              f"{show_time(report.prices.as_of)} (rounded down); total "
              f"{document['value_total']} {report.prices.quote}")
    sections = _claims_sections(document)[1:]  # the case is the lines above
    print_sections(sections[:2])
    if report.unidentified:
        print_sections(sections[2:3])
        line(UNIDENTIFIED_NOTE)
    line(report.in_flight.note)
    if report.in_flight.items:
        print_sections(sections[3:])


def _caseline(title: str, cutoff: Any, case_no: str | None, administrator: str) -> str:
    case = f", case {case_no}" if case_no else ""
    return f"{title} {show_time(cutoff)} (administrator {administrator}{case})"


def _write_workbook(report: ClaimsReport, path: Path) -> None:
    from openpyxl import Workbook

    document = report.to_json()
    book = Workbook()
    about = book.active
    assert about is not None
    about.title = "Case"
    prices = document["prices"] or {}
    facts = [("cutoff", document["cutoff"]), ("case", document["case"]),
             ("administrator", document["administrator"]), ("quote", document["quote"]),
             ("prices_as_of", prices.get("as_of")), ("prices_sha256", prices.get("sha256")),
             ("value_total", document["value_total"]),
             ("in_flight", document["in_flight_note"]),
             ("amounts", "text cells holding exact decimals (never floats)")]
    about.append(["field", "value"])
    for name, value in facts:
        about.append([name, value])
    for section, title in zip(_claims_sections(document)[1:],
                              ("Claims", "Totals", "Unidentified", "In flight"), strict=True):
        sheet = book.create_sheet(title)
        sheet.append([column.name for column in section.columns])
        for row in section.rows:
            # Counts are numbers; every other cell is text, amounts included (exact).
            sheet.append([value if isinstance(value, int) else
                          (None if value is None else str(value))
                          for value in (row.get(column.name) for column in section.columns)])
    book.save(path)


POOL_COLUMNS = (Column("asset"), Column("pool", "amount"), Column("claims", "amount"),
                Column("unidentified", "amount"), Column("creditors", "count"), Column("coverage"),
                Column("coverage_fraction", header="coverage (exact)"),
                Column("shortfall", "amount"), Column("surplus", "amount"))
POOL_ACCOUNT_COLUMNS = (Column("asset"), Column("account"), Column("purpose"),
                        Column("amount", "amount"))


@admin_app.command("pool", help=(
    "Per asset, the priority pool (PSA 63-19-2: the segregated customer custody plus the "
    "guarantee custody of that asset; for fiat, the trust) against the claims at the "
    "cut-off: the pool, the claims (the creditors' and, counted in them, the unidentified "
    "receipts held in customer-pool suspense, which the pool stands for too), the coverage "
    "ratio (pool ÷ claims, rounded down at 6 "
    "decimals, and exactly as a fraction of minor units), the shortfall and the surplus; "
    "then each pool account. With --from-run the pool is the run's verified external "
    "balances (the run must be as of the cut-off or later and have a figure for every pool "
    "account); without it, the ledger's balances at the cut-off, and the output says they "
    "are not verified.\n\n"
    "--format json prints one document: cutoff, case, administrator, run_id, verified, "
    "basis, assets [asset, pool, claims, unidentified, creditors, coverage, coverage_fraction, shortfall, "
    "surplus, accounts [account, purpose, amount]]. --format csv prints one CSV in long "
    "form: a `section` column (assets, accounts) then the union of their columns.\n\n"
    + FREEZE_FIRST))
@handled
def pool_command(
    ctx: typer.Context,
    from_run: Annotated[str | None, typer.Option(
        "--from-run", help="Reconciliation run id whose external balances are the pool.",
        show_default=False)] = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    report = service.pool(ledger_service.connect(db_url(ctx)), from_run)
    document = report.to_json()
    sections = _pool_sections(document)
    if fmt is Format.TABLE:
        line(_caseline("Priority pool at the cut-off", report.freeze.cutoff,
                         report.freeze.case_no, report.freeze.administrator))
        line(report.basis)
        if report.pools.unidentified:
            line("the claims include receipts held in suspense, owed to creditors not yet "
                 "identified (see `admin claims`); " + UNIDENTIFIED_NOTE)
    emit_sections(fmt, document, sections)


def _pool_sections(document: Mapping[str, Any]) -> list[Section]:
    assets = [{column.name: item.get(column.name) for column in POOL_COLUMNS}
              for item in document["assets"]]
    accounts = [{"asset": item["asset"], **account} for item in document["assets"]
                for account in item["accounts"]]
    return [Section("assets", "Per asset", POOL_COLUMNS, assets),
            Section("accounts", "Pool accounts", POOL_ACCOUNT_COLUMNS, accounts)]


LOAD_RULES = (
    "The whole file is recorded or nothing is (exit 2 naming the file, line and field); a "
    "line already recorded exactly so is skipped and counted. ")


@elections_app.command("load", help=(
    "Record the creditors' elections for the general-estate plan: JSON {\"elections\": "
    "[{\"creditor\", \"option\", \"payment\"}]} or CSV with the header creditor,option,payment "
    "(a file starting with { is JSON). option is early (the lump-sum, the rest waived) or "
    "final; payment is crypto or fiat. " + LOAD_RULES + "An election never changes: a "
    "different one for a recorded creditor is refused, as is a creditor with no customer "
    "account and no dispute, or one named twice. " + FREEZE_FIRST))
@handled
def elections_load(ctx: typer.Context, file: Annotated[str, typer.Argument(
        help="Elections file (JSON or CSV); - reads stdin.", show_default=False)]) -> None:
    result = service.load_elections(ledger_service.connect(db_url(ctx)), file)
    print(f"elections: loaded {result.loaded}, skipped {result.unchanged} unchanged")


@elections_app.command("list", help=(
    "Every recorded election: creditor, option, payment, the file it came from and when. "
    "--format json prints a list, --format csv one row an election. " + FREEZE_FIRST))
@handled
def elections_list(ctx: typer.Context, fmt: FormatOption = Format.TABLE) -> None:
    rows = [{"creditor": record.election.creditor, "option": record.election.option,
             "payment": record.election.payment, "source": record.source,
             "loaded_at": show_time(record.loaded_at)}
            for record in service.elections(ledger_service.connect(db_url(ctx)))]
    emit(fmt, "Elections", [Column("creditor"), Column("option"), Column("payment"),
                            Column("source"), Column("loaded_at", "time")], rows)


@disputes_app.command("load", help=(
    "Record disputed claims and their rulings: JSON {\"disputes\": [{\"creditor\", \"asset\", "
    "\"claimed\", \"status\", \"allowed\"}]} or CSV with the header "
    "creditor,asset,claimed,status[,allowed] (a file starting with { is JSON). Amounts are "
    "decimal text in the asset's units, at most its decimals, above zero (a JSON number is "
    "refused). status open records the claim; allowed (with the amount allowed, at most the "
    "claimed) or rejected records the ruling, and the claim with it if it is new. "
    + LOAD_RULES + "A claimed amount never changes and a ruling is recorded once; an unknown "
    "creditor or asset, or the same creditor and asset twice, is refused. " + FREEZE_FIRST))
@handled
def disputes_load(ctx: typer.Context, file: Annotated[str, typer.Argument(
        help="Disputes file (JSON or CSV); - reads stdin.", show_default=False)]) -> None:
    result = service.load_disputes(ledger_service.connect(db_url(ctx)), file)
    print(f"disputes: loaded {result.loaded}, skipped {result.unchanged} unchanged")


@disputes_app.command("list", help=(
    "Every recorded dispute in its current state: creditor, asset, claimed, status (open, "
    "allowed, rejected), allowed, and where and when the claim and the ruling were recorded. "
    "--format json prints a list, --format csv one row a dispute. " + FREEZE_FIRST))
@handled
def disputes_list(ctx: typer.Context, fmt: FormatOption = Format.TABLE) -> None:
    rows = []
    for record, scale in service.disputes(ledger_service.connect(db_url(ctx))):
        dispute = record.dispute
        rows.append({
            "creditor": dispute.creditor, "asset": dispute.asset,
            "claimed": format_amount(dispute.claimed_minor, scale), "status": dispute.status,
            "allowed": format_amount(dispute.allowed_minor, scale)
            if dispute.status == "allowed" else None,
            "source": record.claimed_source, "loaded_at": show_time(record.claimed_at),
            "ruling_source": record.ruling_source,
            "ruled_at": show_time(record.ruled_at) or None})
    emit(fmt, "Disputes", [Column("creditor"), Column("asset"), Column("claimed", "amount"),
                           Column("status"), Column("allowed", "amount"), Column("source"),
                           Column("loaded_at", "time"), Column("ruling_source"),
                           Column("ruled_at", "time")], rows)


"""`segledger admin plan|distribute|payouts|status|statement` (registered on admin_cli).

Each command parses its options, calls one service function of ledger.administration
(payouts: the plan and its distribution; statement: confirmations, status, statements) and
formats what it returns: a table, one JSON document, a long-form CSV (a `section` column, as
`reconcile show` writes), or for a creditor's statement a text or a printable HTML page.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import jinja2
import typer

from ledger import service as ledger_service
from ledger.administration import payouts, statement
from ledger.administration.payouts import PlanResult
from ledger.administration.plan import Plan
from ledger.money import format_amount
from segledger.admin_case_cli import FREEZE_FIRST, OutOption
from segledger.admin_cli import admin_app, payouts_app
from segledger.common import db_url, handled, progress_bar
from segledger.output import Column, Format, check_new, group_digits, line, print_json, print_out, show_time
from segledger.reconcile_cli import (
    FormatOption,
    Section,
    emit_sections,
    print_sections,
    write_sections,
)

# --- admin plan -----------------------------------------------------------------------------


@admin_app.command("plan", help=(
    "Compute the distribution plan from the stored inputs, store it with its SHA-256 and show "
    "it. Tier 1 pays each asset's pool (customer custody plus guarantee custody) pro rata to "
    "the claims at the cut-off, in kind, rounded down at the asset's scale, the remainders "
    "kept in the pool. With --rules, tier 2 values what tier 1 leaves unpaid at the recorded "
    "commencement prices and pays it from the estate: basic payment, early lump-sum or final "
    "payment, reserves for open disputes. " + FREEZE_FIRST + "\n\n"
    "Rules file (JSON): {\"basic_payment\": \"200000\", \"early_share\": \"0.21\", \"estate\": "
    "\"2000000000\", \"pay_from\": ACCOUNT, \"charge_to\": ACCOUNT}: amounts as decimal text in "
    "the quote currency of the commencement prices (recorded first with `admin claims "
    "--prices`); pay_from a company custody account and charge_to a company account, both in "
    "the quote.\n\n"
    "--format json prints the plan's canonical document exactly as stored (one line, amounts "
    "in minor units as digit strings): the same inputs always give the same bytes and hash, "
    "and `admin distribute --plan` takes that file. --format csv prints one long-form CSV "
    "(sections plan, tier1_assets, tier1_lines, valuations, tier2, tier2_lines, disputes) "
    "with amounts in asset units."))
@handled
def plan_command(
    ctx: typer.Context,
    rules: Annotated[str | None, typer.Option(
        "--rules", help="Rules file (JSON) for tier 2; without it the plan is tier 1 only.",
        show_default=False)] = None,
    from_run: Annotated[str | None, typer.Option(
        "--from-run", help="Reconciliation run whose verified external balances are the pools "
        "(else the ledger's balances at the cut-off, not verified).", show_default=False)] = None,
    fmt: FormatOption = Format.TABLE,
    out: OutOption = None,
) -> None:
    check_new(out)  # before the plan is stored: a refusal writes nothing
    result = payouts.make_plan(ledger_service.connect(db_url(ctx)), rules, from_run)
    hash_line = (f"plan {result.stored.plan_hash} "
                 f"({'stored' if result.new else 'stored before'} at "
                 f"{show_time(result.stored.created_at)})")
    if out is not None:
        print_out(out, lambda: _show_plan(result, fmt))
        print(hash_line)
    elif fmt is Format.TABLE:
        _show_plan(result, fmt)
        line(hash_line)
    else:
        _show_plan(result, fmt)
        print(hash_line, file=sys.stderr)


def _show_plan(result: PlanResult, fmt: Format) -> None:
    if fmt is Format.JSON:
        sys.stdout.write(result.document.decode("ascii") + "\n")
    elif fmt is Format.CSV:
        write_sections(_plan_sections(result))
    else:
        _print_plan_head(result.plan)
        print_sections([section for section in _plan_sections(result)
                        if section.name not in ("plan", "tier2")])
        _print_tier2_foot(result.plan)


def _print_plan_head(plan: Plan) -> None:
    basis = plan.basis
    assert basis is not None, "a stored plan has its basis"
    case = f", case {basis.case_no}" if basis.case_no else ""
    line(f"Distribution plan{case}, administrator {basis.administrator}, cut-off "
          f"{show_time(basis.cutoff)}")
    line(f"pools: verified external balances of run {basis.run_id}" if basis.run_id else
          "pools: ledger figures, not verified (give --from-run RUN_ID for a reconciliation's)")
    rules = plan.rules
    if rules is None:
        line("tier 1 only: no rules (give --rules FILE for tier 2)")
        return
    assert plan.estate_minor is not None
    quote = _grouped(rules.quote_scale)
    line(f"rules: quote {rules.quote}, basic payment {quote(rules.basic_payment_minor)}, "
          f"early share {rules.early_share}, estate {quote(plan.estate_minor)}; prices "
          f"{', '.join(f'{a} {p}' for a, p in rules.prices.items()) or 'none needed'} "
          f"(table {basis.prices_sha256})")


def _print_tier2_foot(plan: Plan) -> None:
    if plan.tier2 is None or plan.rules is None:
        return
    quote, second = _grouped(plan.rules.quote_scale), plan.tier2
    prorated = [step for step, flag in (("basic payments", second.basic_prorated),
                                        ("early lump-sums", second.early_prorated)) if flag]
    line(f"tier 2: estate {quote(second.estate_minor)} {plan.rules.quote}, allotted "
          f"{quote(second.allocated_minor)}, left in the estate {quote(second.left_minor)}"
          + (f"; paid pro rata: {', '.join(prorated)}" if prorated else ""))


def _money(scale: int) -> Callable[[int], str]:
    return lambda minor: format_amount(minor, scale)


def _grouped(scale: int) -> Callable[[int], str]:
    """For the lines above and below the tables: digits grouped as the tables group them."""
    return lambda minor: group_digits(format_amount(minor, scale))


def _plan_sections(result: PlanResult) -> list[Section]:
    plan = result.plan
    basis, rules = plan.basis, plan.rules
    assert basis is not None
    scales = {asset.asset: asset.scale for asset in plan.tier1.assets}
    quote = _money(rules.quote_scale) if rules is not None else _money(0)
    head = {"plan": result.stored.plan_hash, "created_at": result.stored.created_at,
            "cutoff": basis.cutoff, "case": basis.case_no, "administrator": basis.administrator,
            "pool_source": basis.pool_source, "run_id": basis.run_id,
            "prices_sha256": basis.prices_sha256, "quote": rules.quote if rules else None,
            "basic_payment": quote(rules.basic_payment_minor) if rules else None,
            "early_share": str(rules.early_share) if rules else None,
            "estate": quote(plan.estate_minor) if plan.estate_minor is not None else None,
            "pay_from": basis.pay_from, "charge_to": basis.charge_to}
    sections = [
        Section("plan", "Plan", [Column(name, "time" if name in ("created_at", "cutoff")
                                        else "text") for name in head], [head]),
        Section("tier1_assets", "Tier 1 per asset (pool paid in kind)", (
            Column("asset"), Column("pool", "amount"), Column("claimed", "amount"),
            Column("paid", "amount"), Column("remainder", "amount"), Column("covered")),
            [{"asset": a.asset, "pool": format_amount(a.pool_minor, a.scale),
              "claimed": format_amount(a.claimed_minor, a.scale),
              "paid": format_amount(a.paid_minor, a.scale),
              "remainder": format_amount(a.remainder_minor, a.scale),
              "covered": "true" if a.covered else "false"} for a in plan.tier1.assets]),
        Section("tier1_lines", "Tier 1 per creditor", (
            Column("creditor"), Column("asset"), Column("claim", "amount"),
            Column("paid", "amount"), Column("shortfall", "amount")),
            [{"creditor": line.creditor, "asset": line.asset,
              **{name: format_amount(getattr(line, f"{name}_minor"), scales[line.asset])
                 for name in ("claim", "paid", "shortfall")}} for line in plan.tier1.lines]),
    ]
    if rules is None or plan.tier2 is None:
        return sections
    second = plan.tier2
    amounts = ("claim", "allowed", "disputed", "basic", "early", "final", "payable",
               "reserved", "total")
    return [*sections,
            Section("valuations", "Valued at the commencement prices", (
                Column("creditor"), Column("asset"), Column("source"), Column("amount", "amount"),
                Column("price", "amount"), Column("value", "amount")),
                [{"creditor": v.creditor, "asset": v.asset, "source": v.source,
                  "amount": format_amount(v.amount_minor, scales[v.asset]),
                  "price": str(v.price), "value": quote(v.value_minor)}
                 for v in plan.valuations]),
            Section("tier2", "Tier 2", [Column(name, "amount") for name in (
                "estate", "allocated", "left", "final_pool", "final_claims")] + [
                Column("basic_prorated"), Column("early_prorated")],
                [{**{name: quote(getattr(second, f"{name}_minor")) for name in (
                    "estate", "allocated", "left", "final_pool", "final_claims")},
                  "basic_prorated": second.basic_prorated,
                  "early_prorated": second.early_prorated}]),
            Section("tier2_lines", f"Tier 2 per creditor (in {rules.quote})", [
                Column("creditor"), Column("option"), Column("payment"), Column("elected"),
                *(Column(name, "amount") for name in amounts)],
                [{"creditor": line.creditor, "option": line.option, "payment": line.payment,
                  "elected": "true" if line.elected else "false",
                  **{name: quote(getattr(line, f"{name}_minor")) for name in amounts}}
                 for line in second.lines]),
            Section("disputes", "Disputes", (
                Column("creditor"), Column("asset"), Column("claimed", "amount"),
                Column("status"), Column("allowed", "amount")),
                [{"creditor": d.creditor, "asset": d.asset, "status": d.status,
                  "claimed": format_amount(d.claimed_minor, scales[d.asset]),
                  "allowed": format_amount(d.allowed_minor, scales[d.asset])}
                 for d in plan.disputes])]


# --- admin distribute, payouts confirm ------------------------------------------------------


@admin_app.command("distribute", help=(
    "Record a stored plan's payouts as `distribution` entries: tier 1 debits each creditor's "
    "claim account and credits the pool accounts (customer custody first, then guarantee); "
    "tier 2 debits the rules' charge_to and credits its pay_from. Each amount is what the "
    "plan allots less what earlier distributions paid the creditor there. Keys derive from "
    "the plan's hash and the creditor, so a run that is killed and started again completes "
    "and posts every payout exactly once. " + FREEZE_FIRST + "\n\n"
    "The file must be the plan exactly as `admin plan --format json` printed it, and the "
    "inputs (claims, pools, prices, elections, disputes) must still give that plan; else "
    "exit 2, naming what differs."))
@handled
def distribute_command(
    ctx: typer.Context,
    plan: Annotated[str, typer.Option(
        "--plan", help="The plan file, as `admin plan --format json` printed it.",
        show_default=False)],
    batch_size: Annotated[int, typer.Option(
        "--batch-size", help="Payouts per batch (each batch all or nothing).")]
    = payouts.DEFAULT_BATCH_SIZE,
) -> None:
    engine = ledger_service.connect(db_url(ctx))
    with progress_bar() as progress:
        result = payouts.distribute(engine, plan, batch_size=batch_size, progress=progress)
    settled = (f"; {result.settled} already paid in full by earlier plans"
               if result.settled else "")
    print(f"distributed {result.posted} payouts in {result.batches} batches, "
          f"{result.already} already recorded{settled}")


@payouts_app.command("confirm", help=(
    "Record the bank references and txids of payouts actually sent, each matched to its "
    "distribution entry: the whole file or nothing. A payout confirmed before with the same "
    "reference is skipped; a different reference for it is refused (exit 2), as is an "
    "entry that is not a distribution.\n\n"
    "JSON {\"payouts\": [{\"entry\": \"dist:…\", \"reference\": \"…\", \"sent_at\": "
    "\"2026-03-01T10:00:00+09:00\"}]} or CSV with the header entry,reference,sent_at "
    "(sent_at optional)."))
@handled
def confirm_command(ctx: typer.Context, file: Annotated[str, typer.Argument(
        help="Confirmations file (JSON or CSV).", show_default=False)]) -> None:
    result = statement.confirm(ledger_service.connect(db_url(ctx)), file)
    print(f"confirmed {result.confirmed} payouts, {result.unchanged} already confirmed")


# --- admin status ---------------------------------------------------------------------------

STATUS_AMOUNTS = ("planned", "paid", "confirmed", "outstanding", "unconfirmed", "reserved")
STATUS_COUNTS = ("payouts_planned", "payouts_paid", "payouts_confirmed")


@admin_app.command("status", help=(
    "Per tier and asset: planned (by the plan shown), paid (distributed, by any plan), "
    "confirmed (sent, with a reference), outstanding (planned, not yet distributed), "
    "unconfirmed (distributed, not yet confirmed), reserved for open disputes, and the "
    "payouts counted; then the total, valued at the commencement prices when they are "
    "recorded. The plan shown is the latest distributed one, else the latest stored. "
    + FREEZE_FIRST + "\n\n--format csv prints sections status and total."))
@handled
def status_command(ctx: typer.Context, fmt: FormatOption = Format.TABLE) -> None:
    document = statement.status(ledger_service.connect(db_url(ctx)))
    total = document["total"]
    columns = [Column("tier"), Column("asset"),
               *(Column(name, "amount") for name in STATUS_AMOUNTS),
               *(Column(name, "count", name.replace("payouts_", "payouts ")) for name in
                 STATUS_COUNTS)]
    sections = [Section("status", "Payouts per tier and asset", columns, document["rows"]),
                Section("total", f"Total (valued in {total['quote'] or 'n/a'})",
                        [Column("quote"), *columns[2:], Column("not_valued_because")], [total])]
    if fmt is Format.TABLE:
        line(_planline(document["plan"]))
        if document["latest_plan"] is not None:
            line(f"a later plan is stored and not distributed: "
                  f"{document['latest_plan']['hash']}")
    emit_sections(fmt, document, sections)


def _planline(plan: Mapping[str, Any] | None) -> str:
    if plan is None:
        return "no plan is stored yet (`segledger admin plan`)"
    pools = (f"pools of run {plan['run_id']}" if plan["run_id"] else
             "pools from ledger figures, not verified")
    return (f"plan {plan['hash']}, stored {show_time(plan['created_at'])}, {pools}"
            + ("" if plan["tier2"] else ", tier 1 only"))


# --- admin statement ------------------------------------------------------------------------


class StatementFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    HTML = "html"


@admin_app.command("statement", help=(
    "One creditor's statement, to be sent to them: the claim per asset at the cut-off and "
    "its value at the commencement prices, the election, disputes, tier 1 paid per asset "
    "in kind, tier 2 (basic, early lump-sum or final payment, reserved), each distribution "
    "with its key and, once confirmed, its reference, and what is still owed. "
    + FREEZE_FIRST + " An unknown customer is exit 2.\n\n"
    "--format html writes a self-contained page (no external resources) laid out for "
    "printing on A4, to save as PDF."))
@handled
def statement_command(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="The creditor's customer id.",
                                            show_default=False)],
    fmt: Annotated[StatementFormat, typer.Option(
        "--format", help="text, json (one document) or html (a printable page).")]
    = StatementFormat.TEXT,
    out: OutOption = None,
) -> None:
    document = statement.statement(ledger_service.connect(db_url(ctx)), customer)
    if fmt is StatementFormat.JSON:
        def write() -> None:
            print_json(document)
    elif fmt is StatementFormat.HTML:
        page = render_html(document)

        def write() -> None:
            sys.stdout.write(page)
    else:
        def write() -> None:
            sys.stdout.write(statement_text(document))
    if out is None:
        write()
    else:
        print_out(out, write)
        print(f"wrote the statement of {customer} to {out}")


def _shown_times(value: Any) -> Any:
    """The document with its times as the user's zone shows them (for text and HTML)."""
    if isinstance(value, datetime):
        return show_time(value)
    if isinstance(value, Mapping):
        return {key: _shown_times(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shown_times(item) for item in value]
    return value


def render_html(document: Mapping[str, Any]) -> str:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("segledger", "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
        lstrip_blocks=True)
    return environment.get_template("statement.html.j2").render(doc=_shown_times(document))


def statement_text(document: Mapping[str, Any]) -> str:
    doc = _shown_times(document)
    case, plan = doc["case"], doc["plan"]
    lines = [f"Statement of creditor {doc['creditor']}",
             f"case {case['case'] or '-'}, administrator {case['administrator']}, "
             f"cut-off {case['cutoff']}",
             _planline(document["plan"]) if plan else "no plan yet", ""]
    lines += _text_block("Claims at the cut-off", doc["claims"], ("asset", "claim", "price",
                                                                   "value"))
    election = doc["election"]
    lines += ["Election: " + (f"{election['option']} payment, in {election['payment']}"
                              if election else "none (the final payment in fiat applies)"), ""]
    lines += _text_block("Disputes", doc["disputes"], ("asset", "claimed", "status", "allowed"))
    lines += _text_block("Tier 1, paid in kind", doc["tier1"], ("asset", "claim", "paid",
                                                                 "shortfall"))
    second = doc["tier2"]
    lines += _text_block("Tier 2, from the general estate", [second] if second else [], (
        "asset", "claim", "basic", "early", "final", "payable", "reserved"))
    lines += _text_block("Distributed", doc["distributed"], (
        "entry", "tier", "asset", "amount", "reference", "sent_at"))
    lines += _text_block("Still owed", doc["owed"], ("tier", "asset", "to_distribute",
                                                      "reserved"))
    lines += _text_block("The ledger now (claim less tier-1 distributions)", doc["ledger_now"],
                         ("account", "asset", "balance"))
    return "\n".join(lines).rstrip("\n") + "\n"


def _text_block(title: str, rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    if not rows:
        return [f"{title}: none", ""]
    cells = [[name for name in names]] + [["" if row.get(name) is None else str(row[name])
                                           for name in names] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(names))]
    return [f"{title}:", *("  " + "  ".join(cell.ljust(width) for cell, width in
                                            zip(row, widths, strict=True)).rstrip()
                           for row in cells), ""]

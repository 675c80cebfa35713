"""Reading the ledger from the command line: balances, an account's register, one entry, and
the closed periods. Each command parses its options, calls one service function, formats."""

from __future__ import annotations

import json
import sys
from functools import partial
from typing import Annotated, Any

import typer

from ledger import service, views
from ledger.errors import InputError, shown
from ledger.model import Pool, Role
from ledger.money import format_amount
from ledger.storage.reading import AccountFilter, close_period
from segledger.common import db_url, handled
from segledger.output import Column, Format, emit, print_table, show_time

FormatOption = Annotated[Format, typer.Option("--format", help="table, json or csv.")]

entry_app = typer.Typer(help="Journal entries, one at a time.", no_args_is_help=True)
period_app = typer.Typer(help="Closed accounting periods.", no_args_is_help=True)


def install(app: typer.Typer) -> None:
    """Add these commands to the main `segledger` app."""
    app.command("balances")(balances)
    app.command("register")(register)
    app.add_typer(entry_app, name="entry")
    app.add_typer(period_app, name="period")


@handled
def balances(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option(
        "--as-of", help="ISO 8601 time with offset; entries dated up to it count.")] = "now",
    account: Annotated[list[str] | None, typer.Option(
        "--account", help="Only this account (exact code); repeatable. Listed even at zero.",
        show_default=False)] = None,
    prefix: Annotated[str | None, typer.Option(
        "--prefix", help="Only accounts whose code starts so, e.g. customer:c-001:.")] = None,
    asset: Annotated[list[str] | None, typer.Option(
        "--asset", help="Only accounts of this asset; repeatable.", show_default=False)] = None,
    pool: Annotated[str | None, typer.Option(
        "--pool", help="Only accounts of this pool: customer or company.")] = None,
    role: Annotated[str | None, typer.Option(
        "--role", help=f"Only accounts of this role: {', '.join(Role)}.")] = None,
    non_zero: Annotated[bool, typer.Option(
        "--non-zero", help="Leave out accounts whose balance is zero.")] = False,
    totals: Annotated[bool, typer.Option(
        "--totals", help="Show only the totals per asset (in every format).")] = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Normal-side balances at an effective time, with totals per asset.

    The table lists the accounts and, after a rule, the total per asset in bold: the sum of
    the shown accounts' normal-side balances (so pick a pool or role to make it meaningful).
    JSON and CSV keep their documented shape, a plain list of {account, asset, balance} that
    batch jobs already read; --totals switches every format to the totals alone
    ({asset, accounts, total}), so a script gets them without summing decimals itself.
    """
    at = service.parse_instant(as_of, "--as-of")
    where = AccountFilter(codes=tuple(account or ()), prefix=prefix, assets=tuple(asset or ()),
                          pool=_choice(Pool, pool, "--pool"), role=_choice(Role, role, "--role"))
    result = views.balances(service.connect(db_url(ctx)), at, where, non_zero=non_zero)
    if result.notice:
        print(f"note: {result.notice}", file=sys.stderr)
    title = f"Balances as of {show_time(at)}"
    sums = [{"asset": total.asset, "accounts": total.accounts,
             "total": format_amount(total.total_minor, total.scale)} for total in result.totals]
    if totals:
        emit(fmt, title, [Column("asset"), Column("accounts", "count"), Column("total", "amount")],
             sums)
        return
    rows = [{"account": row.account, "asset": row.asset,
             "balance": format_amount(row.balance_minor, row.scale)} for row in result.rows]
    total_rows = [{"account": f"total of {_accounts(total.accounts)}", "asset": total.asset,
                   "balance": format_amount(total.total_minor, total.scale)}
                  for total in result.totals]
    emit(fmt, title, [Column("account"), Column("asset"), Column("balance", "amount")], rows,
         totals=total_rows)


def _accounts(count: int) -> str:
    return "1 account" if count == 1 else f"{count:,} accounts"


def _choice(kind: type[Pool] | type[Role], value: str | None, option: str) -> Any:
    """An enumerated option, refused in one line (click's own refusal is a boxed screenful)."""
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise InputError(f"{shown(value)} is not one of {', '.join(kind)}", field=option) from None


@handled
def register(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="The account's exact code.", show_default=False)],
    since: Annotated[str | None, typer.Option(
        "--since", help="First effective time shown (ISO 8601, inclusive); the running balance "
        "starts from the balance before it.")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Last effective time shown (ISO 8601, inclusive).")] = None,
    limit: Annotated[int, typer.Option(
        "--limit", help="Show at most this many postings, the earliest first; a note on stderr "
        f"says when more follow (1 to {views.MAX_REGISTER_LINES:,}).")] = 1_000,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """An account's postings in effective-time order with a running balance.

    Amounts and balances are on the account's normal side (a deposit raises both a custody
    and a customer account). Ties in time go by entry id and line; `line` is the index in
    the entry's lines (lines[0] is the first); the counter-account is the other side of it.
    """
    start = service.parse_instant(since, "--since") if since else None
    end = service.parse_instant(until, "--until") if until else None
    result = views.register(service.connect(db_url(ctx)), account, since=start, until=end,
                            limit=limit)
    amount = partial(format_amount, scale=result.scale)
    rows = [{"entry": line.entry_key, "type": line.entry_type,
             "effective_at": show_time(line.effective_at), "line": line.line_no,
             "counter_account": line.counter_account, "amount": amount(line.amount_minor),
             "balance": amount(line.balance_minor)} for line in result.lines]
    columns = [Column("effective_at", "time"), Column("entry"), Column("type"),
               Column("line", "count"), Column("counter_account"), Column("amount", "amount"),
               Column("balance", "amount")]
    title = f"Register of {account} ({result.asset}, {result.normal_side} normal)"
    if fmt is Format.TABLE and start:
        # The running balance starts from here: shown as the first row, where it reads as one.
        opening = {"effective_at": show_time(start), "entry": "(balance before)",
                   "balance": amount(result.opening_minor)}
        print_table(title, columns, [opening, *rows])
    else:
        emit(fmt, title, columns, rows, {
            "account": account, "asset": result.asset, "normal_side": result.normal_side,
            "since": show_time(start) or None, "until": show_time(end) or None,
            "opening_balance": amount(result.opening_minor),
            "closing_balance": amount(result.closing_minor), "more": result.more,
            "postings": rows})
    if result.more:
        print(f"note: more postings follow the {len(rows)} shown; narrow --since/--until or "
              "raise --limit", file=sys.stderr)


@entry_app.command("show")
@handled
def entry_show(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The entry's key.", show_default=False)],
    fmt: Annotated[Format, typer.Option(
        "--format", help="table, json or csv (CSV: the lines, one row each, with the key).")
    ] = Format.TABLE,
) -> None:
    """One entry: its fields, what it reverses or is reversed by, its batch, and its lines."""
    found = views.entry(service.connect(db_url(ctx)), key)
    entry = found.entry
    lines = [{"key": entry.key, "line": line.line_no, "debit": line.debit, "credit": line.credit,
              "asset": line.asset, "amount": format_amount(line.amount_minor,
                                                            found.scales[line.asset])}
             for line in entry.lines]
    line_columns = [Column("line", "count"), Column("debit"), Column("credit"), Column("asset"),
                    Column("amount", "amount")]
    fields: dict[str, Any] = {
        "key": entry.key, "type": entry.type, "effective_at": show_time(entry.effective_at),
        "recorded_at": show_time(entry.recorded_at), "memo": entry.memo,
        "metadata": dict(entry.metadata), "reverses": entry.reverses,
        "reversed_by": entry.reversed_by,
        "batch": {"id": entry.batch_id, "source": entry.batch_source}}
    if fmt is Format.JSON:
        emit(fmt, "", [], [], {**fields, "lines": [
            {k: v for k, v in line.items() if k != "key"} for line in lines]})
    elif fmt is Format.CSV:
        emit(fmt, "", [Column("key"), *line_columns], lines)
    else:
        shown = {**fields, "metadata": json.dumps(fields["metadata"], ensure_ascii=False,
                                                  sort_keys=True),
                 "batch": f"{entry.batch_id} ({entry.batch_source})"}
        print_table(f"Entry {entry.key}", [Column("field"), Column("value")],
                    [{"field": name, "value": value} for name, value in shown.items()])
        print_table("Lines", line_columns, lines)


@period_app.command("close")
@handled
def period_close(
    ctx: typer.Context,
    through: Annotated[str, typer.Option(
        "--through", help="Last instant of the closed period (ISO 8601 with offset).",
        show_default=False)],
    by: Annotated[str, typer.Option("--by", help="Who closes it (kept with the close).")
                  ] = "segledger",
    note: Annotated[str | None, typer.Option("--note", help="Why, or a reference.")] = None,
) -> None:
    """Close every effective time up to --through: later entries dated in it are refused.

    Closing again through the same instant is harmless (exit 0, nothing changes); an
    instant earlier than the current close is refused (exit 2): a close never moves back.
    """
    at = service.parse_instant(through, "--through")
    if close_period(service.connect(db_url(ctx)), at, by, note):
        print(f"closed through {show_time(at)}")
    else:
        print(f"already closed through {show_time(at)}; nothing changed")


@period_app.command("list")
@handled
def period_list(ctx: typer.Context, fmt: FormatOption = Format.TABLE) -> None:
    """Every close, earliest first: through when, when it was closed, by whom, and why."""
    rows = [{"through": show_time(period.closed_through), "closed_at": show_time(period.closed_at),
             "closed_by": period.closed_by, "note": period.note}
            for period in views.closed_periods(service.connect(db_url(ctx)))]
    emit(fmt, "Closed periods", [Column("through", "time"), Column("closed_at", "time"),
                                 Column("closed_by"), Column("note")], rows)

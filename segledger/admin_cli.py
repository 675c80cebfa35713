"""`segledger admin …`: the court-appointed administrator's commands.

The Typer apps live here; the commands are in two modules that register on them:
admin_case_cli (freeze, record, claims, pool, elections, disputes) and admin_plan_cli (plan,
distribute, payouts, status, statement). Like every command, they parse options, call one
service function of ledger.administration and format what it returns.
"""

from __future__ import annotations

import typer

admin_app = typer.Typer(
    help="Bankruptcy administration: freeze the ledger at a cut-off, claims, the priority "
         "pool, elections and disputes, the distribution plan, payouts.",
    no_args_is_help=True)
elections_app = typer.Typer(help="Creditors' elections for the general-estate plan.",
                            no_args_is_help=True)
disputes_app = typer.Typer(help="Disputed claims and their rulings.", no_args_is_help=True)
payouts_app = typer.Typer(help="Payouts actually sent (bank references, txids).",
                          no_args_is_help=True)
admin_app.add_typer(elections_app, name="elections")
admin_app.add_typer(disputes_app, name="disputes")
admin_app.add_typer(payouts_app, name="payouts")

# Imported for their side effect: each registers its commands on the apps above.
from segledger import admin_case_cli, admin_plan_cli  # noqa: E402, F401

"""Loading a chart: new assets and accounts are added, identical ones left, changed ones refused."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from ledger.chart import Chart, check_chart
from ledger.errors import InputError
from ledger.storage.engine import for_writing
from ledger.storage.rows import insert_accounts, insert_assets, load_accounts, load_assets, utcnow


@dataclass(frozen=True)
class ChartResult:
    assets_added: int
    accounts_added: int
    unchanged: int


def load_chart(engine: Engine, chart: Chart, source: str) -> ChartResult:
    check_chart(chart, source)
    with for_writing(engine).begin() as connection:
        stored_assets = load_assets(connection)
        new_assets = []
        unchanged = 0
        for asset in {a.code: a for a in chart.assets}.values():
            stored = stored_assets.get(asset.code)
            if stored is None:
                new_assets.append(asset)
                stored_assets[asset.code] = asset
            elif stored != asset:
                raise InputError(
                    f"redefines asset {asset.code}: stored as {stored}, the chart says {asset}",
                    source=source, line=chart.lines.get(asset.code), field="assets")
            else:
                unchanged += 1
        stored_accounts = load_accounts(connection, [a.code for a in chart.accounts])
        new_accounts = []
        for account in {a.code: a for a in chart.accounts}.values():
            if account.asset not in stored_assets:
                raise InputError(f"account {account.code} is on unknown asset {account.asset}",
                                 source=source, line=chart.lines.get(account.code),
                                 field="accounts.asset")
            if account.code in stored_accounts:
                before = stored_accounts[account.code][1].describe()
                after = account.describe()
                changed = sorted(k for k in after if before[k] != after[k])
                if changed:
                    raise InputError(
                        f"redefines account {account.code}: {changed[0]} is "
                        f"{before[changed[0]]!r} in the ledger, {after[changed[0]]!r} in the chart",
                        source=source, line=chart.lines.get(account.code),
                        field=f"accounts.{changed[0]}")
                unchanged += 1
            else:
                new_accounts.append(account)
        now = utcnow()
        insert_assets(connection, new_assets, now)
        insert_accounts(connection, new_accounts, now)
    return ChartResult(len(new_assets), len(new_accounts), unchanged)

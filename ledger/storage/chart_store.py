"""Loading a chart: new assets and accounts are added, identical ones left, changed ones refused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from ledger.chart import Chart, check_chart
from ledger.errors import InputError, shown
from ledger.model import Asset
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
                before, after = _asset_fields(stored), _asset_fields(asset)
                changed = sorted(k for k in after if before[k] != after[k])
                raise InputError(
                    f"redefines asset {asset.code}: {changed[0]} is {_as_written(before[changed[0]])}"
                    f" in the ledger, {_as_written(after[changed[0]])} in the chart",
                    source=source, line=chart.lines.get(asset.code),
                    field=f"assets.{changed[0]}")
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
                        f"{_as_written(before[changed[0]])} in the ledger, "
                        f"{_as_written(after[changed[0]])} in the chart",
                        source=source, line=chart.lines.get(account.code),
                        field=f"accounts.{changed[0]}")
                unchanged += 1
            else:
                new_accounts.append(account)
        now = utcnow()
        insert_assets(connection, new_assets, now)
        insert_accounts(connection, new_accounts, now)
    return ChartResult(len(new_assets), len(new_accounts), unchanged)


def _asset_fields(asset: Asset) -> dict[str, Any]:
    """The defining fields of an asset, for saying which one a chart changes."""
    return {"kind": asset.kind.value, "scale": asset.scale, "chain": asset.chain,
            "contract": asset.contract}


def _as_written(value: Any) -> str:
    """A stored or charted field for a message: `external` as the JSON a chart holds, text in
    quotes, a field left out as unset; never Python's repr."""
    if value is None:
        return "unset"
    if isinstance(value, dict):
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
        return text if len(text) <= 200 else text[:200] + "…"
    return shown(value)

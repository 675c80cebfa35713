"""The synthetic exchange's chart of accounts: 4 assets and about 100 custody accounts.

JPY (fiat, scale 0) in 10 trust bank accounts; BTC (scale 8), ETH (scale 18) and USDC (scale
6) each in 24 cold and 6 hot wallets, all in the customer pool; the company's operating and
reserve bank accounts and a guarantee cold wallet per crypto asset; equity, fee revenue and the
liability reserve. Customer accounts (`customer:c0000001:JPY`) open on first use.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class AssetSpec:
    code: str
    kind: str
    scale: int
    price_jpy: int  # of one whole unit
    deposit: tuple[int, int]  # a deposit's range, in minor units
    chain: str | None = None
    contract: str | None = None


ASSETS = (
    AssetSpec("JPY", "fiat", 0, 1, (10_000, 1_000_000)),
    AssetSpec("BTC", "crypto", 8, 15_000_000, (100_000, 50_000_000), "bitcoin"),
    # Small amounts: on SQLite a balance is a signed 64-bit integer, 9.22 ETH at 18 decimals.
    AssetSpec("ETH", "crypto", 18, 500_000, (10**14, 5 * 10**15), "ethereum"),
    AssetSpec("USDC", "crypto", 6, 150, (10 * 10**6, 10_000 * 10**6), "ethereum",
              "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
)
SPECS = {spec.code: spec for spec in ASSETS}
CRYPTO = tuple(spec.code for spec in ASSETS if spec.kind == "crypto")
TRUST_ACCOUNTS, COLD_WALLETS, HOT_WALLETS = 10, 24, 6

OPERATING, RESERVE = "custody:company:operating:JPY", "custody:company:reserve:JPY"
FEES, RESERVE_LIABILITY = "revenue:fees:JPY", "reserve:liability:JPY"


def trust(k: int) -> str:
    return f"custody:customer:trust{k:02d}:JPY"


def cold(asset: str, k: int) -> str:
    return f"custody:customer:cold{k:02d}:{asset}"


def hot(asset: str, k: int) -> str:
    return f"custody:customer:hot{k:02d}:{asset}"


def guarantee(asset: str) -> str:
    return f"custody:company:guarantee:{asset}"


def capital(asset: str) -> str:
    return f"equity:capital:{asset}"


def customer(i: int, asset: str) -> str:
    return f"customer:c{i:07d}:{asset}"


_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def address(code: str, chain: str | None) -> str:
    digest = hashlib.sha256(code.encode()).digest()
    if chain == "bitcoin":
        return "bc1q" + "".join(_BECH32[b % 32] for b in digest[:38])
    return "0x" + digest.hex()[:40]


def custody_accounts() -> list[dict[str, Any]]:
    """Every custody account of the chart: 10 trust accounts, 24 cold and 6 hot wallets per
    crypto asset (100 in the customer pool), the company's operating, reserve and guarantee."""
    found: list[dict[str, Any]] = [
        {"code": trust(k), "asset": "JPY", "pool": "customer", "role": "custody",
         "location": "bank_trust", "external": {"bank_account": str(9_100_000 + k)}}
        for k in range(TRUST_ACCOUNTS)]
    for asset in CRYPTO:
        chain = SPECS[asset].chain
        for code, location in ([(cold(asset, k), "cold_wallet") for k in range(COLD_WALLETS)]
                               + [(hot(asset, k), "hot_wallet") for k in range(HOT_WALLETS)]):
            found.append({"code": code, "asset": asset, "pool": "customer", "role": "custody",
                          "location": location, "external": {"addresses": [address(code, chain)]}})
        found.append({"code": guarantee(asset), "asset": asset, "pool": "company",
                      "role": "custody", "location": "cold_wallet", "purpose": "guarantee",
                      "external": {"addresses": [address(guarantee(asset), chain)]}})
    found.append({"code": OPERATING, "asset": "JPY", "pool": "company", "role": "custody",
                  "location": "bank", "external": {"bank_account": "8100001"}})
    found.append({"code": RESERVE, "asset": "JPY", "pool": "company", "role": "custody",
                  "location": "bank", "purpose": "reserve",
                  "external": {"bank_account": "8100002"}})
    return found


def chart() -> dict[str, Any]:
    assets = []
    for spec in ASSETS:
        asset: dict[str, Any] = {"code": spec.code, "kind": spec.kind, "scale": spec.scale}
        if spec.chain:
            asset["chain"] = spec.chain
        if spec.contract:
            asset["contract"] = spec.contract
        assets.append(asset)
    others = [{"code": capital(spec.code), "asset": spec.code, "pool": "company",
               "role": "equity"} for spec in ASSETS]
    others += [{"code": FEES, "asset": "JPY", "pool": "company", "role": "revenue"},
               {"code": RESERVE_LIABILITY, "asset": "JPY", "pool": "company", "role": "reserve"}]
    return {"assets": assets, "accounts": custody_accounts() + others}


def write_chart(path: Path) -> Path:
    path.write_text(json.dumps(chart(), indent=1) + "\n", "utf-8")
    return path

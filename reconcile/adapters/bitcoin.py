"""Bitcoin Core JSON-RPC: custody balances from the UTXO set with `scantxoutset`.

Scans the addresses and descriptors in each custody account's `external`, and records the
block height and hash the scan saw. Litecoin Core speaks the same RPC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ledger.errors import InputError
from reconcile.chains import ChainConfig, RpcCall, RpcError
from reconcile.evidence import Movement, Observation

SATOSHI_SCALE = 8


def scan_objects(external: Mapping[str, Any], descriptor_range: int) -> list[Any]:
    objects: list[Any] = [f"addr({address})" for address in external.get("addresses", [])]
    for descriptor in external.get("descriptors", []):
        objects.append({"desc": descriptor, "range": descriptor_range} if "*" in descriptor
                       else descriptor)
    return objects


def observe(rpc: RpcCall, config: ChainConfig, account: str, asset: str,
            external: Mapping[str, Any]) -> Observation:
    objects = scan_objects(external, config.descriptor_range)
    if not objects:
        raise InputError(f"custody account {account} has no addresses or descriptors to scan",
                         field="external")
    result = rpc("scantxoutset", ["start", objects])
    if not isinstance(result, dict) or not result.get("success", False):
        raise RpcError(f"chain {config.name}: scantxoutset did not succeed for {account}")
    unspents: Sequence[dict[str, Any]] = result.get("unspents", [])
    total_minor = sum(_satoshi(u.get("amount"), config.name) for u in unspents)
    height = int(result["height"])
    block_hash = result.get("bestblock") or rpc("getblockhash", [height])
    header = rpc("getblockheader", [block_hash])
    block_time = datetime.fromtimestamp(int(header["time"]), tz=UTC)
    movements = tuple(
        Movement(amount=Decimal(_satoshi(u["amount"], config.name)).scaleb(-SATOSHI_SCALE),
                 booked_on=block_time.date(), reference=str(u["txid"]),
                 description=f"utxo {u['txid']}:{u['vout']} at height {u.get('height')}")
        for u in sorted(unspents, key=lambda u: (str(u["txid"]), int(u["vout"]))))
    return Observation(
        source=f"chain:{config.name}", kind="bitcoin", account={"account": account},
        currency=asset, amount=Decimal(total_minor).scaleb(-SATOSHI_SCALE), as_of=block_time,
        movements=movements, raw_minor=total_minor, raw_scale=SATOSHI_SCALE,
        facts={"height": height, "block_hash": block_hash, "utxos": len(unspents),
               "scanned": objects})


def _satoshi(amount: Any, chain: str) -> int:
    """A BTC amount from JSON (parsed as Decimal) to satoshi, refusing anything inexact."""
    if not isinstance(amount, (Decimal, int)) or isinstance(amount, bool):
        raise RpcError(f"chain {chain}: an amount in the answer is not a number: {amount!r}")
    value = Decimal(amount).scaleb(SATOSHI_SCALE)
    if value != value.to_integral_value() or value < 0:
        raise RpcError(f"chain {chain}: amount {amount} is not a whole number of satoshi")
    return int(value)

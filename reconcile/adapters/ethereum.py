"""Ethereum: ETH with `eth_getBalance`, ERC-20 tokens with `balanceOf`, all at one pinned block.

Spoken through web3.py, so the same code reads a node over HTTP (geth, anvil, a provider)
and eth-tester's in-process EVM in the tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ledger.errors import EnvironmentFailure, InputError
from reconcile.chains import ChainConfig, RpcError, credentials
from reconcile.evidence import Observation

WEI_SCALE = 18
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
# The two ERC-20 functions read; nothing else of a token's ABI is needed.
ERC20_ABI = [
    {"name": "balanceOf", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "decimals", "type": "function", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint8"}]},
]


@dataclass(frozen=True)
class Block:
    number: int
    hash: str
    time: datetime


def connect(config: ChainConfig, environ: Mapping[str, str]) -> Any:
    """A web3 client on the node of the chain config (HTTP; credentials from the environment)."""
    from web3 import HTTPProvider, Web3

    request: dict[str, Any] = {"timeout": config.timeout_s}
    auth = credentials(config, environ)
    if auth is not None:
        import base64

        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        # Headers given here replace web3's own, so the content type is repeated.
        request["headers"] = {"Content-Type": "application/json",
                              "Authorization": f"Basic {token}"}
    return Web3(HTTPProvider(config.url, request_kwargs=request))


def _guard(config: ChainConfig, what: str, call: Any) -> Any:
    """Node failures become exit 3 (unreachable) or a clear RPC error, never a traceback."""
    import requests
    from web3.exceptions import Web3Exception

    try:
        return call()
    except (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError):
        raise EnvironmentFailure(f"chain {config.name}: node at {config.url} unreachable") from None
    except (Web3Exception, ValueError, requests.RequestException) as error:
        raise RpcError(f"chain {config.name}: {what} failed: {str(error)[:200]}") from None


def pin_block(w3: Any, config: ChainConfig) -> Block:
    """The block all balances of one run are read at."""
    block = _guard(config, f"eth_getBlockByNumber({config.block})",
                   lambda: w3.eth.get_block(config.block))
    block_hash = block["hash"]
    return Block(int(block["number"]),
                 block_hash.to_0x_hex() if hasattr(block_hash, "to_0x_hex") else str(block_hash),
                 datetime.fromtimestamp(int(block["timestamp"]), UTC))


def observe(w3: Any, config: ChainConfig, account: str, asset: str, contract: str | None,
            external: Mapping[str, Any], block: Block) -> Observation:
    addresses = list(external.get("addresses", []))
    if not addresses:
        raise InputError(f"custody account {account} has no addresses", field="external")
    for address in addresses:
        if not ADDRESS.match(address):
            raise InputError(f"custody account {account}: {address!r} is not an Ethereum address",
                             field="external.addresses")
    checksummed = [w3.to_checksum_address(address) for address in addresses]
    scale, total = WEI_SCALE, 0
    if contract:
        token = w3.eth.contract(address=w3.to_checksum_address(contract), abi=ERC20_ABI)
        scale = int(_guard(config, "decimals()", lambda: token.functions.decimals().call(
            block_identifier=block.number)))
    for address in checksummed:
        if contract:
            raw = _guard(config, f"balanceOf({address})", lambda a=address: token.functions
                         .balanceOf(a).call(block_identifier=block.number))
        else:
            raw = _guard(config, f"eth_getBalance({address})",
                         lambda a=address: w3.eth.get_balance(a, block_identifier=block.number))
        if not isinstance(raw, int) or raw < 0:
            raise RpcError(f"chain {config.name}: balance of {address} is not a quantity")
        total += raw
    return Observation(
        source=f"chain:{config.name}", kind="ethereum", account={"account": account},
        currency=asset, amount=Decimal(total).scaleb(-scale), as_of=block.time, raw_minor=total,
        raw_scale=scale,
        facts={"block_number": block.number, "block_hash": block.hash, "contract": contract,
               "addresses": addresses})

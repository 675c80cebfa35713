"""Chain evidence from real nodes: a litecoind -regtest node (Bitcoin Core's RPC) and
eth-tester's in-process EVM with a compiled ERC-20; anvil over HTTP where it is installed."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import EnvironmentFailure, InputError
from reconcile.adapters import bitcoin, ethereum
from reconcile.chains import ChainConfig, RpcError, http_rpc, parse_chain_config
from reconcile.engine import to_minor
from tests.chainnodes import RegtestNode

DATA = Path(__file__).parent / "data"


def _config(url: str, kind: str = "bitcoin", **extra: Any) -> ChainConfig:
    return ChainConfig(kind, kind, url, extra.get("user_env"), extra.get("password_env"), 10,
                       100, extra.get("block", "latest"))


def _env(node: RegtestNode) -> dict[str, str]:
    return {"LTC_USER": node.user, "LTC_PASSWORD": node.password}


def custody_addresses(node: RegtestNode, count: int) -> list[str]:
    """Addresses of a wallet that never spends, so that coin selection leaves its coins alone."""
    import uuid

    wallet = f"custody-{uuid.uuid4().hex[:8]}"
    node.call("createwallet", wallet)
    return [node.call("getnewaddress", wallet=wallet) for _ in range(count)]


def test_scantxoutset_sums_custody_addresses_at_a_recorded_block(regtest: RegtestNode) -> None:
    first, second = custody_addresses(regtest, 2)
    regtest.call("sendtoaddress", first, "1.25", wallet="exchange")
    regtest.call("sendtoaddress", second, "0.00012345", wallet="exchange")
    regtest.call("sendtoaddress", second, "2.5", wallet="exchange")
    miner = regtest.call("getnewaddress", wallet="exchange")
    regtest.call("generatetoaddress", 1, miner, wallet="exchange")
    config = _config(regtest.url, user_env="LTC_USER", password_env="LTC_PASSWORD")
    rpc = http_rpc(config, _env(regtest))
    observation = bitcoin.observe(rpc, config, "custody:customer:cold:BTC", "BTC",
                                  {"addresses": [first, second]})
    assert observation.amount == Decimal("3.75012345")
    assert observation.raw_minor == 375_012_345
    assert observation.facts["height"] == regtest.call("getblockcount")
    assert observation.facts["block_hash"] == regtest.call("getbestblockhash")
    assert len(observation.movements) == 3
    assert to_minor(observation.amount, 8) == (375_012_345, Decimal(0))


def test_credentials_come_from_the_environment_and_are_checked(regtest: RegtestNode) -> None:
    config = _config(regtest.url, user_env="LTC_USER", password_env="LTC_PASSWORD")
    with pytest.raises(InputError, match=r"credentials expected in \$LTC_USER"):
        http_rpc(config, {})
    wrong = http_rpc(config, {"LTC_USER": regtest.user, "LTC_PASSWORD": "wrong"})
    with pytest.raises(RpcError, match="HTTP 401"):
        wrong("getblockcount", [])


def test_a_node_that_is_down_is_an_environment_failure() -> None:
    rpc = http_rpc(_config("http://127.0.0.1:9"), {})
    with pytest.raises(EnvironmentFailure, match="unreachable"):
        rpc("getblockcount", [])


@pytest.fixture
def garbage_server() -> Iterator[str]:
    """A loopback HTTP server that answers every request with something that is not JSON-RPC."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>surprise</html>")

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_node_that_answers_garbage_is_a_clear_error(garbage_server: str) -> None:
    rpc = http_rpc(_config(garbage_server), {})
    with pytest.raises(RpcError, match="not JSON"):
        rpc("scantxoutset", ["start", []])


def test_chain_config_is_validated_and_keeps_no_secret() -> None:
    content = json.dumps({"chains": {"bitcoin": {
        "kind": "bitcoin", "url": "http://127.0.0.1:8332", "user_env": "U",
        "password_env": "P"}}}).encode()
    config = parse_chain_config(content, "chains.json")["bitcoin"]
    assert config.public() == {"name": "bitcoin", "kind": "bitcoin",
                               "url": "http://127.0.0.1:8332", "block": "latest",
                               "user_env": "U", "password_env": "P"}
    with pytest.raises(InputError, match=r"chains\.bitcoin\.timeout_s"):
        parse_chain_config(json.dumps({"chains": {"bitcoin": {
            "kind": "bitcoin", "url": "http://x", "timeout_s": 0}}}).encode(), "c.json")


@pytest.fixture(scope="module")
def evm() -> Any:
    """eth-tester's in-process EVM, with the committed ERC-20 deployed and funds moved."""
    from web3 import EthereumTesterProvider, Web3

    w3 = Web3(EthereumTesterProvider())
    return w3, w3.eth.accounts[1], deploy_token(w3, 1_234_567)


def deploy_token(w3: Any, to_custody: int) -> str:
    """Deploy the committed ERC-20 and send `to_custody` units to the second account."""
    owner, custody = w3.eth.accounts[:2]
    artifact = json.loads((DATA / "TestToken.json").read_text())
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor(10**12).transact(
        {"from": owner}))
    token = w3.eth.contract(address=receipt.contractAddress, abi=artifact["abi"])
    w3.eth.wait_for_transaction_receipt(token.functions.transfer(custody, to_custody).transact(
        {"from": owner}))
    return str(receipt.contractAddress)


def test_eth_balance_at_a_pinned_block(evm: Any) -> None:
    w3, custody, _ = evm
    config = _config("in-process", kind="ethereum")
    block = ethereum.pin_block(w3, config)
    observation = ethereum.observe(w3, config, "custody:customer:hot:ETH", "ETH", None,
                                   {"addresses": [custody]}, block)
    assert observation.raw_minor == w3.eth.get_balance(custody, block_identifier=block.number)
    assert observation.facts["block_number"] == block.number == w3.eth.block_number
    assert observation.facts["block_hash"] == block.hash


def test_erc20_balance_of_with_the_tokens_decimals(evm: Any) -> None:
    w3, custody, contract = evm
    config = _config("in-process", kind="ethereum")
    block = ethereum.pin_block(w3, config)
    observation = ethereum.observe(w3, config, "custody:customer:hot:TUSD", "TUSD", contract,
                                   {"addresses": [custody.lower()]}, block)
    assert (observation.amount, observation.raw_minor, observation.raw_scale) == (
        Decimal("1.234567"), 1_234_567, 6)


def test_wei_below_the_ledger_scale_is_dust_not_rounding(evm: Any) -> None:
    w3, _, _ = evm
    owner = w3.eth.accounts[0]
    w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(
        {"from": owner, "to": w3.eth.accounts[3], "value": 10**18 + 7}))
    config = _config("in-process", kind="ethereum")
    observation = ethereum.observe(w3, config, "custody:x", "ETH", None,
                                   {"addresses": [w3.eth.accounts[3]]}, ethereum.pin_block(w3, config))
    from reconcile.engine import _chain_minor

    assert _chain_minor(observation, 9)[1] == Decimal("7E-18")
    assert _chain_minor(observation, 9)[0] == (observation.raw_minor or 0) // 10**9


def test_a_malformed_address_is_refused(evm: Any) -> None:
    w3, _, _ = evm
    config = _config("in-process", kind="ethereum")
    with pytest.raises(InputError, match="not an Ethereum address"):
        ethereum.observe(w3, config, "custody:x", "ETH", None, {"addresses": ["0x12"]},
                         ethereum.pin_block(w3, config))


@pytest.fixture(scope="module")
def anvil() -> Iterator[str]:
    """anvil (npm @foundry-rs/anvil): a real Ethereum node over HTTP on a free loopback port."""
    import os
    import shutil
    import socket
    import subprocess
    import time

    binary = os.environ.get("SEGLEDGER_ANVIL") or shutil.which("anvil")
    if not binary:
        if os.environ.get("SEGLEDGER_REQUIRE_CHAINS") == "1" and os.environ.get("SEGLEDGER_ANVIL"):
            pytest.fail("anvil is required here and was not found")
        pytest.skip("anvil is not installed (npm install @foundry-rs/anvil)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port), "--silent"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        import httpx

        while True:
            try:
                httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber",
                                      "params": []}, timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_ethereum_over_http_on_a_real_node(anvil: str, tmp_path: Path) -> None:
    from web3 import HTTPProvider, Web3

    w3 = Web3(HTTPProvider(anvil))
    custody = w3.eth.accounts[1]
    contract = deploy_token(w3, 7_000_000)
    config = parse_chain_config(json.dumps({"chains": {"ethereum": {
        "kind": "ethereum", "url": anvil}}}).encode(), "chains.json")["ethereum"]
    client = ethereum.connect(config, {})
    block = ethereum.pin_block(client, config)
    observation = ethereum.observe(client, config, "custody:customer:hot:TUSD", "TUSD",
                                   contract, {"addresses": [custody]}, block)
    assert (observation.amount, observation.facts["block_number"]) == (Decimal("7"),
                                                                       w3.eth.block_number)
    eth = ethereum.observe(client, config, "custody:customer:hot:ETH", "ETH", None,
                           {"addresses": [custody]}, block)
    assert eth.raw_minor == w3.eth.get_balance(custody)


def test_an_ethereum_node_that_is_down_is_an_environment_failure() -> None:
    config = parse_chain_config(json.dumps({"chains": {"ethereum": {
        "kind": "ethereum", "url": "http://127.0.0.1:9", "timeout_s": 2}}}).encode(),
        "chains.json")["ethereum"]
    with pytest.raises(EnvironmentFailure, match="unreachable"):
        ethereum.pin_block(ethereum.connect(config, {}), config)

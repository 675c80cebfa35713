"""A real `litecoind -regtest` node for the tests (Bitcoin Core's RPC), on a free loopback port."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RegtestNode:
    url: str
    user: str
    password: str

    def call(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        url = f"{self.url}/wallet/{wallet}" if wallet else self.url
        response = httpx.post(url, json={"jsonrpc": "1.0", "id": 1, "method": method,
                                         "params": list(params)},
                              auth=(self.user, self.password), timeout=60)
        answer = json.loads(response.content, parse_float=Decimal)
        if answer.get("error"):
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]


def litecoind_binary() -> str | None:
    return shutil.which("litecoind")


@contextmanager
def regtest_node() -> Iterator[RegtestNode]:
    binary = litecoind_binary()
    if binary is None:
        raise FileNotFoundError("litecoind is not installed")
    for attempt in range(3):
        # Another process (another pytest-xdist worker's node, say) may take the RPC port
        # between _free_port and the node's bind: then try another one.
        datadir = Path(tempfile.mkdtemp(prefix="segledger-ltc-"))
        process, node = _start(binary, datadir)
        try:
            _wait_ready(process, node)
            break
        except _PortTaken:
            _stop(process, node, datadir)
            if attempt == 2:
                raise
        except BaseException:
            _stop(process, node, datadir)
            raise
    try:
        yield node
    finally:
        _stop(process, node, datadir)


class _PortTaken(RuntimeError):
    pass


def _start(binary: str, datadir: Path) -> tuple[subprocess.Popen[bytes], RegtestNode]:
    rpc_port, p2p_port = _free_port(), _free_port()
    user, password = "segledger", os.urandom(8).hex()
    process = subprocess.Popen(
        [binary, "-regtest", f"-datadir={datadir}", f"-rpcport={rpc_port}", f"-port={p2p_port}",
         "-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1", "-listen=0",
         "-dnsseed=0", "-discover=0", "-txindex=1", "-fallbackfee=0.0001",
         f"-rpcuser={user}", f"-rpcpassword={password}", "-printtoconsole=0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return process, RegtestNode(f"http://127.0.0.1:{rpc_port}", user, password)


def _wait_ready(process: subprocess.Popen[bytes], node: RegtestNode) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            assert process.stderr is not None
            said = process.stderr.read().decode(errors="replace")
            error = _PortTaken if "bind" in said.lower() else RuntimeError
            raise error(f"litecoind exited: {said[-2000:]}")
        try:
            node.call("getblockchaininfo")
            return
        except (httpx.HTTPError, RuntimeError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _stop(process: subprocess.Popen[bytes], node: RegtestNode, datadir: Path) -> None:
    # Stopping a node that is already down is fine.
    with contextlib.suppress(Exception):
        node.call("stop")
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    shutil.rmtree(datadir, ignore_errors=True)

"""The chain config file: which node answers for which chain, and where its credentials are.

Credentials are read from environment variables named in the file; no secret is stored in
the database, written into a run, or printed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ledger.errors import EnvironmentFailure, InputError, shown
from ledger.files import text_of
from ledger.json_input import from_pydantic, kind_of, loads_strict, locate

MAX_TIMEOUT_S = 300
MAX_URL_CHARS = 500
BLOCK_TAGS = ("latest", "finalized", "safe")
# A space or a control character in a URL is a damaged file: httpx would quote it into some
# other URL than the one written.
_URL_BLANK_OR_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")


def _given(value: Any) -> str:
    """A value as written, for "…, not X": numbers and text as such, else their kind."""
    return shown(value) if isinstance(value, (str, int, float)) else kind_of(value)


def _block(value: Any) -> Any:
    """A block number or a tag, said in one message (not one per member of the union).
    JSON integers only: 5.0, "5" and true are not block numbers a node would be asked for."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value in BLOCK_TAGS:
        return value
    raise ValueError(f"must be a block number or one of {', '.join(BLOCK_TAGS)}, "
                     f"not {_given(value)}")


def _whole(value: Any) -> Any:
    """A JSON integer: pydantic's lax mode would read true as 1 and "5" or 5.0 as 5."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"must be a whole number such as 1000, not {_given(value)}")


def _seconds(value: Any) -> Any:
    """A JSON number: pydantic's lax mode would read "10" as 10 and true as 1."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise ValueError(f"must be a number of seconds such as 30, not {_given(value)}")


def _node_url(value: Any) -> Any:
    """http(s)://host[:port][/path], with a host and nothing a client would have to guess
    about. Credentials come from the environment: a URL that carries them is refused, and not
    echoed, since a run stores the URL and errors print it."""
    if not isinstance(value, str):
        raise ValueError(f"must be text in quotes, not {kind_of(value)}")
    try:
        parts = urlsplit(value)
    except ValueError:
        # An IPv6 host with a bracket not closed, a host that NFKC changes, …
        raise ValueError(f"{shown(value)} is not a well-formed URL") from None
    if "@" in parts.netloc:
        raise ValueError("the URL holds a user or a password: name the environment variables "
                         "that hold them in user_env and password_env instead (the URL is not "
                         "shown, as it may hold a password)")
    if not re.match(r"https?://", value):
        raise ValueError(f"{shown(value)} is not a node URL starting with http:// or https://")
    if len(value) > MAX_URL_CHARS:
        raise ValueError(f"must be at most {MAX_URL_CHARS} characters long")
    if _URL_BLANK_OR_CONTROL.search(value):
        raise ValueError(f"{shown(value)} holds a space or a control character")
    if not parts.hostname:
        raise ValueError(f"{shown(value)} names no host")
    try:
        parts.port  # noqa: B018 - urlsplit reads the port only when asked
    except ValueError:
        raise ValueError(f"{shown(value)} has a port that is not a number from 0 to "
                         "65535") from None
    return value


class _ChainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["bitcoin", "ethereum"]
    url: Annotated[str, BeforeValidator(_node_url)]
    user_env: str | None = None
    password_env: str | None = None
    timeout_s: Annotated[float, BeforeValidator(_seconds), Field(gt=0, le=MAX_TIMEOUT_S)] = 30
    # Bitcoin: how many keys of a ranged descriptor (…/*) to scan.
    descriptor_range: Annotated[int, BeforeValidator(_whole), Field(ge=1, le=1_000_000)] = 1000
    # Ethereum: the block to read balances at ("latest" or a number).
    block: Annotated[int | Literal["latest", "finalized", "safe"], BeforeValidator(_block)] = \
        "latest"


class _ConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chains: dict[str, _ChainIn]


@dataclass(frozen=True)
class ChainConfig:
    name: str
    kind: str
    url: str
    user_env: str | None
    password_env: str | None
    timeout_s: float
    descriptor_range: int
    block: int | str

    def public(self) -> dict[str, Any]:
        """What is stored with a run: everything but credentials (only their variable names)."""
        return {"name": self.name, "kind": self.kind, "url": self.url, "block": self.block,
                "user_env": self.user_env, "password_env": self.password_env}


def parse_chain_config(content: bytes, source: str) -> dict[str, ChainConfig]:
    text = text_of(content, source)
    try:
        parsed = _ConfigIn.model_validate(loads_strict(text))
    except InputError as error:
        raise error.located(source=source) from None
    except ValidationError as error:
        raise locate(from_pydantic(error, _ConfigIn), text).located(source=source) from None
    return {name: ChainConfig(name, c.kind, c.url, c.user_env, c.password_env, c.timeout_s,
                              c.descriptor_range, c.block) for name, c in parsed.chains.items()}


RpcCall = Callable[[str, list[Any]], Any]


class RpcError(EnvironmentFailure):
    """The node answered, but not with a usable result."""


def credentials(config: ChainConfig, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(user, password) from the environment variables the config names, or None."""
    if not (config.user_env or config.password_env):
        return None
    user = environ.get(config.user_env or "", "")
    password = environ.get(config.password_env or "", "")
    if not user and not password:
        raise InputError(f"chain {config.name}: credentials expected in ${config.user_env} "
                         f"and ${config.password_env}, which are not set")
    return user, password


def http_rpc(config: ChainConfig, environ: Mapping[str, str] = os.environ) -> RpcCall:
    """JSON-RPC over HTTP; numbers are parsed as Decimal, so 0.1 BTC stays 0.1."""
    auth = credentials(config, environ)
    client = httpx.Client(timeout=config.timeout_s, auth=auth, trust_env=False)

    def call(method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        try:
            response = client.post(config.url, json=body)
        except httpx.HTTPError as error:
            raise EnvironmentFailure(
                f"chain {config.name}: node at {config.url} unreachable "
                f"({_network_problem(error, config.timeout_s)})") from None
        try:
            answer = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise RpcError(f"chain {config.name}: {method} answered HTTP {response.status_code} "
                           "with something that is not JSON") from None
        return unwrap(config.name, method, answer)

    return call


def _network_problem(error: httpx.HTTPError, timeout_s: float) -> str:
    """httpx's exception in words an operator acts on, not its class name."""
    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {timeout_s:g} s"
    if isinstance(error, httpx.ConnectError):
        return "connection refused, or the host is unknown"
    if isinstance(error, httpx.UnsupportedProtocol):
        return "the URL is not http:// or https://"
    return "the connection failed"


def unwrap(chain: str, method: str, answer: Any) -> Any:
    if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
        raise RpcError(f"chain {chain}: {method} answered with no JSON-RPC result")
    if answer.get("error"):
        error = answer["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise RpcError(f"chain {chain}: {method} failed: {message}")
    return answer["result"]

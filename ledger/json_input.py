"""JSON from users, read strictly: what the ledger stores must mean one thing on every database."""

from __future__ import annotations

import json
from typing import Any

from ledger.errors import InputError

# Metadata deeper than this is refused before Python's recursion limit is anywhere near.
MAX_DEPTH = 32


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InputError(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise InputError(f"{name} is not a number JSON allows")


def loads_strict(text: str | bytes) -> Any:
    """json.loads, refusing duplicate keys, NaN/Infinity, NUL characters, lone surrogates,
    over-deep nesting and numbers too long to read; every refusal is an InputError."""
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON: {error.msg} at column {error.colno}") from None
    except (ValueError, RecursionError) as error:
        raise InputError(f"unreadable JSON: {str(error)[:120]}") from None
    check_storable(value)
    return value


def check_storable(value: Any, depth: int = 0) -> None:
    """Plain JSON values only, storable as text on PostgreSQL as on SQLite."""
    if depth > MAX_DEPTH:
        raise InputError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(f"object key {key!r} is not text")
            _check_text(key)
            check_storable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_storable(item, depth + 1)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InputError("NaN and Infinity are not JSON numbers")
    elif value is not None and not isinstance(value, (bool, int)):
        raise InputError(f"{type(value).__name__} is not a JSON value")


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise InputError("text contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("text contains a lone surrogate (not valid Unicode)") from None

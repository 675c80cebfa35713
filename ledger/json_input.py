"""JSON from users, read strictly: what the ledger stores must mean one thing on every database.

And what is wrong with it said in words a back-office user can act on: pydantic's messages
("Extra inputs are not permitted", "String should match pattern '^…$'") are rewritten here,
once, for every file format the ledger reads.
"""

from __future__ import annotations

import difflib
import json
import re
import types
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, TypeAdapter, ValidationError

from ledger.errors import InputError, shown
from ledger.model import ACCOUNT_CODE, ASSET_CODE, CUSTOMER_ID

# Metadata deeper than this is refused before Python's recursion limit is anywhere near.
MAX_DEPTH = 32


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InputError(f"the key {shown(key)} appears twice in one object")
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
        raise InputError(f"unreadable JSON: {unreadable_reason(error)}") from None
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
                raise InputError(f"the key {shown(key)} is not text: write it in quotes")
            _check_text(key)
            check_storable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_storable(item, depth + 1)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InputError("NaN and Infinity are not JSON numbers")
    elif value is not None and not isinstance(value, (bool, int)):
        raise InputError(f"{_kind_of_yaml(value)} is not a JSON value: write it as text in "
                         "quotes")


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise InputError("text contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("text contains a lone surrogate (not valid Unicode)") from None


def unreadable_reason(error: Exception) -> str:
    """What json.loads's ValueError or RecursionError means, without Python's advice."""
    if isinstance(error, RecursionError):
        return f"nested too deeply (at most {MAX_DEPTH} levels)"
    if "digits" in str(error):
        return "a number has more than 4300 digits"
    return "not valid JSON text"


def _kind_of_yaml(value: Any) -> str:
    """What YAML gave that JSON cannot say, in the words the YAML spec uses."""
    if isinstance(value, datetime):
        return "a time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, (set, frozenset)):
        return "a set"
    if isinstance(value, bytes):
        return "binary data"
    return "a value of another kind"


# --- Times -------------------------------------------------------------------------------

_AWARE = TypeAdapter(AwareDatetime)
_ISO_SHAPE = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[Tt ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,]\d+)?)?"
    r"(?P<off>[Zz]|[+-](?P<oh>\d{2}):?(?P<om>\d{2}))?)?", re.ASCII)
TIME_EXAMPLE = "2025-11-25T09:00:00+09:00"


def parse_time(value: Any) -> datetime:
    """An ISO 8601 time with its UTC offset, as text (CONTRACT.md), years 1900-2999 so that no
    arithmetic on it can overflow. The offset is kept as written: errors show times as the user
    wrote them; storage converts to UTC. ValueError says what is wrong, in words."""
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO 8601 time with its UTC offset, as text in quotes "
                         f"(such as \"{TIME_EXAMPLE}\"), not {kind_of(value)}")
    if not re.match(r"(19|2[0-9])[0-9]{2}-", value):
        # Not even a date first: never a Unix number, which pydantic would otherwise take.
        if re.match(r"[0-9]{4}-", value):
            raise ValueError(f"{shown(value, 40)}: the year must be between 1900 and 2999")
        raise ValueError(time_problem(value))
    try:
        parsed = _AWARE.validate_python(value)
    except ValidationError:
        raise ValueError(time_problem(value)) from None
    offset = parsed.utcoffset()
    assert offset is not None, "an AwareDatetime has an offset"
    return parsed.replace(tzinfo=timezone(offset))


def iso_text(value: Any) -> datetime:
    """`parse_time` as a pydantic BeforeValidator (for AwareDatetime fields)."""
    return parse_time(value)


def time_problem(text: str) -> str:
    """Why `text` is not a time the ledger takes: a bad date, a bad time, no offset, …"""
    if text != text.strip():
        return f"{shown(text, 40)} has spaces around the time"
    match = _ISO_SHAPE.fullmatch(text)
    if match is None:
        return f"{shown(text, 40)} is not an ISO 8601 time such as {TIME_EXAMPLE}"
    try:
        date(int(match["y"]), int(match["mo"]), int(match["d"]))
    except ValueError:
        return f"{text} is not a valid date"
    if match["h"] is None:
        return f"{text} is a date without a time and UTC offset (write e.g. {text}T00:00:00+09:00)"
    if int(match["h"]) > 23 or int(match["mi"]) > 59 or int(match["s"] or 0) > 59:
        return f"{text} is not a valid time"
    if match["off"] is None:
        return f"{text} has no UTC offset (write e.g. {TIME_EXAMPLE})"
    if match["oh"] is not None and (int(match["oh"]) > 23 or int(match["om"]) > 59):
        return f"{text} has an invalid UTC offset"
    return f"{text} is not an ISO 8601 time such as {TIME_EXAMPLE}"


# --- pydantic's errors in plain words ----------------------------------------------------------

# What a value matching each pattern is, for "… is not an account code: an account code is …".
PATTERN_MEANINGS: dict[str, str] = {
    ACCOUNT_CODE.pattern: "an account code: 1 to 200 ASCII letters, digits and the characters "
                          ": . _ - (no spaces), starting with a letter or a digit",
    ASSET_CODE.pattern: "an asset code: 1 to 20 capital letters, digits and the characters "
                        ". _ -, starting with a capital letter or a digit",
    CUSTOMER_ID.pattern: "a customer id: 1 to 100 ASCII letters, digits and the characters "
                         ". _ -, starting with a letter or a digit",
}


def meaning(pattern: str, description: str) -> str:
    """Register what a value matching `pattern` is; returns the pattern, for Field(pattern=…)."""
    PATTERN_MEANINGS[pattern] = description
    return pattern


def field_path(loc: Iterable[int | str]) -> str:
    """("lines", 0, "amount") -> "lines[0].amount"; a dict key's own error names the key."""
    path = ""
    for part in loc:
        if part == "[key]":
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def from_pydantic(error: ValidationError, model: type[BaseModel] | None = None) -> InputError:
    """The first of pydantic's errors as an InputError a user can act on; `model` (the one
    validated) lets an unknown field's message list the fields that are known there."""
    first = first_error(error)
    return InputError(plain_reason(first, model), field=field_path(first["loc"]) or None)


def first_error(error: ValidationError) -> Mapping[str, Any]:
    """The error to report of pydantic's list: a misspelt field is both unknown and missing,
    and the unknown one (the user's typo) is the one to name."""
    details = error.errors()
    return next((d for d in details if d["type"] == "extra_forbidden"), details[0])


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a value of another kind"


def decimal_text(value: Decimal | float) -> str:
    """The one plain text of a decimal: digits without trailing zeros or an exponent
    ("749318.83", never "7.4931883E+5" or "749318.830"; zero is "0"), exactly
    (Decimal.normalize would round at the context's 28 digits). Two equal values always give
    the same text, which is what the plan's canonical form (and its hash) relies on."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _number(value: Any) -> str:
    """A bound from pydantic's context (Decimal('1'), 0.0, 36) as a user writes it."""
    if isinstance(value, str):
        # pydantic hands some bounds over as their repr already: Decimal('1').
        match = re.fullmatch(r"Decimal\('([^']*)'\)", value)
        return match[1] if match else value
    return str(value) if isinstance(value, (bool, int)) else decimal_text(value)


def _as_written(value: Any) -> str:
    """A number the user wrote, as text or as a number, without quotes around it."""
    if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9][0-9.]{0,39}", value):
        return value
    return shown(value)


def _choices(expected: str) -> str:
    return ", ".join(re.findall(r"'([^']*)'", expected)) or expected


def plain_reason(detail: Mapping[str, Any], model: type[BaseModel] | None) -> str:
    kind, value = detail["type"], detail.get("input")
    ctx: Mapping[str, Any] = detail.get("ctx") or {}
    loc = tuple(detail["loc"])
    if kind == "extra_forbidden":
        known = _fields_at(model, loc[:-1]) if model is not None else None
        if not known:
            return "unknown field"
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return f"unknown field ({hint}the fields here are: {', '.join(known)})"
    if kind == "missing":
        return "missing: this field is required"
    if kind == "string_pattern_mismatch":
        described = PATTERN_MEANINGS.get(str(ctx.get("pattern")))
        return (f"{shown(value)} is not {described}" if described
                else f"{shown(value)} is not in the form this field takes")
    if kind in ("enum", "literal_error"):
        return f"{shown(value)} is not one of: {_choices(str(ctx.get('expected', '')))}"
    if kind == "value_error":
        return str(detail["msg"]).removeprefix("Value error, ")
    if kind == "timezone_aware" or kind.startswith(("datetime_", "date_")):
        return time_problem(value) if isinstance(value, str) else \
            f"must be an ISO 8601 time with its UTC offset, as text, not {kind_of(value)}"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "needs at least one item"
    simple = _SIMPLE.get(kind)
    if simple is not None:
        return simple.format(value=shown(value), number=_as_written(value), kind=kind_of(value),
                             **{k: _number(v) for k, v in ctx.items()})
    return "is not valid here"


_SIMPLE: Mapping[str, str] = {
    "string_type": "must be text in quotes, not {kind}",
    "int_type": "must be a whole number, not {kind}",
    "int_parsing": "must be a whole number, not {value}",
    "int_from_float": "must be a whole number, not {value}",
    "float_type": "must be a number, not {kind}",
    "float_parsing": "must be a number, not {value}",
    "decimal_type": "must be a decimal number, not {kind}",
    "decimal_parsing": "must be a decimal number, not {value}",
    "bool_type": "must be true or false, not {kind}",
    "bool_parsing": "must be true or false, not {value}",
    "dict_type": "must be an object {{…}}, not {kind}",
    "model_type": "must be an object {{…}}, not {kind}",
    "model_attributes_type": "must be an object {{…}}, not {kind}",
    "list_type": "must be a list […], not {kind}",
    "string_too_short": "must be at least {min_length} characters long",
    "string_too_long": "must be at most {max_length} characters long",
    "too_short": "needs at least {min_length} items, has {actual_length}",
    "too_long": "may have at most {max_length} items, has {actual_length}",
    "greater_than": "must be greater than {gt}, not {number}",
    "greater_than_equal": "must be at least {ge}, not {number}",
    "less_than": "must be less than {lt}, not {number}",
    "less_than_equal": "must be at most {le}, not {number}",
    "url_parsing": "is not a URL",
}


def _inner(annotation: Any) -> Any:
    """The type under Annotated[…] and Optional[…]."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _inner(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _inner(options[0]) if len(options) == 1 else annotation
    return annotation


def _fields_at(model: Any, loc: tuple[Any, ...]) -> list[str] | None:
    """The field names of the model found at `loc` inside `model`, if one is there."""
    current = model
    for part in loc:
        current = _inner(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if not isinstance(part, str) or part not in current.model_fields:
                return None
            current = current.model_fields[part].annotation
        elif get_origin(current) in (list, tuple) and isinstance(part, int):
            current = get_args(current)[0]
        elif get_origin(current) is dict and isinstance(part, str):
            current = get_args(current)[1]
        else:
            return None
    current = _inner(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


# --- Where in a file a field is -----------------------------------------------------------------

_PATH_PART = re.compile(r"\[(\d+)\]|\.?([^.\[]+)")


def locate(error: InputError, text: str) -> InputError:
    """The error with the line of its field in `text` (a JSON or YAML document), when the
    error names a field and has no line yet: a user goes to the line, not to a path."""
    if error.line is not None or not error.field:
        return error
    line = line_of(text, error.field)
    return error.located(line=line) if line is not None else error


def line_of(text: str, field: str, *, exact: bool = False) -> int | None:
    """1-based line of the deepest part of a field path ("policies[1].period_end") that
    the document has: the field itself, or (unless `exact`) the object a missing field belongs
    in. Only on the way to an error message: a good file is never parsed twice."""
    import yaml  # JSON is (nearly) YAML: one position-keeping parser for both

    try:
        node = yaml.compose(text.removeprefix("\ufeff"), Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return None
    if node is None:
        return None
    parts: list[str | int] = [int(index) if index else name
                              for index, name in _PATH_PART.findall(field)]
    line = node.start_mark.line + 1
    while parts:
        node, used = _child(node, parts)
        if node is None:
            return None if exact else line
        line = node.start_mark.line + 1
        parts = parts[used:]
    return line


def _child(node: Any, parts: list[str | int]) -> tuple[Any, int]:
    """The child of a YAML node named by the first path parts (a key may hold dots, as asset
    codes may: then it takes several parts), and how many parts it took."""
    import yaml

    if isinstance(node, yaml.SequenceNode) and isinstance(parts[0], int):
        return (node.value[parts[0]], 1) if parts[0] < len(node.value) else (None, 0)
    if isinstance(node, yaml.MappingNode):
        for used in range(1, len(parts) + 1):
            key = ".".join(str(part) for part in parts[:used])
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                    return value_node, used
    return None, 0

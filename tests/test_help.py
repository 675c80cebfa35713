"""Every command and every option says what it is for in `--help`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

from segledger.cli import app


def _commands(group: Any, path: str = "segledger") -> Iterator[tuple[str, Any]]:
    yield path, group
    if isinstance(group, TyperGroup):
        for name, command in sorted(group.commands.items()):
            yield from _commands(command, f"{path} {name}")


def test_every_command_and_option_has_a_line_of_help() -> None:
    missing = []
    for path, command in _commands(typer.main.get_command(app)):
        if not (command.help or "").strip():
            missing.append(path)
        for param in command.params:
            if isinstance(param, TyperOption) and not (param.help or "").strip():
                missing.append(f"{path} {param.opts[0]}")
            if isinstance(param, TyperArgument) and not getattr(param, "help", None):
                missing.append(f"{path} {param.name.upper() if param.name else '?'}")
    assert missing == []

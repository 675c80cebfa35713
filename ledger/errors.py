"""Errors a user can cause are values with a message; assertion failures are bugs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class LedgerError(Exception):
    """Base of every error segledger reports to a user."""


class InputError(LedgerError):
    """Bad input: the command exits 2 and nothing was written.

    `source` is the file (or "-" for stdin), `line` the 1-based line number when known,
    `field` the dotted path of the offending field when known.
    """

    def __init__(
        self,
        reason: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        self.field = field
        super().__init__(self.render())

    def located(
        self, *, source: str | None = None, line: int | None = None, field: str | None = None
    ) -> InputError:
        """The same error with the location filled in where it was still unknown."""
        return InputError(
            self.reason,
            source=self.source or source,
            line=self.line or line,
            field=self.field or field,
        )

    def render(self) -> str:
        where = ""
        if self.source is not None:
            where = self.source
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.reason}"


def shown(value: Any, limit: int = 60) -> str:
    """A value as a user wrote it, for a message: text in double quotes with control
    characters escaped (as JSON writes them), numbers as digits; never Python's repr."""
    if isinstance(value, str):
        text = value if len(value) <= limit else value[:limit] + "…"
        return json.dumps(text, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        text = str(value)
        return text if len(text) <= limit else text[:limit] + "…"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "a value of another kind"


@dataclass
class ErrorLog:
    """Errors collected by a check that goes on after the first (`post --check`), up to a
    limit: past it the check stops, and says so."""

    limit: int
    errors: list[InputError] = field(default_factory=list)

    def add(self, error: InputError) -> None:
        self.errors.append(error)

    @property
    def full(self) -> bool:
        return len(self.errors) >= self.limit


class EnvironmentFailure(LedgerError):
    """The environment failed (database unreachable, …): exit 3, nothing half-written."""

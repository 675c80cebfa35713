"""What every command shares: the database option, exit codes, error mapping, progress bars."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy.exc import OperationalError

from ledger.errors import EnvironmentFailure, InputError

P = ParamSpec("P")
R = TypeVar("R")
EXIT_PROBLEM, EXIT_INPUT, EXIT_ENVIRONMENT, EXIT_BUG = 1, 2, 3, 70
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a process killed by it


@dataclass
class State:
    db: str | None = None


def handled(command: Callable[P, R]) -> Callable[P, R]:
    """Map errors to CONTRACT.md's exit codes with one line on stderr."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`… | head`): not a bug. Exit as a killed-by-SIGPIPE
            # process would, and keep Python from failing again on flushing stdout.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(EXIT_BROKEN_PIPE) from None
        except InputError as error:
            _fail(EXIT_INPUT, error.render())
        except EnvironmentFailure as error:
            _fail(EXIT_ENVIRONMENT, str(error))
        except OperationalError as error:
            _fail(EXIT_ENVIRONMENT, f"database failure: {str(error.orig).strip().splitlines()[0]}")
        except Exception:
            # A bug, not a finding: exit 1 would tell a scheduler "problem found", so a crash
            # gets EX_SOFTWARE (70) and its traceback. Transactions rolled back: nothing written.
            traceback.print_exc()
            _fail(EXIT_BUG, "internal error (a bug in segledger; the traceback is above)")
        raise AssertionError("unreachable")

    return wrapper


def _fail(code: int, message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def db_url(ctx: typer.Context) -> str | None:
    state: State = ctx.ensure_object(State)
    return state.db


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar on a terminal; nothing when stderr is a file or a pipe."""
    if not sys.stderr.isatty():
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            if stage.startswith("write"):
                bar.advance(tasks[stage], done)
            else:
                bar.update(tasks[stage], completed=done)

        yield update

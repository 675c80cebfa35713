"""What each command does, between the file system and storage; the CLI only formats."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import OperationalError

from ledger import files
from ledger.chart import parse_chart
from ledger.entries import Draft, read_drafts
from ledger.errors import EnvironmentFailure, ErrorLog, InputError
from ledger.json_input import parse_time
from ledger.storage import journal
from ledger.storage.chart_store import ChartResult, load_chart
from ledger.storage.engine import make_engine, schema_is_current, upgrade
from ledger.storage.posting import CheckResult, PostResult, Progress, check_batch, post_batch

DEFAULT_MAX_ERRORS = 100


def parse_instant(text: str, field: str) -> datetime:
    """An ISO 8601 time with its offset; 'now' for the current time. No guessing of zones:
    the same reading, and the same messages, as a time in an entry file."""
    if text == "now":
        return datetime.now(UTC)
    try:
        return parse_time(text).astimezone(UTC)
    except ValueError as error:
        raise InputError(str(error), field=field) from None


def connect(url: str | None) -> Engine:
    """An engine on a reachable database whose schema is at head."""
    engine = make_engine(url)
    try:
        current = schema_is_current(engine)
    except OperationalError as error:
        raise EnvironmentFailure(f"database unreachable: {_first_line(error)}") from None
    if not current:
        with engine.connect() as connection:
            empty = not inspect(connection).has_table("entries")
        hint = "has no segledger schema" if empty else "has an older schema"
        raise InputError(f"the database {hint}; run `segledger init` first", field="--db")
    return engine


def init(url: str | None) -> Engine:
    engine = make_engine(url)
    try:
        upgrade(engine)
    except OperationalError as error:
        raise EnvironmentFailure(f"database unreachable: {_first_line(error)}") from None
    # A ledger written before the hash chain (migration 0009) gets its history sealed once.
    journal.seal_backlog(engine)
    return engine


def _first_line(error: Exception) -> str:
    orig = getattr(error, "orig", error)
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def load_chart_file(engine: Engine, path: str) -> ChartResult:
    source = files.source_name(path)
    return load_chart(engine, parse_chart(files.read_text(path), source), source)


def read_entry_file(
    path: str, progress: Progress | None = None, errors: ErrorLog | None = None
) -> tuple[list[Draft], str]:
    """All drafts of a JSONL file (or '-' for stdin) and the file's SHA-256. With `errors`,
    lines that do not parse are logged there and left out (see `read_drafts`)."""
    with files.EntryLines(path) as lines:
        drafts = []
        for draft in read_drafts(lines, lines.source, errors):
            drafts.append(draft)
            if progress and len(drafts) % 10_000 == 0:
                progress("read", lines.bytes_read, lines.total_bytes)
        return drafts, lines.sha256


def post_file(
    engine: Engine, path: str, *, use_copy: bool | None = None, progress: Progress | None = None
) -> PostResult:
    """Post a file as one all-or-nothing batch; the first invalid entry stops it. A file with
    no entries (empty, or blank lines only) posts nothing: there was nothing to do."""
    drafts, sha256 = read_entry_file(path, progress)
    if not drafts:
        return PostResult(0, 0, 0, None)
    return post_batch(engine, drafts, source=files.source_name(path), sha256=sha256,
                      use_copy=use_copy, progress=progress)


def check_file(
    engine: Engine, path: str, *, max_errors: int = DEFAULT_MAX_ERRORS,
    use_copy: bool | None = None, progress: Progress | None = None,
) -> CheckResult:
    """Every check `post_file` makes, writing nothing, listing every error up to `max_errors`
    (an entry with an error is left out; the ones after it are checked without it)."""
    if max_errors < 1:
        raise InputError("must be at least 1", field="--max-errors")
    parse_errors = ErrorLog(max_errors)
    drafts, _ = read_entry_file(path, progress, parse_errors)
    if not drafts:
        full = len(parse_errors.errors) >= max_errors
        return CheckResult(len(parse_errors.errors), parse_errors.errors, full)
    return check_batch(engine, drafts, source=files.source_name(path),
                       parse_errors=parse_errors.errors, limit=max_errors, use_copy=use_copy,
                       progress=progress)

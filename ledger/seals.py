"""Seals an auditor keeps (docs/integrity.md): `segledger seal --through T` writes the chain's
newest link by then with what it seals; `verify --seal FILE` rebuilds the chain from scratch
and proves that nothing before that link changed since."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from ledger import files
from ledger.errors import InputError
from ledger.json_input import loads_strict
from ledger.storage import journal
from ledger.storage.engine import for_reading
from ledger.storage.integrity import Problem, VerifyReport, verify

HEX64 = re.compile(r"[0-9a-f]{64}")
COUNTS = ("links", "batches", "entries", "postings", "runs", "records")


def make_seal(engine: Engine, through: datetime) -> dict[str, Any]:
    with for_reading(engine).connect() as connection:
        try:
            return journal.seal_document(connection, through)
        except LookupError as error:
            raise InputError(str(error), field="--through") from None


def verify_with_seal(engine: Engine, path: str) -> VerifyReport:
    """`verify`, and the seal's link and counts checked against the chain rebuilt."""
    document = read_seal(path)
    with for_reading(engine).connect() as connection:
        report = verify(connection)
        for detail in journal.check_seal(connection, document):
            report.problems.append(Problem("seal", files.source_name(path), detail))
    return report


def read_seal(path: str) -> dict[str, Any]:
    """A seal file, its shape and its own hash checked: a damaged seal proves nothing."""
    source = files.source_name(path)
    try:
        document = loads_strict(files.read_file(path))
    except InputError as error:
        raise error.located(source=source) from None
    if not isinstance(document, dict) or document.get("format") != journal.SEAL_FORMAT:
        raise InputError(f"not a segledger seal (its format must be {journal.SEAL_FORMAT!r})",
                         source=source, field="format")
    if document.get("version") != journal.SEAL_VERSION:
        raise InputError(f"seal version {document.get('version')!r} is not one this segledger "
                         f"reads ({journal.SEAL_VERSION})", source=source, field="version")
    link, counts = document.get("link"), document.get("counts")
    if not (isinstance(link, dict) and _whole(link.get("seq")) and link["seq"] >= 1
            and isinstance(link.get("hash"), str) and HEX64.fullmatch(link["hash"])):
        raise InputError("must be {\"seq\": a link number, \"hash\": 64 lowercase hex digits, "
                         "…}", source=source, field="link")
    if not (isinstance(counts, dict) and set(counts) == set(COUNTS)
            and all(_whole(value) and value >= 0 for value in counts.values())):
        raise InputError(f"must hold the counts {', '.join(COUNTS)} as whole numbers",
                         source=source, field="counts")
    if document.get("sha256") != journal.seal_file_hash(document):
        raise InputError("the seal's own SHA-256 does not match its content: the file was "
                         "changed or damaged", source=source, field="sha256")
    return document


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

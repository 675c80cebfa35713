"""What every evidence adapter produces: balances observed outside the ledger, with the
movements behind them, as plain values."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ledger.files import MAX_FILE_BYTES, without_bom

# Limits on everything: an evidence file larger than this is refused, not read. The one limit
# for every user file (ledger.files).
MAX_EVIDENCE_BYTES = MAX_FILE_BYTES


@dataclass(frozen=True)
class Movement:
    """One statement line or chain transfer; `amount` is signed, + flows into the account."""

    amount: Decimal
    booked_on: date
    reference: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Observation:
    """A balance seen outside the ledger for one account, at one time.

    `account` identifies the account the way the source does: {"account": code} for custodian
    files, {"iban": …} or {"bank_account": …} for bank statements, {"addresses": […]} for chains.
    """

    source: str
    kind: str
    account: Mapping[str, Any]
    currency: str
    amount: Decimal
    as_of: date | datetime
    movements: tuple[Movement, ...] = ()
    # Extra facts to keep with the run (block height and hash, statement id, …).
    facts: Mapping[str, Any] = field(default_factory=dict)
    # Set by chain adapters: the amount in the chain's smallest unit and that unit's scale.
    raw_minor: int | None = None
    raw_scale: int | None = None


@dataclass(frozen=True)
class EvidenceFile:
    """An evidence file as stored with a run: its name, bytes and SHA-256.

    `content` is the file exactly as given (its SHA-256 is the file's); `body` is what an
    adapter reads: the same bytes without a UTF-8 byte-order mark, which some Windows tools
    write before a statement or a CSV.
    """

    name: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def body(self) -> bytes:
        return without_bom(self.content)

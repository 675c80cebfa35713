"""Evidence files are recognised by content, not by name (CONTRACT.md)."""

from __future__ import annotations

from collections.abc import Callable

from ledger.errors import InputError
from reconcile.adapters import bai2, camt053, mt940, observations
from reconcile.evidence import MAX_EVIDENCE_BYTES, EvidenceFile, Observation

Parser = Callable[[bytes, str], list[Observation]]

# Order matters: the most specific signature first.
FORMATS: list[tuple[str, Callable[[bytes], bool], Parser]] = [
    ("camt053", camt053.looks_like, camt053.parse),
    ("camt052", camt053.looks_like_report, camt053.parse),
    # Recognised so that the refusal says what to give instead (parse refuses camt.054).
    ("camt054", camt053.looks_like_notification, camt053.parse),
    ("observation-json", observations.looks_like_json, observations.parse_json),
    ("observation-csv", observations.looks_like_csv, observations.parse_csv),
    ("bai2", bai2.looks_like, bai2.parse),
    ("mt940", mt940.looks_like, mt940.parse),
]


def recognise(evidence: EvidenceFile) -> str:
    for name, looks_like, _ in FORMATS:
        if looks_like(evidence.body):
            return name
    if evidence.body.lstrip()[:1] == b"<":
        raise InputError("XML that is not a camt.053 statement or camt.052 report",
                         source=evidence.name)
    raise InputError("not a recognised evidence format (camt.053, camt.052, MT940, BAI2, "
                     "observation JSON or CSV)", source=evidence.name)


def parse_evidence(evidence: EvidenceFile) -> list[Observation]:
    if len(evidence.content) > MAX_EVIDENCE_BYTES:
        raise InputError(f"larger than the {MAX_EVIDENCE_BYTES // 1_000_000} MB limit for one "
                         "evidence file", source=evidence.name)
    if not evidence.body.strip():
        raise InputError("empty evidence file", source=evidence.name)
    name = recognise(evidence)
    parser = next(parse for fmt, _, parse in FORMATS if fmt == name)
    return parser(evidence.body, evidence.name)

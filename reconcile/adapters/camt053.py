"""ISO 20022 bank statements: camt.053 (BankToCustomerStatement) and camt.052
(BankToCustomerAccountReport), versions 001.02 to 001.13, as observations.

camt.054 notifications are recognised and refused: they list movements but carry no balance.
How a file is read safely is in `iso20022`, one statement in `camt_statement`, and the balance
rules (pages, intraday sequences, opening + entries = closing) in `camt_sequence`.
"""

from __future__ import annotations

from decimal import Decimal
from xml.sax.saxutils import escape

from ledger.errors import InputError
from reconcile.adapters import iso20022
from reconcile.adapters.camt_sequence import observations
from reconcile.adapters.camt_statement import read_statements
from reconcile.evidence import Observation

NOTIFICATION_REFUSED = ("camt.054 notifications carry movements but no balance; reconcile with a "
                        "camt.053 or camt.052")


def looks_like(content: bytes) -> bool:
    return iso20022.message_in_head(content) == "camt.053"


def looks_like_report(content: bytes) -> bool:
    return iso20022.message_in_head(content) == "camt.052"


def looks_like_notification(content: bytes) -> bool:
    return iso20022.message_in_head(content) == "camt.054"


def parse(content: bytes, source: str) -> list[Observation]:
    """Observations from a camt.053 statement or camt.052 report; the message is told by the
    document's root namespace, not by how the file was recognised."""
    document = iso20022.read(content, source)
    if document.message == "camt.054":
        raise InputError(NOTIFICATION_REFUSED, source=source)
    return observations(read_statements(document), document.message)


def write_statement(iban: str, currency: str, closing: str, day: str,
                    entries: list[tuple[str, str | None, str]]) -> bytes:
    """A camt.053.001.02 statement: one account, its closing booked balance, booked entries
    (signed amount, end-to-end id or None, description). For demos and tests."""
    lines = []
    for amount, reference, text in entries:
        value = Decimal(amount)
        refs = (f"<NtryDtls><TxDtls><Refs><EndToEndId>{escape(reference)}</EndToEndId></Refs>"
                f"<RmtInf><Ustrd>{escape(text)}</Ustrd></RmtInf></TxDtls></NtryDtls>"
                ) if reference else f"<AddtlNtryInf>{escape(text)}</AddtlNtryInf>"
        lines.append(
            f"<Ntry><Amt Ccy=\"{currency}\">{_plain(value)}</Amt>"
            f"<CdtDbtInd>{'CRDT' if value >= 0 else 'DBIT'}</CdtDbtInd><Sts>BOOK</Sts>"
            f"<BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{day}</Dt></ValDt>{refs}</Ntry>")
    value = Decimal(closing)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>TEST</MsgId><CreDtTm>{day}T23:00:00+09:00</CreDtTm></GrpHdr>
<Stmt><Id>STMT-{day}</Id><CreDtTm>{day}T23:00:00+09:00</CreDtTm>
<Acct><Id><IBAN>{escape(iban)}</IBAN></Id><Ccy>{currency}</Ccy></Acct>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="{currency}">{_plain(value)}</Amt>
<CdtDbtInd>{'CRDT' if value >= 0 else 'DBIT'}</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>
{''.join(lines)}</Stmt></BkToCstmrStmt></Document>""".encode()


def _plain(value: Decimal) -> str:
    """The magnitude as the schema writes it: digits and a point, never an exponent."""
    return format(abs(value), "f")

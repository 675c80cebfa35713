"""Writes small camt.053.001.02 statements for scenario tests (the real fixtures are in
../shared/fixtures; these carry the IBANs and references of a test ledger)."""

from __future__ import annotations

from decimal import Decimal


def statement(iban: str, currency: str, closing: str, day: str,
              entries: list[tuple[str, str | None, str]]) -> bytes:
    """entries: (signed amount, end-to-end id or None, description)."""
    lines = []
    for amount, reference, text in entries:
        value = Decimal(amount)
        refs = (f"<NtryDtls><TxDtls><Refs><EndToEndId>{reference}</EndToEndId></Refs>"
                f"<RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls></NtryDtls>") if reference else \
            f"<AddtlNtryInf>{text}</AddtlNtryInf>"
        lines.append(
            f"<Ntry><Amt Ccy=\"{currency}\">{abs(value)}</Amt>"
            f"<CdtDbtInd>{'CRDT' if value >= 0 else 'DBIT'}</CdtDbtInd><Sts>BOOK</Sts>"
            f"<BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{day}</Dt></ValDt>{refs}</Ntry>")
    value = Decimal(closing)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>TEST</MsgId><CreDtTm>{day}T23:00:00+09:00</CreDtTm></GrpHdr>
<Stmt><Id>STMT-{day}</Id><CreDtTm>{day}T23:00:00+09:00</CreDtTm>
<Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>{currency}</Ccy></Acct>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="{currency}">{abs(value)}</Amt>
<CdtDbtInd>{'CRDT' if value >= 0 else 'DBIT'}</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>
{''.join(lines)}</Stmt></BkToCstmrStmt></Document>""".encode()

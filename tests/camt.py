"""Small camt.053 statements for scenario tests (the real bank fixtures are in tests/fixtures/),
and a builder for ISO 20022 statements and reports in any version, for the format's own tests.

The builder writes elements in the schema's order; `Ntry/Sts` is written as a code up to
version 001.07 and as `Sts/Cd` from 001.08 on, as those schemas do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from reconcile.adapters.camt053 import write_statement as statement

__all__ = ["Bal", "Ntry", "Stmt", "document", "statement"]

DAY = "2025-11-25"
IBAN = "JP00TEST0000000000001"


def _signed(amount: str) -> tuple[str, str]:
    value = Decimal(amount)
    return format(abs(value), "f"), "DBIT" if value < 0 else "CRDT"


@dataclass(frozen=True)
class Bal:
    code: str
    amount: str  # signed: a negative amount is written DBIT
    ccy: str = "EUR"
    day: str = DAY
    time: str | None = None  # written as Dt/DtTm when given

    def xml(self) -> str:
        magnitude, indicator = _signed(self.amount)
        when = f"<DtTm>{self.day}T{self.time}</DtTm>" if self.time else f"<Dt>{self.day}</Dt>"
        return (f"<Bal><Tp><CdOrPrtry><Cd>{self.code}</Cd></CdOrPrtry></Tp>"
                f"<Amt Ccy=\"{self.ccy}\">{magnitude}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>"
                f"<Dt>{when}</Dt></Bal>")


@dataclass(frozen=True)
class Ntry:
    amount: str  # signed: a negative amount is written DBIT
    ccy: str = "EUR"
    status: str = "BOOK"
    reversal: str | None = None  # RvslInd text
    day: str = DAY
    ref: str | None = None
    text: str = ""

    def xml(self, version: int) -> str:
        magnitude, indicator = _signed(self.amount)
        reversal = f"<RvslInd>{self.reversal}</RvslInd>" if self.reversal is not None else ""
        status = f"<Sts>{self.status}</Sts>" if version < 8 else \
            f"<Sts><Cd>{self.status}</Cd></Sts>"
        refs = (f"<NtryDtls><TxDtls><Refs><EndToEndId>{escape(self.ref)}</EndToEndId></Refs>"
                "</TxDtls></NtryDtls>") if self.ref else ""
        return (f"<Ntry><Amt Ccy=\"{self.ccy}\">{magnitude}</Amt><CdtDbtInd>{indicator}"
                f"</CdtDbtInd>{reversal}{status}<BookgDt><Dt>{self.day}</Dt></BookgDt>"
                f"<ValDt><Dt>{self.day}</Dt></ValDt><BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd>"
                f"<SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>{refs}"
                f"<AddtlNtryInf>{escape(self.text)}</AddtlNtryInf></Ntry>")


@dataclass(frozen=True)
class Stmt:
    ident: str
    balances: tuple[Bal, ...]
    entries: tuple[Ntry, ...] = ()
    iban: str | None = IBAN
    other: str | None = None  # Acct/Id/Othr/Id instead of an IBAN
    ccy: str | None = "EUR"  # Acct/Ccy
    seq: int | None = None  # ElctrncSeqNb
    legal: int | None = None  # LglSeqNb
    created: str | None = f"{DAY}T18:00:00+09:00"
    page: tuple[int, bool] | None = None
    extra: tuple[str, ...] = field(default=())  # raw XML put after the entries

    def xml(self, version: int, element: str = "Stmt") -> str:
        paging = "StmtPgntn" if element == "Stmt" else "RptPgntn"
        parts = [f"<Id>{escape(self.ident)}</Id>"]
        if self.page:
            parts.append(f"<{paging}><PgNb>{self.page[0]}</PgNb><LastPgInd>"
                         f"{str(self.page[1]).lower()}</LastPgInd></{paging}>")
        if self.seq is not None:
            parts.append(f"<ElctrncSeqNb>{self.seq}</ElctrncSeqNb>")
        if self.legal is not None:
            parts.append(f"<LglSeqNb>{self.legal}</LglSeqNb>")
        if self.created:
            parts.append(f"<CreDtTm>{self.created}</CreDtTm>")
        account = f"<IBAN>{self.iban}</IBAN>" if self.iban else \
            f"<Othr><Id>{self.other}</Id></Othr>"
        currency = f"<Ccy>{self.ccy}</Ccy>" if self.ccy else ""
        parts.append(f"<Acct><Id>{account}</Id>{currency}</Acct>")
        parts.extend(balance.xml() for balance in self.balances)
        parts.extend(entry.xml(version) for entry in self.entries)
        parts.extend(self.extra)
        return f"<{element}>{''.join(parts)}</{element}>\n"


MESSAGES = {"camt.053": ("BkToCstmrStmt", "Stmt"), "camt.052": ("BkToCstmrAcctRpt", "Rpt"),
            "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}


def document(version: int, *statements: Stmt, message: str = "camt.053",
             encoding: str = "UTF-8") -> bytes:
    """A whole camt document holding `statements` (reports, notifications) in `version`."""
    wrapper, element = MESSAGES[message]
    body = "".join(stmt.xml(version, element) for stmt in statements)
    namespace = f"urn:iso:std:iso:20022:tech:xsd:{message}.001.{version:02d}"
    return (f"<?xml version=\"1.0\" encoding={quoteattr(encoding)}?>\n"
            f"<Document xmlns=\"{namespace}\">\n<{wrapper}>\n<GrpHdr><MsgId>TEST-{version}</MsgId>"
            f"<CreDtTm>{DAY}T18:00:00+09:00</CreDtTm></GrpHdr>\n{body}</{wrapper}>\n"
            "</Document>\n").encode()

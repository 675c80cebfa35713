"""ISO 20022 camt.053 (BankToCustomerStatement), versions 001.02 to 001.08.

Parsed with defusedxml with DTDs forbidden: no entity expansion, no external entities.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ledger.errors import InputError
from reconcile.evidence import Movement, Observation

NAMESPACE = re.compile(r"^\{urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(\d\d)\}Document$")
SUPPORTED_VERSIONS = range(2, 9)


def looks_like(content: bytes) -> bool:
    head = content[:2000]
    return b"camt.053" in head and b"<" in head


def parse(content: bytes, source: str) -> list[Observation]:
    try:
        root = SafeET.fromstring(content, forbid_dtd=True)
    except DefusedXmlException as error:
        raise InputError(f"refused unsafe XML ({type(error).__name__}: DTDs and entities are not "
                         "allowed in statements)", source=source) from None
    except SafeET.ParseError as error:
        raise InputError(f"malformed XML: {error}", source=source) from None
    match = NAMESPACE.match(root.tag)
    if match is None:
        raise InputError(f"not a camt.053 document (root element {root.tag})", source=source)
    version = int(match[1])
    if version not in SUPPORTED_VERSIONS:
        raise InputError(f"camt.053.001.{version:02d} is not supported (001.02 to 001.08)",
                         source=source)
    statements = root.findall("./{*}BkToCstmrStmt/{*}Stmt")
    if not statements:
        raise InputError("no statement (BkToCstmrStmt/Stmt) in the file", source=source)
    return [_statement(stmt, source, index, version) for index, stmt in enumerate(statements)]


def _text(element: Element, path: str) -> str | None:
    found = element.find(path)
    return found.text.strip() if found is not None and found.text else None


def _statement(stmt: Element, source: str, index: int, version: int) -> Observation:
    where = f"Stmt[{index}]"
    stmt_id = _text(stmt, "./{*}Id") or where
    account: dict[str, str] = {}
    if iban := _text(stmt, "./{*}Acct/{*}Id/{*}IBAN"):
        account["iban"] = iban
    if other := _text(stmt, "./{*}Acct/{*}Id/{*}Othr/{*}Id"):
        account["bank_account"] = other
    if not account:
        raise InputError(f"statement {stmt_id} names no account (Acct/Id)", source=source,
                         field=f"{where}.Acct")
    closing = [bal for bal in stmt.findall("./{*}Bal")
               if _text(bal, "./{*}Tp/{*}CdOrPrtry/{*}Cd") == "CLBD"]
    if len(closing) != 1:
        raise InputError(f"statement {stmt_id} has {len(closing)} closing booked balances (CLBD),"
                         " expected one", source=source, field=f"{where}.Bal")
    amount, currency = _amount(closing[0], source, f"{where}.Bal")
    when = _date(closing[0], "./{*}Dt", source, f"{where}.Bal.Dt")
    movements = tuple(_entry(ntry, source, f"{where}.Ntry[{n}]")
                      for n, ntry in enumerate(stmt.findall("./{*}Ntry")) if _booked(ntry))
    return Observation(
        source=source, kind="camt053", account=account,
        currency=currency or _text(stmt, "./{*}Acct/{*}Ccy") or "", amount=amount, as_of=when,
        movements=movements,
        facts={"statement_id": stmt_id, "version": f"camt.053.001.{version:02d}",
               "account_currency": _text(stmt, "./{*}Acct/{*}Ccy")})


def _amount(element: Element, source: str, where: str) -> tuple[Decimal, str | None]:
    amt = element.find("./{*}Amt")
    if amt is None or not amt.text:
        raise InputError("missing amount (Amt)", source=source, field=where)
    try:
        value = Decimal(amt.text.strip())
    except InvalidOperation:
        raise InputError(f"amount {amt.text.strip()!r} is not a decimal", source=source,
                         field=f"{where}.Amt") from None
    if not value.is_finite() or value < 0:
        raise InputError(f"amount {amt.text.strip()!r} must be a non-negative decimal",
                         source=source, field=f"{where}.Amt")
    indicator = _text(element, "./{*}CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise InputError(f"credit/debit indicator {indicator!r} is not CRDT or DBIT",
                         source=source, field=f"{where}.CdtDbtInd")
    return (value if indicator == "CRDT" else -value), amt.get("Ccy")


def _date(element: Element, path: str, source: str, where: str) -> date:
    text = _text(element, f"{path}/{{*}}Dt") or _text(element, f"{path}/{{*}}DtTm")
    if text is None:
        raise InputError("missing date", source=source, field=where)
    try:
        return datetime.fromisoformat(text).date() if "T" in text else date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{text!r} is not an ISO date", source=source, field=where) from None


def _booked(ntry: Element) -> bool:
    # 001.02-.07 write <Sts>BOOK</Sts>; 001.08 writes <Sts><Cd>BOOK</Cd></Sts>.
    status = _text(ntry, "./{*}Sts") or _text(ntry, "./{*}Sts/{*}Cd")
    return status in (None, "BOOK")


def _entry(ntry: Element, source: str, where: str) -> Movement:
    amount, _ = _amount(ntry, source, where)
    booked = ntry.find("./{*}BookgDt")
    on = _date(ntry, "./{*}BookgDt", source, f"{where}.BookgDt") if booked is not None else \
        _date(ntry, "./{*}ValDt", source, f"{where}.ValDt")
    reference = (_text(ntry, ".//{*}TxDtls/{*}Refs/{*}EndToEndId")
                 or _text(ntry, "./{*}AcctSvcrRef") or _text(ntry, ".//{*}Refs/{*}AcctSvcrRef"))
    if reference == "NOTPROVIDED":
        reference = None
    description = " ".join(filter(None, (_text(ntry, ".//{*}RmtInf/{*}Ustrd"),
                                         _text(ntry, "./{*}AddtlNtryInf"))))
    return Movement(amount=amount, booked_on=on, reference=reference, description=description)


def write_statement(iban: str, currency: str, closing: str, day: str,
              entries: list[tuple[str, str | None, str]]) -> bytes:
    """A camt.053.001.02 statement: one account, its closing booked balance, booked entries
    (signed amount, end-to-end id or None, description). For demos and tests."""
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

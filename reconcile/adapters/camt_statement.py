"""One camt.053 statement (`Stmt`) or camt.052 report (`Rpt`) read into plain values.

The element names used here are the same in versions 001.02 to 001.13; where versions differ
both forms are read: `Ntry/Sts` is a code in the early versions and `Sts/Cd` in the later
ones, and every date is a choice of `Dt` or `DtTm`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TypeVar

from ledger.errors import InputError
from reconcile.adapters import iso20022
from reconcile.adapters.iso20022 import Document, Node, Place

# camt message → (wrapper element, statement element, pagination element, what to call one).
LAYOUT = {"camt.053": ("BkToCstmrStmt", "Stmt", "StmtPgntn", "statement"),
          "camt.052": ("BkToCstmrAcctRpt", "Rpt", "RptPgntn", "report")}
# ExternalEntryStatus1Code (and EntryStatus2Code before it): only BOOK moves the balance.
STATUSES = frozenset({"BOOK", "PDNG", "INFO", "FUTR"})

T = TypeVar("T")


@dataclass(frozen=True)
class Balance:
    code: str  # OPBD, PRCD, CLBD, ITBD, CLAV, …, "CLBD/INTM" with a sub-type, or proprietary
    amount: Decimal  # signed: DBIT is negative
    currency: str
    on: date
    place: Place = field(compare=False)


@dataclass(frozen=True)
class Entry:
    amount: Decimal  # signed: DBIT is negative, whether or not the entry is a reversal
    currency: str
    status: str
    reversal: bool
    booked_on: date | None
    reference: str | None
    description: str
    place: Place = field(compare=False)

    @property
    def booked(self) -> bool:
        return self.status == "BOOK"


@dataclass(frozen=True)
class Statement:
    message: str  # camt.053.001.08
    ident: str
    label: str  # "statement 253EUR…", used in every message about it
    account: tuple[tuple[str, str], ...]
    account_currency: str | None
    electronic_seq: int | None
    legal_seq: int | None
    created_at: datetime | None
    page: int | None
    last_page: bool | None
    balances: tuple[Balance, ...]
    entries: tuple[Entry, ...]
    place: Place = field(compare=False)

    def content(self) -> tuple[object, ...]:
        """What two copies of the same statement must agree on."""
        return (self.account, self.account_currency, self.balances, self.entries)


def read_statements(doc: Document) -> list[Statement]:
    wrapper_name, name, _, noun = LAYOUT[doc.message]
    wrapper = doc.node().child(wrapper_name)
    found = wrapper.children(name) if wrapper is not None else []
    if not found:
        where = wrapper or doc.node()
        raise InputError(f"no {noun} ({wrapper_name}/{name}) in the file", source=doc.source,
                         line=where.place.line)
    return [_statement(doc, node, index) for index, node in enumerate(found)]


def _statement(doc: Document, node: Node, index: int) -> Statement:
    _, name, paging, noun = LAYOUT[doc.message]
    node = Node(doc, node.element, None, f"{name}[{index}]", "")
    ident = (node.text("Id") or "").strip()
    node = node.labelled(f"{noun} {iso20022.shown(ident)}" if ident else
                         f"{noun} without an Id for account {_account_hint(node)}")
    page, last_page = _page(node, paging)
    return Statement(
        message=doc.name, ident=ident or f"{name}[{index}]", label=node.label,
        account=_account(node), account_currency=_optional(node, "Acct/Ccy", iso20022.currency),
        electronic_seq=_optional(node, "ElctrncSeqNb", iso20022.number),
        legal_seq=_optional(node, "LglSeqNb", iso20022.number),
        created_at=_optional(node, "CreDtTm", iso20022.iso_datetime),
        page=page, last_page=last_page,
        balances=tuple(_balance(bal) for bal in node.children("Bal")),
        entries=tuple(_entry(ntry) for ntry in node.children("Ntry")), place=node.place)


def _optional(node: Node, path: str, read: Callable[[str, Node], T]) -> T | None:
    found = node.child(path)
    return None if found is None else read(found.value(), found)


def _page(node: Node, paging: str) -> tuple[int | None, bool | None]:
    pagination = node.child(paging)
    if pagination is None:
        return None, None
    number = pagination.child("PgNb")
    last = pagination.child("LastPgInd")
    if number is None or last is None:
        raise pagination.error(f"{paging} needs a page number (PgNb) and a last page indicator "
                               "(LastPgInd)")
    return iso20022.number(number.value(), number), iso20022.boolean(last.value(), last)


def _account_hint(node: Node) -> str:
    """The account as written, for naming a statement that has no Id; never an error."""
    prefix = node.doc.prefix
    for path in ("Acct/Id/IBAN", "Acct/Id/Othr/Id"):
        found = node.element.find("/".join(prefix + step for step in path.split("/")))
        if found is not None and (found.text or "").strip():
            return iso20022.shown((found.text or "").strip())
    return "unknown"


def _account(node: Node) -> tuple[tuple[str, str], ...]:
    iban = node.child("Acct/Id/IBAN")
    other = node.child("Acct/Id/Othr/Id")
    if (iban is None) == (other is None):
        raise node.error("names no account (Acct/Id/IBAN or Acct/Id/Othr/Id)" if iban is None
                         else "names its account twice (Acct/Id holds one of IBAN or Othr)",
                         join=" ")
    key, found = ("iban", iban) if iban is not None else ("bank_account", other)
    assert found is not None
    text = found.value().strip()
    if not text:
        raise found.error("the account identification is empty")
    return ((key, text),)


def signed_amount(node: Node) -> tuple[Decimal, str]:
    """`Amt` with its `Ccy` and `CdtDbtInd` as a signed amount (DBIT negative) and currency."""
    amt = node.child("Amt")
    if amt is None:
        raise node.error("missing amount (Amt)")
    value = iso20022.amount(amt.value(), amt)
    ccy = iso20022.currency(amt.element.get("Ccy"), amt)
    sign = iso20022.credit_debit(node.text("CdtDbtInd"), node.child("CdtDbtInd") or node)
    return (-value if sign < 0 and value else value), ccy


def date_choice(node: Node, path: str) -> date | None:
    """A DateAndDateTime(2)Choice: exactly one of `Dt` or `DtTm`; None when `path` is absent."""
    choice = node.child(path)
    if choice is None:
        return None
    day, moment = choice.child("Dt"), choice.child("DtTm")
    if (day is None) == (moment is None):
        raise choice.error("needs exactly one of Dt or DtTm")
    if day is not None:
        return iso20022.iso_date(day.value(), day)
    assert moment is not None
    return iso20022.iso_datetime(moment.value(), moment).date()


def _balance(bal: Node) -> Balance:
    kind = bal.child("Tp/CdOrPrtry")
    if kind is None:
        raise bal.error("balance without a type (Tp/CdOrPrtry)")
    code, proprietary = kind.child("Cd"), kind.child("Prtry")
    if (code is None) == (proprietary is None):
        raise kind.error("needs exactly one of Cd or Prtry")
    amount, ccy = signed_amount(bal)
    on = date_choice(bal, "Dt")
    if on is None:
        raise bal.error("balance without a date (Dt)")
    name = code.value() if code is not None else \
        f"proprietary {iso20022.shown((proprietary or kind).value())}"
    return Balance(name + _sub_type(bal), amount, ccy, on, bal.place)


def _sub_type(bal: Node) -> str:
    """"/INTM" for an intermediate balance (a page's, not the statement's), "/…" for any other
    sub-type: a balance with a sub-type is never taken for the plain CLBD or OPBD."""
    sub = bal.child("Tp/SubTp")
    if sub is None:
        return ""
    code = sub.text("Cd")
    return f"/{iso20022.shown(code)}" if code is not None else "/proprietary"


def _status(ntry: Node) -> str:
    sts = ntry.child("Sts")
    if sts is None:
        raise ntry.error("entry without a status (Sts)")
    if len(sts.element):
        if sts.has("Prtry"):
            raise sts.error("entry status is proprietary: whether it is booked is not known")
        code = sts.child("Cd")
        if code is None:
            raise sts.error("entry status holds neither a code (Cd) nor text")
        return _known_status(code.value(), code)
    return _known_status(sts.value(), sts)


def _known_status(text: str, where: Node) -> str:
    if text not in STATUSES:
        raise where.error(f"entry status {iso20022.quoted(text)} is not one of "
                          f"{', '.join(sorted(STATUSES))}")
    return text


def _entry(ntry: Node) -> Entry:
    amount, ccy = signed_amount(ntry)
    status = _status(ntry)
    reversal = _optional(ntry, "RvslInd", iso20022.boolean) or False
    on = date_choice(ntry, "BookgDt") or date_choice(ntry, "ValDt")
    if on is None and status == "BOOK":
        raise ntry.error("booked entry without a booking or value date (BookgDt, ValDt)")
    return Entry(amount, ccy, status, reversal, on, _reference(ntry),
                 _description(ntry, reversal), ntry.place)


def _reference(ntry: Node) -> str | None:
    ns = ntry.doc.prefix
    end_to_end = ntry.element.find(f".//{ns}TxDtls/{ns}Refs/{ns}EndToEndId")
    servicer = ntry.element.find(f"{ns}AcctSvcrRef")
    if servicer is None:
        servicer = ntry.element.find(f".//{ns}Refs/{ns}AcctSvcrRef")
    for found in (end_to_end, servicer):
        text = (found.text or "").strip() if found is not None else ""
        if text and text != "NOTPROVIDED":
            return text
    return None


def _description(ntry: Node, reversal: bool) -> str:
    ns = ntry.doc.prefix
    parts = [(found.text or "").strip() for found in (
        ntry.element.find(f".//{ns}RmtInf/{ns}Ustrd"), ntry.element.find(f"{ns}AddtlNtryInf"))
        if found is not None]
    text = " ".join(part for part in parts if part)
    return f"reversal: {text}" if reversal else text

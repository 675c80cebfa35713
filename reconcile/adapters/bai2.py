"""BAI2 balance reports (BAI Cash Management Balance Reporting Specifications, Version 2), read
by a small strict parser of our own.

Why not the `bai2` library: it hung forever on a truncated file, crashed on a detail with an
empty amount (`16,195,,,,,x/`) or a status code (`16,015,`), glued an 03 line that ends in a type
code onto the amount that opens the next 88 line (one wrong number), and its error texts reached
the user. A time limit around it would turn the hang into an error but keep the wrong numbers;
the format is small, so one linear pass that checks every count and total is shorter and safer.

How a file is read (* marks a choice where the specification leaves room):
- A record is a line and ends with "/", except a 16 record that ends inside its free text,
  which runs to the end of the line. An 88 line continues the record before it: its fields
  follow that record's last field, so a continuation never joins two fields; once a 16
  record's text has begun, each 88 line continues the text (joined by a space*).
- 01 (02 (03 16… 49)… 98)… 99, every trailer checked exactly: an account control total is the
  algebraic sum of the amount fields of its 03 and 16 records (not the funds-availability
  amounts); record counts include the 88 lines. A truncated file lacks a trailer: an error.
- Amounts are minor units without a decimal point, scaled by the currency's ISO 4217 exponent
  (currency of the 03, else of the 02, else USD as the specification says); an unknown currency
  is refused. Only status amounts (types 001–099, 900–919) and control totals carry a sign.
- The observation is the closing ledger balance (015). In a 16 record 100–399 are credits and
  400–699 debits; 890 (non-monetary information) has no amount and is no movement; any other
  type (status 001–099, loan 700–799, bank-defined 900–999) is refused*: the specification
  gives it no direction, and a guessed sign would be a wrong number.
- Opening ledger (010) + credits − debits = closing ledger (015) is not enforced*: 16 records
  are optional, banks detail only some types (105/405 "not detailed" carry the rest) and interim
  reports close at another cut-off. Both sides, and whether they agree, are kept in the facts.
- A group with status 2 (deletion) or 4 (test only) is refused*: it reports no balance.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

from ledger.errors import InputError
from reconcile.evidence import MAX_EVIDENCE_BYTES, Movement, Observation

CLOSING_LEDGER, OPENING_LEDGER = "015", "010"
CLOSING_AVAILABLE, OPENING_AVAILABLE = "045", "040"
NON_MONETARY = "890"
RECORD_CODES = ("01", "02", "03", "16", "49", "88", "98", "99")
# 10^18 minor units is more than any balance, and stays inside a 64-bit integer downstream.
MAX_AMOUNT_DIGITS = 18
MAX_COUNT_DIGITS = 9
# Account numbers are named in messages: one that could fill a screen is refused instead.
MAX_ACCOUNT_CHARS = 64
# ISO 4217 minor units: a BAI2 amount has no decimal point, its currency's exponent is implied.
EXPONENTS = {code: exponent for exponent, codes in (
    (0, "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"),
    (3, "BHD IQD JOD KWD LYD OMR TND"),
    (4, "CLF UYW"),
    (2, "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP "
        "BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL "
        "GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP "
        "LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR "
        "NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP "
        "STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW "
        "ZWG")) for code in codes.split()}
_LINE_END = re.compile(r"\r\n|\r|\n")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def looks_like(content: bytes) -> bool:
    return content.lstrip()[:3] == b"01,"


def parse(content: bytes, source: str) -> list[Observation]:
    records = _Stream(_records(_lines(content, source), source), source)
    head = _file_header(records.next(("01",), "at its start"), source)
    observations: list[Observation] = []
    groups, total, physical = 0, 0, records.last.physical
    while (record := records.next(("02", "99"), "after the file header or a group")).code == "02":
        group_observations, group_total, group_physical = _group(records, record, head, source)
        observations += group_observations
        groups, total, physical = groups + 1, total + group_total, physical + group_physical
    physical += record.physical
    _trailer(record, source, [
        ("file control total", total, f"the group control totals sum to {total}"),
        ("number of groups", groups, f"the file has {groups}"),
        ("number of records", physical, f"the file has {physical} lines of records")])
    if (extra := records.peek()) is not None:
        raise InputError("a record after the file trailer (99)", source=source, line=extra.line,
                         field=f"{extra.code} record")
    if not observations:
        raise InputError("no account in the BAI2 file", source=source)
    return observations


# --- Lines, records and fields -----------------------------------------------------------


class _Chunk(NamedTuple):
    """One physical line of a record: its fields (the final "/" removed) and whether it had it."""

    line: int
    fields: tuple[str, ...]
    slashed: bool


@dataclass(frozen=True)
class _Record:
    """A logical record: its first line and the 88 lines that continue it."""

    code: str
    chunks: list[_Chunk]

    @property
    def line(self) -> int:
        return self.chunks[0].line

    @property
    def physical(self) -> int:
        return len(self.chunks)


def _lines(content: bytes, source: str) -> list[tuple[int, str]]:
    if len(content) > MAX_EVIDENCE_BYTES:
        raise InputError(f"larger than the {MAX_EVIDENCE_BYTES // 1_000_000} MB limit for one "
                         "evidence file", source=source)
    try:
        text = content.decode("ascii")
    except UnicodeDecodeError as error:
        at = len(_LINE_END.split(content[:error.start].decode("ascii")))
        raise InputError("BAI2 must be ASCII text: this line has a byte above 127", source=source,
                         line=at) from None
    lines = []
    for number, raw in enumerate(_LINE_END.split(text), start=1):
        line = raw.strip(" \t")
        if (control := _CONTROL.search(line)) is not None:
            raise InputError(f"a control character (code {ord(control.group())}) in a record",
                             source=source, line=number)
        if line:
            lines.append((number, line))
    return lines


def _records(lines: Sequence[tuple[int, str]], source: str) -> list[_Record]:
    records: list[_Record] = []
    for number, line in lines:
        code, comma, payload = line[:2], line[2:3], line[3:]
        if comma != "," or code not in RECORD_CODES:
            raise InputError("a record starts with its code (01, 02, 03, 16, 49, 88, 98 or 99) "
                             "and a comma", source=source, line=number, field="record code")
        slashed = payload.endswith("/")
        chunk = _Chunk(number, tuple((payload[:-1] if slashed else payload).split(",")), slashed)
        if code != "88":
            records.append(_Record(code, [chunk]))
        elif records:
            records[-1].chunks.append(chunk)
        else:
            raise InputError("a continuation (88) with no record before it to continue",
                             source=source, line=number, field="88 record")
    return records


class _Stream:
    """The records in order; asking for one that is not there is the error that names it."""

    def __init__(self, records: list[_Record], source: str) -> None:
        self._records, self._source, self._at = records, source, 0
        self.last = records[0] if records else _Record("", [_Chunk(1, (), False)])

    def peek(self) -> _Record | None:
        return self._records[self._at] if self._at < len(self._records) else None

    def next(self, codes: tuple[str, ...], where: str) -> _Record:
        wanted = " or ".join(codes)
        record = self.peek()
        if record is None:
            raise InputError(f"the file ends {where} with no {wanted} record: it is truncated",
                             source=self._source, line=self.last.chunks[-1].line,
                             field="end of file")
        if record.code not in codes:
            raise InputError(f"a {wanted} record was expected {where}", source=self._source,
                             line=record.line, field=f"{record.code} record")
        self._at += 1
        self.last = record
        return record


class _Field(NamedTuple):
    """A field's value and where it is: file, record code, line, number (the code is field 1).
    A tuple, not a dataclass: a large statement makes millions of them."""

    value: str
    name: str
    source: str
    code: str
    line: int
    number: int
    present: bool = True

    def error(self, reason: str) -> InputError:
        return InputError(reason, source=self.source, line=self.line,
                          field=f"{self.code} record, field {self.number} ({self.name})")

    def required(self) -> str:
        if not self.value:
            raise self.error(f"empty {self.name}" if self.present
                             else f"missing {self.name}: the record ends before it")
        return self.value


@dataclass
class _Reader:
    """Reads one record's fields in order across its lines, each with its line and number."""

    record: _Record
    source: str
    _chunk: int = 0
    _index: int = 0
    _number: int = 1  # the record code is field 1

    def take(self, name: str) -> _Field:
        self._number += 1
        chunks = self.record.chunks
        while self._index >= len(chunks[self._chunk].fields):
            if self._chunk + 1 == len(chunks):
                return self._field("", name, chunks[-1].line, present=False)
            self._leave(chunks[self._chunk])
            self._chunk, self._index = self._chunk + 1, 0
        chunk = chunks[self._chunk]
        taken = self._field(chunk.fields[self._index], name, chunk.line)
        self._index += 1
        if "/" in taken.value:
            raise taken.error("a \"/\" ends the record but more follows it on the line")
        return taken

    def rest_empty(self) -> bool:
        # Stops at the first value: the fields it passes are empty ones the caller then takes
        # or refuses, so a long 03 record is still read in linear time.
        chunks, at, index = self.record.chunks, self._chunk, self._index
        while at < len(chunks):
            fields = chunks[at].fields
            if any(fields[i] for i in range(index, len(fields))):
                return False
            at, index = at + 1, 0
        return True

    def text(self) -> str:
        """The rest of the record as free text: a 16 record's last field, 88 lines included."""
        chunks = self.record.chunks
        current = chunks[self._chunk]
        parts = [",".join(current.fields[self._index:])]
        if self._index >= len(current.fields):
            self._leave(current)
        parts += [",".join(chunk.fields) for chunk in chunks[self._chunk + 1:]]
        self._chunk, self._index = len(chunks) - 1, len(chunks[-1].fields)
        return " ".join(" ".join(parts).split())

    def end(self) -> None:
        """No field left with a value, and every line ended by "/" (a cut line has none)."""
        while (extra := self.take("after the last field")).present:
            if extra.value:
                raise extra.error(f"unexpected value {_show(extra.value)}")
        for chunk in self.record.chunks:
            self._leave(chunk)

    def _leave(self, chunk: _Chunk) -> None:
        if not chunk.slashed:
            raise InputError("the line does not end with \"/\": the record is cut short",
                             source=self.source, line=chunk.line,
                             field=f"{self.record.code} record")

    def _field(self, value: str, name: str, line: int, present: bool = True) -> _Field:
        return _Field(value, name, self.source, self.record.code, line, self._number, present)


# --- Values ------------------------------------------------------------------------------


def _show(value: str) -> str:
    return f"\"{value[:24]}…\"" if len(value) > 24 else f"\"{value}\""


def _amount(taken: _Field, *, signed: bool) -> int:
    value = taken.required()
    digits = value[1:] if value[0] in "+-" else value
    if not (digits.isdigit() and digits.isascii()):
        raise taken.error(f"amount {_show(value)} is not a whole number of minor units "
                          "(BAI2 amounts have no decimal point)")
    if digits != value and not signed:
        raise taken.error(f"amount {_show(value)} has a sign: only balances and control totals "
                          "are signed, a transaction's direction comes from its type code")
    if len(digits) > MAX_AMOUNT_DIGITS:
        raise taken.error(f"amount has {len(digits)} digits, more than {MAX_AMOUNT_DIGITS}")
    return int(value)


def _count(taken: _Field, *, required: bool = False) -> int | None:
    if not taken.value and not required:
        return None
    value = taken.required()
    if not (value.isdigit() and value.isascii() and len(value) <= MAX_COUNT_DIGITS):
        raise taken.error(f"{_show(value)} is not a count (up to {MAX_COUNT_DIGITS} digits)")
    return int(value)


def _date(taken: _Field) -> date:
    value = taken.required()
    if len(value) == 6 and value.isdigit() and value.isascii():
        try:
            # YYMMDD: the century is the 2000s; no statement reconciled here is older.
            return date(2000 + int(value[:2]), int(value[2:4]), int(value[4:]))
        except ValueError:
            pass
    raise taken.error(f"{_show(value)} is not a date (YYMMDD)")


def _time(taken: _Field) -> str:
    """Optional HHMM, 0000 to 2400; 9999 is an end of day some banks send."""
    value = taken.value
    if value and value != "9999" and not (
            len(value) == 4 and value.isdigit() and value.isascii()
            and ((int(value[:2]) < 24 and int(value[2:]) < 60) or value == "2400")):
        raise taken.error(f"{_show(value)} is not a time (HHMM)")
    return value


def _currency(taken: _Field) -> str:
    value = taken.value
    if not (len(value) == 3 and value.isalpha() and value.isupper() and value.isascii()):
        raise taken.error(f"{_show(value)} is not a currency code (three capital letters)")
    if value not in EXPONENTS:
        raise taken.error(f"unknown currency {value}: the decimals implied in its amounts are "
                          "not known, and a guess would be a wrong number")
    return value


def _type_code(taken: _Field) -> str:
    value = taken.required()
    if not (len(value) == 3 and value.isdigit() and value.isascii()):
        raise taken.error(f"type code {_show(value)} is not three digits")
    return value


def _funds(reader: _Reader) -> None:
    """A funds type and the fields it brings: S three availability amounts, V a value date and
    time, D a count of (days, amount) pairs; 0, 1, 2, Z and blank bring none."""
    taken = reader.take("funds type")
    if taken.value in ("", "Z", "0", "1", "2"):
        return
    if taken.value == "S":
        for name in ("immediate availability", "one-day availability",
                     "two-or-more-day availability"):
            if (amount := reader.take(name)).value:
                _amount(amount, signed=False)
    elif taken.value == "V":
        _date(reader.take("value date"))
        _time(reader.take("value time"))
    elif taken.value == "D":
        pairs = _count(reader.take("number of distributions"), required=True) or 0
        # Each pair is read from a field the record holds: a too-large count meets "missing".
        for _ in range(pairs):
            _count(reader.take("availability in days"), required=True)
            _amount(reader.take("availability amount"), signed=False)
    else:
        raise taken.error(f"funds type {_show(taken.value)} is not 0, 1, 2, S, V, D or Z")


# --- Structure ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Group:
    facts: dict[str, Any]
    as_of: date
    currency: str  # "" when the group header names none


@dataclass(frozen=True)
class _Account:
    number: str
    currency: str
    balances: dict[str, int]  # type code -> signed minor units, in the order of the 03 record
    total: int


def _file_header(record: _Record, source: str) -> dict[str, Any]:
    reader = _Reader(record, source)
    sender = reader.take("sender identification").required()
    reader.take("receiver identification").required()
    _date(reader.take("file creation date"))
    _time(reader.take("file creation time"))
    file_id = reader.take("file identification number").required()
    _count(reader.take("physical record length"))
    _count(reader.take("block size"))
    version = reader.take("version number")
    if version.value != "2":
        raise version.error(f"version {_show(version.value)}: only BAI version 2 is read")
    reader.end()
    return {"sender": sender, "file_id": file_id}


def _group_header(record: _Record, head: dict[str, Any], source: str) -> _Group:
    reader = _Reader(record, source)
    reader.take("ultimate receiver identification")
    originator = reader.take("originator identification").required()
    status = reader.take("group status")
    if status.required() not in ("1", "3"):
        raise status.error({"2": "group status 2 (deletion): it withdraws an earlier report "
                                 "and reports no balance",
                            "4": "group status 4 (test only): not a balance to reconcile"}.get(
            status.value, f"group status {_show(status.value)} is not 1, 2, 3 or 4"))
    as_of = _date(reader.take("as-of date"))
    as_of_time = _time(reader.take("as-of time"))
    currency = reader.take("currency code")
    modifier = reader.take("as-of date modifier")
    if modifier.value not in ("", "1", "2", "3", "4"):
        raise modifier.error(f"as-of date modifier {_show(modifier.value)} is not 1, 2, 3 or 4")
    reader.end()
    facts = {**head, "originator": originator, "group_status": status.value,
             "as_of_time": as_of_time, "as_of_date_modifier": modifier.value}
    return _Group(facts, as_of, _currency(currency) if currency.value else "")


def _group(records: _Stream, header: _Record, head: dict[str, Any],
           source: str) -> tuple[list[Observation], int, int]:
    group = _group_header(header, head, source)
    observations, total, physical = [], 0, header.physical
    while (record := records.next(("03", "98"), f"in the group of {group.as_of}")).code == "03":
        observation, account_total, account_physical = _account(records, record, group, source)
        observations.append(observation)
        total, physical = total + account_total, physical + account_physical
    physical += record.physical
    _trailer(record, source, [
        ("group control total", total, f"the account control totals sum to {total}"),
        ("number of accounts", len(observations), f"the group has {len(observations)}"),
        ("number of records", physical, f"the group has {physical} lines of records")])
    return observations, total, physical


def _identifier(record: _Record, group: _Group, source: str) -> _Account:
    reader = _Reader(record, source)
    taken = reader.take("customer account number")
    if len(number := taken.required()) > MAX_ACCOUNT_CHARS:
        raise taken.error(f"longer than {MAX_ACCOUNT_CHARS} characters")
    taken = reader.take("currency code")
    currency = _currency(taken) if taken.value else group.currency or "USD"
    balances: dict[str, int] = {}
    while not reader.rest_empty():
        code_field = reader.take("type code")
        code = _type_code(code_field)
        if code in balances:
            raise code_field.error(f"type code {code} appears twice for account {number}")
        # Status amounts (balances) may be negative; summary amounts are unsigned.
        balances[code] = _amount(reader.take("amount"), signed=code < "100" or "900" <= code < "920")
        _count(reader.take("item count"))
        _funds(reader)
    reader.end()
    if CLOSING_LEDGER not in balances:
        has = ", ".join(balances) or "no balance at all"
        raise InputError(f"account {number} has no closing ledger balance (type 015); it has "
                         f"{has}", source=source, line=record.line, field="03 record")
    return _Account(number, currency, balances, sum(balances.values()))


def _detail(record: _Record, account: _Account, as_of: date,
            source: str) -> tuple[int, Movement | None]:
    """A 16 record: its amount in minor units as the control total counts it (unsigned), and
    its movement, signed by its type code (none for type 890)."""
    reader = _Reader(record, source)
    code_field = reader.take("type code")
    code = _type_code(code_field)
    amount = reader.take("amount")
    if code == NON_MONETARY:
        if amount.value:
            raise amount.error("type 890 carries non-monetary information: it has no amount")
        minor, sign = 0, 0
    else:
        sign = _direction(code_field, code)
        minor = _amount(amount, signed=False)
    _funds(reader)
    bank_reference = reader.take("bank reference number").value
    customer_reference = reader.take("customer reference number").value
    text = reader.text()
    if not sign:
        return 0, None
    scaled = Decimal(sign * minor).scaleb(-EXPONENTS[account.currency])
    return minor, Movement(amount=scaled, booked_on=as_of, description=text,
                           reference=customer_reference or bank_reference or None)


def _direction(taken: _Field, code: str) -> int:
    if "100" <= code <= "399":
        return 1
    if "400" <= code <= "699":
        return -1
    if code < "100":
        reason = "is an account status (balance) code: balances belong in the 03 record"
    elif "700" <= code <= "799":
        reason = "is a loan code, whose direction BAI2 does not fix: refused, not guessed"
    elif code >= "900":
        reason = "is bank-defined, its direction not fixed by BAI2: refused, not guessed"
    else:
        reason = "is not a BAI2 transaction code"
    raise taken.error(f"type code {code} {reason}")


def _account(records: _Stream, identifier: _Record, group: _Group,
             source: str) -> tuple[Observation, int, int]:
    account = _identifier(identifier, group, source)
    movements: list[Movement] = []
    total, physical = account.total, identifier.physical
    while (record := records.next(("16", "49"), f"in account {account.number}")).code == "16":
        minor, movement = _detail(record, account, group.as_of, source)
        total, physical = total + minor, physical + record.physical
        movements += [movement] if movement else []
    physical += record.physical
    _trailer(record, source, [
        ("account control total", total,
         f"the 03 and 16 amounts of account {account.number} sum to {total}"),
        ("number of records", physical,
         f"account {account.number} has {physical} lines of records")])
    return _observation(account, group, movements, source), total, physical


def _observation(account: _Account, group: _Group, movements: list[Movement],
                 source: str) -> Observation:
    exponent = EXPONENTS[account.currency]

    def balance(code: str) -> Decimal | None:
        minor = account.balances.get(code)
        return None if minor is None else Decimal(minor).scaleb(-exponent)

    closing, opening = balance(CLOSING_LEDGER), balance(OPENING_LEDGER)
    assert closing is not None, "_identifier refuses an account without a closing ledger"
    credits = sum((m.amount for m in movements if m.amount > 0), Decimal(0).scaleb(-exponent))
    debits = -sum((m.amount for m in movements if m.amount < 0), Decimal(0).scaleb(-exponent))
    facts = {**group.facts, "opening_ledger": opening, "opening_available":
             balance(OPENING_AVAILABLE), "closing_available": balance(CLOSING_AVAILABLE),
             "detail_credits": credits, "detail_debits": debits,
             # Recorded, not enforced: see the module docstring.
             "details_explain_closing": None if opening is None
             else opening + credits - debits == closing}
    return Observation(
        source=source, kind="bai2", account={"bank_account": account.number},
        currency=account.currency, amount=closing, as_of=group.as_of,
        movements=tuple(movements), facts={key: format(value, "f") if isinstance(
            value, Decimal) else value for key, value in facts.items()})


def _trailer(record: _Record, source: str, expected: Sequence[tuple[str, int, str]]) -> None:
    """A 49, 98 or 99 record: each field must state exactly what the file holds."""
    reader = _Reader(record, source)
    for name, actual, holds in expected:
        taken = reader.take(name)
        stated = (_amount(taken, signed=True) if name.endswith("total")
                  else _count(taken, required=True))
        if stated != actual:
            raise taken.error(f"states {stated}, but {holds}")
    reader.end()

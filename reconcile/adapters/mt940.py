"""SWIFT MT940 customer statements, read field by field against SWIFT's formats.

Why not the mt-940 library: its patterns cannot be made strict through its options, and a
loose pattern gives a wrong number, not an error. Its balance pattern takes any three
characters as the currency and has no end anchor, so `EUR000000002145.23` reads as 2145 and
a balance without a currency turns its first digits into one; it keeps one `data` dict per
file, so every statement but the last is dropped and the statement lines of all accounts are
credited to the last one; it signs reversals (RC, RD) by their second letter; and its errors
log regex debugging and carry reprs. Here each field is matched whole, anything left over is
an error, and every error names the file, line, field and statement.

The file is read in three steps: lines into messages (`:20:` opens one; SWIFT's end of text
`-`, `-}` and `{…}` block envelopes close it; bank headers between messages are skipped);
messages into statements (a message that ends with an intermediate balance :62M: continues in
the next message for the account, which opens with :60M: at that balance); statements into
one Observation per account, currency and closing date (same-day statements must chain, and
the last :62F: of the day is the balance). Every message must add up: opening + statement
lines = closing, exactly. A bank file that does not add up is refused, never half-trusted.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, Inexact, localcontext

from ledger.errors import InputError
from reconcile.evidence import MAX_EVIDENCE_BYTES, Movement, Observation

TAGS = re.compile(rb"(?:^(?:\xef\xbb\xbf)?|\n):(20|25|28C|60[FM]|61|62[FM]|86):")
# A field starts a line with its tag: two digits and an optional option letter.
FIELD = re.compile(r":(?P<tag>[0-9]{2}[A-Z]?):(?P<text>.*)")
HEADER_TAGS = frozenset({"21", "25", "28", "28C"})
# Only these fields go on over more lines: :61: (supplementary details), :86: (6×65 text).
MULTILINE_TAGS = frozenset({"61", "86"})
AMOUNT = re.compile(r"([0-9]+),([0-9]*)")
AMOUNT_RUN = re.compile(r"[0-9.,]*")
MARK = re.compile(r"RC|RD|EC|ED|C|D")
# S + SWIFT message type, N (not SWIFT) or F (first advice) + a three-character code.
TRANSACTION_TYPE = re.compile(r"[NSF][A-Z0-9]{3}")
CURRENCY = re.compile(r"[A-Z]{3}")
# 15d: at most 15 characters with the decimal comma; 12 integer digits leave room for two
# decimals and are far above any real balance.
AMOUNT_MAX_CHARS = 15
AMOUNT_MAX_INTEGER_DIGITS = 12
# SWIFT allows 16x for :20:, :21:, :28C: and references, 35x for :25:; the header fields are
# held to the longest, as they name and never count. Banks write longer references (ASN puts
# the counterparty's IBAN, up to 34 characters, where 16 belong). Text of one field is
# bounded so that a damaged file cannot make a description of megabytes.
IDENTIFIER_MAX_CHARS = 35
REFERENCE_MAX_CHARS = 34
FIELD_MAX_CHARS = 2_000
NO_REFERENCE = frozenset({"", "NONREF", "NOTPROVIDED"})
# RC (reversal of a credit) takes money out like a debit; RD (reversal of a debit) brings it in.
SIGN_OF_MARK = {"C": 1, "RD": 1, "D": -1, "RC": -1}


class _Bad(ValueError):
    """A field's text breaks its format; the caller adds where."""


@dataclass(frozen=True)
class _Balance:
    final: bool
    on: date
    currency: str
    amount: Decimal
    line: int


@dataclass
class _Field:
    tag: str
    line: int
    text: str
    more: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _Line:
    """One :61: statement line with the :86: text that follows it."""

    amount: Decimal
    value_date: date
    reference: str | None
    details: list[str]
    information: list[str] = field(default_factory=list)

    def movement(self) -> Movement:
        # booked_on is the value date, as before: the entry date (MMDD) has no year of its own.
        text = " ".join(self.information) or " ".join(self.details)
        return Movement(amount=self.amount, booked_on=self.value_date, reference=self.reference,
                        description=" ".join(text.split()))


@dataclass
class _Message:
    source: str
    reference: str
    line: int
    end_line: int
    number: str | None = None
    account: str | None = None
    opening: _Balance | None = None
    closing: _Balance | None = None
    lines: list[_Line] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    @property
    def label(self) -> str:
        number = f" (no. {_clean(self.number)})" if self.number else ""
        return f"statement {_clean(self.reference)}{number}"

    def fail(self, line: int, tag: str, reason: str) -> InputError:
        return InputError(f"{self.label}: {reason}", source=self.source, line=line, field=tag)


def looks_like(content: bytes) -> bool:
    """MT940 field tags (:20:, :25:, :60F:, :61:, :86: …) at the start of a line."""
    return TAGS.search(content[:20_000]) is not None


def parse(content: bytes, source: str) -> list[Observation]:
    if len(content) > MAX_EVIDENCE_BYTES:
        raise InputError(f"larger than the {MAX_EVIDENCE_BYTES // 1_000_000} MB limit for one "
                         "evidence file", source=source)
    messages = _messages(content, source)
    if not messages:
        raise InputError("no statement (:20:) in the file", source=source)
    return [_observation(day, source) for day in _days(_statements(messages))]


def _messages(content: bytes, source: str) -> list[_Message]:
    """Each message once: a statement repeated (a file concatenated twice) would chain onto
    itself when its lines net to zero and count them twice."""
    first_seen: dict[bytes, int] = {}
    messages = []
    for fields in _split(_lines(content), source):
        message = _message(fields, source)
        text = "\n".join(f"{f.tag}:{f.text}\n" + "\n".join(t for _, t in f.more) for f in fields)
        first = first_seen.setdefault(hashlib.sha256(text.encode()).digest(), message.line)
        if first != message.line:
            raise message.fail(message.line, "20", f"the same message as at line {first}: a "
                               "statement counts once")
        messages.append(message)
    return messages


def _lines(content: bytes) -> Iterator[tuple[int, str]]:
    """Numbered lines without their ends (CRLF or LF) and trailing blanks."""
    content = content.removeprefix(b"\xef\xbb\xbf")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        # Older bank exports are ISO 8859-1; every byte string decodes as latin-1.
        text = content.decode("latin-1")
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.rstrip(" \t\r")


def _split(lines: Iterable[tuple[int, str]], source: str) -> Iterator[list[_Field]]:
    """Fields grouped by message; text outside messages (SWIFT blocks, bank headers) skipped."""
    fields: list[_Field] | None = None
    for number, line in lines:
        if not line:
            continue
        start = FIELD.match(line)
        if start and start["tag"] == "20":
            if fields:
                yield fields
            fields = [_Field("20", number, start["text"])]
        elif line[0] in "-{}":
            # SWIFT ends a message's text with "-" at the start of a line (no field's text may
            # start a line with it); "-}" and "{5:…}" close the block envelope.
            if fields:
                yield fields
            fields = None
        elif fields is None:
            if start:
                raise InputError("outside a statement: no :20: opens one before this line",
                                 source=source, line=number, field=start["tag"])
        elif start:
            fields.append(_Field(start["tag"], number, start["text"]))
        else:
            fields[-1].more.append((number, line))
    if fields:
        yield fields


def _message(fields: list[_Field], source: str) -> _Message:
    first = fields[0]
    last = fields[-1]
    message = _Message(source, first.text.strip(), first.line,
                       last.more[-1][0] if last.more else last.line)
    for current in fields:
        try:
            _check_size(current)
            _take(message, current)
        except _Bad as bad:
            raise message.fail(current.line, current.tag, str(bad)) from None
    return _finished(message)


def _check_size(current: _Field) -> None:
    if current.more and current.tag not in MULTILINE_TAGS:
        raise _Bad(f"the field goes on over the next line ({_shown(current.more[0][1])}); "
                   "only :61: and :86: take more than one line")
    size = len(current.text) + sum(len(text) for _, text in current.more)
    if size > FIELD_MAX_CHARS:
        raise _Bad(f"{size} characters, more than the {FIELD_MAX_CHARS} one field may hold")


def _take(message: _Message, current: _Field) -> None:
    """One field into the message, in SWIFT's order: header, :60a:, :61:/:86: lines, :62a:,
    then :64:, :65: and statement :86:."""
    tag = current.tag
    if tag in HEADER_TAGS or tag == "20":
        _header(message, current)
    elif tag in ("60F", "60M"):
        if message.opening is not None:
            raise _Bad("a second opening balance in the statement")
        message.opening = _balance(current)
    elif tag == "61":
        if message.opening is None or message.closing is not None:
            raise _Bad("a statement line must come between the opening (:60F:) and the "
                       "closing balance (:62F:)")
        message.lines.append(_statement_line(current))
    elif tag == "86":
        _information(message, current)
    elif tag in ("62F", "62M"):
        if message.opening is None or message.closing is not None:
            raise _Bad("a closing balance must follow the one opening balance (:60F:)")
        message.closing = _balance(current)
    elif tag in ("64", "65"):
        _trailer(message, current)
    else:
        raise _Bad("not a field of an MT940 statement")


def _header(message: _Message, current: _Field) -> None:
    tag = "28C" if current.tag == "28" else current.tag
    text = current.text.strip()
    if message.opening is not None:
        raise _Bad("must come before the opening balance (:60F:)")
    if tag in message.seen:
        raise _Bad(f"a second :{tag}: in the statement")
    message.seen.add(tag)
    if not text or len(text) > IDENTIFIER_MAX_CHARS:
        raise _Bad(f"must hold 1 to {IDENTIFIER_MAX_CHARS} characters, not {len(text)}")
    if tag == "25":
        message.account = text
    elif tag == "28C":
        # 5n[/5n] by SWIFT; banks also write "A1" or "036/2009/BPL": it names, never counts.
        message.number = text


def _information(message: _Message, current: _Field) -> None:
    text = " ".join([current.text, *(line for _, line in current.more)])
    if message.closing is not None:
        return  # information on the whole statement (ING puts its totals here): not a movement
    if not message.lines:
        raise _Bad("information (:86:) before any statement line (:61:)")
    # Rabobank writes one :86: per line of text: they all belong to the :61: before them.
    message.lines[-1].information.append(text)


def _trailer(message: _Message, current: _Field) -> None:
    if message.closing is None:
        raise _Bad("an available balance must follow the closing balance (:62F:)")
    if current.tag in message.seen and current.tag == "64":
        raise _Bad("a second :64: in the statement")
    message.seen.add(current.tag)
    balance = _balance(current)
    if balance.currency != message.closing.currency:
        raise _Bad(f"currency {balance.currency} differs from the closing balance's "
                   f"{message.closing.currency}")


def _balance(current: _Field) -> _Balance:
    """1!a6!n3!a15d: C or D, YYMMDD, ISO currency, amount with a decimal comma; nothing more."""
    text = current.text
    if not text:
        raise _Bad("empty balance")
    if text[0] not in "CD":
        raise _Bad(f"a balance starts with C (credit) or D (debit), not {_shown(text[0])}")
    on = _date(text[1:7])
    currency = text[7:10]
    if not CURRENCY.fullmatch(currency):
        raise _Bad(f"currency {_shown(currency)} is not three capital letters (ISO 4217)")
    amount = _amount(text[10:])
    return _Balance(current.tag.endswith("F") or current.tag in ("64", "65"), on, currency,
                    amount if text[0] == "C" or not amount else -amount, current.line)


def _date(text: str, name: str = "date") -> date:
    if not re.fullmatch(r"[0-9]{6}", text):
        raise _Bad(f"{name} {_shown(text)} is not YYMMDD")
    try:
        # Statements of a crypto exchange are all from this century.
        return date(2000 + int(text[:2]), int(text[2:4]), int(text[4:]))
    except ValueError:
        raise _Bad(f"{name} {text} is not a day of the calendar") from None


def _amount(text: str) -> Decimal:
    """15d: digits, a decimal comma, decimals; kept exactly as written, never rounded."""
    match = AMOUNT.match(text)
    if match is None:
        if re.match(r"[0-9]*\.[0-9]", text):
            raise _Bad(f"amount {_shown(text)} has a dot: SWIFT amounts take a decimal comma")
        if re.match(r"[0-9]", text):
            raise _Bad(f"amount {_shown(text)} has no decimal comma")
        if text.startswith(","):
            raise _Bad(f"amount {_shown(text)} has no digit before the decimal comma")
        raise _Bad(f"{_shown(text) if text else 'nothing'} where the amount belongs")
    if match.end() != len(text):
        raise _Bad(f"{_shown(text[match.end():])} after the amount {match.group()}")
    whole, fraction = match.groups()
    if len(whole) > AMOUNT_MAX_INTEGER_DIGITS:
        raise _Bad(f"amount {_shown(text)} has {len(whole)} integer digits, more than "
                   f"{AMOUNT_MAX_INTEGER_DIGITS}")
    if len(text) > AMOUNT_MAX_CHARS:
        raise _Bad(f"amount {_shown(text)} is longer than {AMOUNT_MAX_CHARS} characters")
    return Decimal(f"{whole}.{fraction}" if fraction else whole)


def _statement_line(current: _Field) -> _Line:
    """6!n[4!n]2a[1!a]15d1!a3!c16x[//16x] and [34x] on the next line."""
    text = current.text
    value_date = _date(text[:6], "value date")
    rest = text[6:]
    if re.match(r"[0-9]{4}", rest):
        _entry_date(rest[:4], value_date)
        rest = rest[4:]
    elif rest.startswith("    "):
        rest = rest[4:]  # ASN leaves the optional entry date blank instead of out
    mark = MARK.match(rest)
    if mark is None:
        raise _Bad(f"debit/credit mark {_shown(rest[:2])} is not C, D, RC or RD")
    if mark.group() in ("EC", "ED"):
        raise _Bad(f"expected entry ({mark.group()}): an MT942 interim report's, not booked "
                   "on an MT940 statement")
    rest = rest[mark.end():]
    if rest[:1].isascii() and rest[:1].isupper():
        rest = rest[1:]  # funds code: the currency's third letter, when a bank needs it
    run = AMOUNT_RUN.match(rest)
    assert run is not None  # the pattern matches the empty string
    amount = _amount(run.group())
    rest = rest[run.end():]
    if not TRANSACTION_TYPE.match(rest):
        raise _Bad(f"transaction type {_shown(rest[:4])} is not N, S or F and three letters or "
                   "digits")
    reference, details = _references(rest[4:])
    return _Line(SIGN_OF_MARK[mark.group()] * amount, value_date, reference,
                 [*details, *(line.strip() for _, line in current.more)])


def _entry_date(text: str, value_date: date) -> None:
    """MMDD without a year: a day of the value date's year or the one before or after."""
    month, day = int(text[:2]), int(text[2:])
    for year in (value_date.year, value_date.year + 1, value_date.year - 1):
        try:
            date(year, month, day)
            return
        except ValueError:
            continue
    raise _Bad(f"entry date {text} is not MMDD")


def _references(text: str) -> tuple[str | None, list[str]]:
    """The owner's reference, else the bank's (after //); NONREF means none."""
    customer, _, bank = text.partition("//")
    customer, bank = customer.strip(), bank.strip()
    details = []
    if len(customer) > 16 and " " in customer:
        # Rabobank's older format: 16 characters of reference, then the counterparty's name.
        customer, name = customer[:16].strip(), customer[16:].strip()
        details.append(name)
    for reference in (customer, bank):
        if len(reference) > REFERENCE_MAX_CHARS:
            raise _Bad(f"reference {_shown(reference)} is longer than {REFERENCE_MAX_CHARS} "
                       "characters")
    chosen = next((r for r in (customer, bank) if r not in NO_REFERENCE), None)
    return chosen, details


def _finished(message: _Message) -> _Message:
    where = message.line
    if message.account is None:
        raise message.fail(where, "25", "no account identification (:25:)")
    if message.opening is None:
        raise message.fail(where, "60F", "no opening balance (:60F:)")
    if message.closing is None:
        raise message.fail(message.end_line, "62F", "no closing balance (:62F:)")
    opening, closing = message.opening, message.closing
    tag = "62F" if closing.final else "62M"
    if closing.currency != opening.currency:
        raise message.fail(closing.line, tag, f"currency {closing.currency} differs from the "
                           f"opening balance's {opening.currency}")
    total = _total(line.amount for line in message.lines)
    expected = _total([opening.amount, total])
    if expected != closing.amount:
        difference = _total([closing.amount, -expected])
        raise message.fail(closing.line, tag, (
            f"does not add up: opening {opening.amount} + {len(message.lines)} statement lines "
            f"({total}) = {expected}, but the closing balance is {closing.amount}, "
            f"{abs(difference)} too {'much' if difference > 0 else 'little'}"))
    return message


def _total(amounts: Iterable[Decimal]) -> Decimal:
    """An exact sum: 50 MB of statement lines of at most 15 digits need fewer than 40."""
    with localcontext() as context:
        context.prec = 60
        context.traps[Inexact] = True
        return sum(amounts, Decimal(0))


def _statements(messages: list[_Message]) -> list[list[_Message]]:
    """Messages joined where a statement goes on: :62M: continues at the next message for the
    account, which must open with :60M: at the same balance."""
    going_on: dict[str, list[_Message]] = {}
    done: list[list[_Message]] = []
    for message in messages:
        assert message.opening is not None and message.closing is not None
        key = _key(message)
        chain = going_on.pop(key, None)
        if message.opening.final and chain is not None:
            raise message.fail(message.opening.line, "60F", (
                f"opens with a final balance (:60F:), but {chain[-1].label} for this account "
                "ended with an intermediate one (:62M:): the statement before is not final"))
        if not message.opening.final:
            chain = _continued(chain, message)
        chain = [*(chain or []), message]
        if message.closing.final:
            done.append(chain)
        else:
            going_on[key] = chain
    for chain in going_on.values():
        last = chain[-1]
        assert last.closing is not None
        raise last.fail(last.closing.line, "62M",
                        "intermediate balance only (:62M:): the statement is not final")
    return done


def _continued(chain: list[_Message] | None, message: _Message) -> list[_Message]:
    assert message.opening is not None
    if chain is None:
        raise message.fail(message.opening.line, "60M", (
            "an intermediate opening balance (:60M:) continues a statement, but no message "
            "before it for this account ends with an intermediate balance (:62M:)"))
    before = chain[-1].closing
    assert before is not None
    if (before.currency, before.amount) != (message.opening.currency, message.opening.amount):
        raise message.fail(message.opening.line, "60M", (
            f"the chain of messages breaks: opens at {message.opening.amount} "
            f"{message.opening.currency}, but {chain[-1].label} closed at {before.amount} "
            f"{before.currency} (:62M:)"))
    return chain


def _days(statements: list[list[_Message]]) -> list[list[_Message]]:
    """Statements of one account, currency and closing date, in file order, as one: each must
    open where the one before closed; the last :62F: of the day is the balance."""
    days: dict[tuple[str, str, date], list[_Message]] = {}
    for chain in statements:
        closing = chain[-1].closing
        opening = chain[0].opening
        assert closing is not None and opening is not None
        day = days.setdefault((_key(chain[0]), closing.currency, closing.on), [])
        if day:
            before = day[-1].closing
            assert before is not None
            if before.amount != opening.amount:
                raise chain[0].fail(opening.line, "60F", (
                    f"opens at {opening.amount}, but {day[-1].label}, which closes the same "
                    f"account on the same day, closed at {before.amount}"))
        day.extend(chain)
    return list(days.values())


def _key(message: _Message) -> str:
    return (message.account or "").replace(" ", "")


def _observation(messages: list[_Message], source: str) -> Observation:
    first, last = messages[0], messages[-1]
    opening, closing = first.opening, last.closing
    assert opening is not None and closing is not None and closing.final
    movements = tuple(line.movement() for message in messages for line in message.lines)
    # Checked per message above; checked again here because merging could break it.
    assert _total([opening.amount, *(m.amount for m in movements)]) == closing.amount
    account_id = last.account or ""
    return Observation(
        source=source, kind="mt940", account=_account(account_id), currency=closing.currency,
        amount=closing.amount, as_of=closing.on, movements=movements,
        facts={"statement_reference": last.reference, "statement_number": last.number,
               "account_identification": account_id, "opening_balance": str(opening.amount),
               "opening_date": opening.on.isoformat(), "closing_date": closing.on.isoformat(),
               "final": closing.final, "messages": len(messages)})


def _account(account_id: str) -> dict[str, str]:
    """`:25:` holds an IBAN, or "BANKCODE/ACCOUNT", or an account number."""
    compact = account_id.replace(" ", "")
    if re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}", compact):
        return {"iban": compact}
    return {"bank_account": compact.rsplit("/", 1)[-1], "account_identification": account_id}


def _shown(text: str) -> str:
    """Text from the file, quoted for a one-line message."""
    return f'"{_clean(text)}"'


def _clean(text: str) -> str:
    """At most 30 characters, each printable: a message stays one readable line."""
    clean = "".join(c if c.isprintable() else "?" for c in text[:30])
    return clean + ("…" if len(text) > 30 else "")

"""ISO 20022 bank statements (camt.053, camt.052) read right: every version's element names,
intraday sequences, the balance that counts, strict amounts, hostile XML, and fuzzing.

A wrong number is the worst defect a statement reader can have, so most tests state the number
a file must give, worked out here, or the exact error it must give instead.
"""

from __future__ import annotations

import contextlib
import copy
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date
from decimal import Decimal

import defusedxml.ElementTree as SafeET
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ledger.errors import InputError
from reconcile.adapters import camt053
from reconcile.adapters.detect import parse_evidence, recognise
from reconcile.evidence import EvidenceFile, Observation
from tests.camt import IBAN, Bal, Ntry, Stmt, document, statement
from tests.conftest import FIXTURES
from tests.fuzzing import examples, no_hang

CAMT = FIXTURES / "camt053"


def parse(content: bytes) -> list[Observation]:
    return camt053.parse(content, "bank.xml")


def refusal(content: bytes) -> str:
    with pytest.raises(InputError) as refused:
        camt053.parse(content, "bank.xml")
    return refused.value.render()


def amounts(observation: Observation) -> list[Decimal]:
    return [movement.amount for movement in observation.movements]


# One day on one account: 1000.00 + 250.50 − 75.25 = 1175.25; the pending 999 is not booked.
DAY_ENTRIES = (Ntry("250.50", ref="E2E-1"), Ntry("-75.25"), Ntry("999", status="PDNG"))


@pytest.mark.parametrize("version", [2, 4, 8, 10, 13])
def test_statement_in_each_version_gives_its_closing_booked_balance(version: int) -> None:
    content = document(version, Stmt("S-1", (Bal("OPBD", "1000.00"), Bal("CLAV", "5000"),
                                             Bal("CLBD", "1175.25")), DAY_ENTRIES))
    [observation] = parse(content)
    assert (observation.account, observation.currency, observation.amount, observation.as_of) \
        == ({"iban": IBAN}, "EUR", Decimal("1175.25"), date(2025, 11, 25))
    assert amounts(observation) == [Decimal("250.50"), Decimal("-75.25")]
    assert observation.movements[0].reference == "E2E-1"
    assert observation.facts["version"] == f"camt.053.001.{version:02d}"
    assert observation.facts["balance_type"] == "CLBD"
    assert observation.facts["entries_checked"] is True


@pytest.mark.parametrize("version", range(2, 14))
def test_every_version_from_02_to_13_is_read(version: int) -> None:
    # Othr/Id instead of an IBAN, DtTm instead of Dt, a debit closing balance: 10 − 25 = −15.
    content = document(version, Stmt("S", (Bal("PRCD", "10", time="00:00:00+01:00"),
                                           Bal("CLBD", "-15", time="23:59:59+01:00")),
                                      (Ntry("-25"),), iban=None, other="0390123456"))
    [observation] = parse(content)
    assert (observation.account, observation.amount) == ({"bank_account": "0390123456"},
                                                         Decimal("-15"))
    assert recognise(EvidenceFile("s.xml", content)) == "camt053"


@pytest.mark.parametrize("version", [1, 14, 99])
def test_an_unknown_version_is_named(version: int) -> None:
    content = document(version, Stmt("S", (Bal("CLBD", "1"),)))
    assert refusal(content) == (f"bank.xml:2: camt.053.001.{version:02d} is not supported "
                                "(camt.053.001.02 to .13 are)")


# The genkgo fixtures with their closing balance put right (27.00 EUR CRDT = 18.15 + 8.85):
# the real files' structure in versions .02, .03, .04 and .08 is still read.
REPAIRED = [("camt053.v2.minimal.xml", {"iban": "NL26VAYB8060476890"}, True),
            ("camt053.v3.xml", {"bank_account": "NL26VAYB8060476890"}, True),
            # Page 2 of a statement whose page 1 is not in the file: its entries are not all of
            # the statement's, so opening + entries = closing cannot be asked of it.
            ("camt053.v4.xml", {"bank_account": "NL26VAYB8060476890"}, False),
            ("camt053.v8.xml", {"bank_account": "NL26VAYB8060476890"}, False)]


def repaired(name: str) -> bytes:
    content = (CAMT / name).read_bytes()
    wrong = re.compile(rb'(<Cd>CLBD</Cd>\s*</CdOrPrtry>\s*</Tp>\s*)<Amt Ccy="SEK">27.00</Amt>'
                       rb"(\s*)<CdtDbtInd>DBIT</CdtDbtInd>")
    fixed, count = wrong.subn(rb'\1<Amt Ccy="EUR">27.00</Amt>\2<CdtDbtInd>CRDT</CdtDbtInd>',
                              content)
    assert count == 1
    return fixed


@pytest.mark.parametrize(("name", "account", "checked"), REPAIRED)
def test_real_fixture_with_its_closing_put_right(name: str, account: dict[str, str],
                                                 checked: bool) -> None:
    [observation] = parse(repaired(name))
    assert (observation.account, observation.amount, observation.currency) == (
        account, Decimal("27.00"), "EUR")
    assert amounts(observation) == [Decimal("8.85")]
    assert observation.facts["entries_checked"] is checked


def test_the_same_fixture_with_a_wrong_closing_is_refused_with_the_numbers() -> None:
    content = repaired("camt053.v2.minimal.xml").replace(b'"EUR">27.00<', b'"EUR">27.10<')
    assert refusal(content) == (
        "bank.xml:54: Stmt[0]/Bal[1]: statement 253EURNL26VAYB8060476890: opening OPBD 18.15 EUR"
        " + booked entries 8.85 = 27.00, but the closing CLBD is 27.10 EUR: 0.10 too much in "
        "the closing balance")


# An intraday sequence: 100 → 150 → 120 → 200.
S1 = Stmt("S1", (Bal("OPBD", "100"), Bal("CLBD", "150")), (Ntry("50"),), seq=1, legal=7,
          created="2025-11-25T10:00:00+09:00")
S2 = Stmt("S2", (Bal("OPBD", "150"), Bal("CLBD", "120")), (Ntry("-30"),), seq=2, legal=8,
          created="2025-11-25T14:00:00+09:00")
S3 = Stmt("S3", (Bal("OPBD", "120"), Bal("CLBD", "200")), (Ntry("80"),), seq=3, legal=9,
          created="2025-11-25T18:00:00+09:00")


def _without(stmt: Stmt, *names: str) -> Stmt:
    return replace(stmt, **dict.fromkeys(names))


@pytest.mark.parametrize(("dropped", "basis"), [
    ((), "ElctrncSeqNb"), (("seq",), "LglSeqNb"), (("seq", "legal"), "CreDtTm")])
def test_intraday_sequence_out_of_order_gives_the_last_closing(dropped: tuple[str, ...],
                                                               basis: str) -> None:
    file_order = [_without(s, *dropped) for s in (S3, S1, S2)]
    [observation] = parse(document(8, *file_order))
    assert observation.amount == Decimal("200")
    assert amounts(observation) == [Decimal("50"), Decimal("-30"), Decimal("80")]
    assert observation.facts["statements"] == ["S1", "S2", "S3"]
    assert observation.facts["ordered_by"] == basis
    assert observation.facts["statement_id"] == "S3"


def test_a_break_in_the_intraday_chain_names_both_statements() -> None:
    broken = Stmt("S3", (Bal("OPBD", "121"), Bal("CLBD", "201")), (Ntry("80"),), seq=3)
    assert refusal(document(8, broken, S1, S2)) == (
        "bank.xml:5: Stmt[0]/Bal[0]: statement S3 opens at 121 EUR, but statement S2, before it "
        "by ElctrncSeqNb, closes at 120 EUR: the day's sequence of statements is broken")


def test_a_sequence_member_without_an_opening_cannot_be_chained() -> None:
    lone = Stmt("S2", (Bal("CLBD", "120"),), (Ntry("-30"),), seq=2)
    assert "statement S2 has no opening booked balance (OPBD or PRCD), so it cannot be checked " \
           "to follow statement S1" in refusal(document(8, lone, S1))


def test_a_sequence_without_order_that_returns_to_its_start_is_refused() -> None:
    there = Stmt("A", (Bal("OPBD", "10"), Bal("CLBD", "20")), (Ntry("10"),), created=None)
    back = Stmt("B", (Bal("OPBD", "20"), Bal("CLBD", "10")), (Ntry("-10"),), created=None)
    assert "which closing is the last cannot be told" in refusal(document(2, there, back))


def test_a_sequence_without_order_is_read_in_file_order_when_the_chain_decides() -> None:
    first = Stmt("A", (Bal("OPBD", "10"), Bal("CLBD", "20")), (Ntry("10"),), created=None)
    then = Stmt("B", (Bal("OPBD", "20"), Bal("CLBD", "25")), (Ntry("5"),), created=None)
    [observation] = parse(document(2, first, then))
    assert (observation.amount, observation.facts["ordered_by"]) == (Decimal("25"),
                                                                     "order in the file")
    assert "broken" in refusal(document(2, then, first))


def test_statements_sharing_an_id_keep_their_place_in_the_file() -> None:
    # No sequence numbers: the file's order is the chain's, even when a bank reuses an Id.
    first = Stmt("X", (Bal("OPBD", "10"), Bal("CLBD", "20")), (Ntry("10"),), created=None)
    second = Stmt("Y", (Bal("OPBD", "20"), Bal("CLBD", "30")), (Ntry("10"),), created=None)
    third = Stmt("X", (Bal("OPBD", "30"), Bal("CLBD", "40")), (Ntry("10"),), created=None)
    [observation] = parse(document(2, first, second, third))
    assert (observation.amount, observation.facts["statements"]) == (Decimal("40"),
                                                                     ["X", "Y", "X"])


def test_two_accounts_and_two_days_stay_separate_observations() -> None:
    other = Stmt("O", (Bal("CLBD", "7", ccy="USD"),), iban="DE89370400440532013000", ccy="USD")
    next_day = Stmt("N", (Bal("OPBD", "200", day="2025-11-26"), Bal("CLBD", "190",
                                                                     day="2025-11-26")),
                    (Ntry("-10", day="2025-11-26"),), seq=4)
    found = parse(document(4, S1, other, S2, next_day))
    assert [(o.account, o.currency, o.amount, o.as_of) for o in found] == [
        ({"iban": IBAN}, "EUR", Decimal("120"), date(2025, 11, 25)),
        ({"iban": "DE89370400440532013000"}, "USD", Decimal("7"), date(2025, 11, 25)),
        ({"iban": IBAN}, "EUR", Decimal("190"), date(2025, 11, 26))]


def test_an_exact_copy_is_read_once_and_a_different_copy_is_refused() -> None:
    [observation] = parse(document(2, S1, S1))
    assert (observation.amount, amounts(observation)) == (Decimal("150"), [Decimal("50")])
    changed = Stmt("S1", (Bal("OPBD", "100"), Bal("CLBD", "160")), (Ntry("60"),), seq=1)
    assert "broken" in refusal(document(2, S1, changed))


def test_pages_of_one_statement_are_read_as_one() -> None:
    page_1 = Stmt("P", (Bal("OPBD", "100"),), (Ntry("5"), Ntry("6")), page=(1, False))
    page_2 = Stmt("P", (Bal("CLBD", "113"),), (Ntry("2"),), page=(2, True))
    [observation] = parse(document(8, page_2, page_1))
    assert observation.amount == Decimal("113")
    assert amounts(observation) == [Decimal("5"), Decimal("6"), Decimal("2")]
    assert observation.facts["entries_checked"] is True
    short = Stmt("P", (Bal("CLBD", "114"),), (Ntry("2"),), page=(2, True))
    assert "100 EUR + booked entries 13 = 113, but the closing CLBD is 114 EUR: 1 too much" in \
        refusal(document(8, page_1, short))


def test_an_intermediate_closing_of_a_page_is_not_the_statements_closing() -> None:
    # Page 1 of 2 alone: its CLBD carries the sub-type INTM, the balance at the page's end.
    intermediate = Bal("CLBD", "111").xml().replace(
        "</CdOrPrtry>", "</CdOrPrtry><SubTp><Cd>INTM</Cd></SubTp>")
    page_1 = Stmt("P", (Bal("OPBD", "100"),), (Ntry("11"),), page=(1, False),
                  extra=(intermediate,))
    assert refusal(document(8, page_1)).endswith(
        "statement P has balances OPBD, CLBD/INTM but no closing booked balance CLBD")
    page_2 = Stmt("P", (Bal("CLBD", "113"),), (Ntry("2"),), page=(2, True))
    [observation] = parse(document(8, page_1, page_2))
    assert observation.amount == Decimal("113")


def test_pages_with_all_balances_on_the_first_page() -> None:
    page_1 = Stmt("P", (Bal("OPBD", "100"), Bal("CLBD", "113")), (Ntry("11"),), page=(1, False))
    page_2 = Stmt("P", (), (Ntry("2"),), page=(2, True))
    [observation] = parse(document(8, page_1, page_2))
    assert (observation.amount, observation.facts["entries_checked"]) == (Decimal("113"), True)


def test_a_page_twice_with_different_content_is_refused() -> None:
    page = Stmt("P", (Bal("OPBD", "100"), Bal("CLBD", "113")), (Ntry("13"),), page=(1, True))
    other = Stmt("P", (Bal("OPBD", "100"), Bal("CLBD", "114")), (Ntry("14"),), page=(1, True))
    assert "statement P: page 1 appears twice with different content (first at line 5)" in \
        refusal(document(8, page, other))


def test_a_statement_without_an_id_is_named_by_its_account() -> None:
    content = _with_closing_amount("1e5").replace(b"<Id>S</Id>", b"")
    assert f"statement without an Id for account {IBAN}: amount '1e5'" in refusal(content)


def test_camt052_report_counts_its_interim_booked_balance() -> None:
    report = Stmt("R-1", (Bal("OPBD", "100", time="08:00:00+09:00"),
                          Bal("ITBD", "130", time="12:00:00+09:00"), Bal("ITAV", "900")),
                  (Ntry("30"), Ntry("5", status="PDNG")))
    content = document(8, report, message="camt.052")
    assert recognise(EvidenceFile("r.xml", content)) == "camt052"
    [observation] = parse_evidence(EvidenceFile("r.xml", content))
    assert (observation.amount, observation.kind) == (Decimal("130"), "camt053")
    assert observation.facts["balance_type"] == "ITBD"
    assert observation.facts["message"] == "camt.052"


def test_camt052_report_with_a_closing_booked_balance_counts_that() -> None:
    report = Stmt("R-2", (Bal("OPBD", "100"), Bal("ITBD", "130"), Bal("CLBD", "125")),
                  (Ntry("30"), Ntry("-5")))
    [observation] = parse(document(13, report, message="camt.052"))
    assert (observation.amount, observation.facts["balance_type"]) == (Decimal("125"), "CLBD")


def test_camt052_without_a_booked_balance_names_what_it_has() -> None:
    report = Stmt("R-3", (Bal("ITAV", "100"),))
    assert refusal(document(2, report, message="camt.052")) == (
        "bank.xml:5: Rpt[0]: report R-3 has balances ITAV but no closing booked balance CLBD or "
        "interim booked balance ITBD")


def test_camt054_is_refused_with_what_to_give_instead() -> None:
    content = document(8, Stmt("N-1", (), (Ntry("5"),)), message="camt.054")
    assert recognise(EvidenceFile("n.xml", content)) == "camt054"
    with pytest.raises(InputError) as refused:
        parse_evidence(EvidenceFile("n.xml", content))
    assert refused.value.render() == (
        "n.xml: camt.054 notifications carry movements but no balance; reconcile with a camt.053 "
        "or camt.052")


@pytest.mark.parametrize(("balances", "has"), [
    ((Bal("OPBD", "1"), Bal("CLAV", "1")), "has balances OPBD, CLAV but"),
    ((Bal("ITBD", "1"),), "has balances ITBD but"),
    ((), "has no balances (Bal) and so"),
])
def test_a_statement_without_a_closing_booked_balance_names_what_it_has(
        balances: tuple[Bal, ...], has: str) -> None:
    assert refusal(document(8, Stmt("STMT-ID", balances))) == (
        f"bank.xml:5: Stmt[0]: statement STMT-ID {has} no closing booked balance CLBD")


def test_text_from_the_file_never_breaks_the_message_over_lines() -> None:
    # Found by fuzzing: a balance type written "\nCLBD" was echoed into the message raw.
    content = document(8, Stmt("S\u2028T", (Bal("OPBD", "1"), Bal("CLBD", "1")))).replace(
        b"<Cd>CLBD</Cd>", b"<Cd>\nCLBD</Cd>")
    assert refusal(content) == ("bank.xml:5: Stmt[0]: statement S?T has balances OPBD, ?CLBD but "
                                "no closing booked balance CLBD")


def test_two_closing_balances_are_refused() -> None:
    content = document(8, Stmt("S", (Bal("CLBD", "1"), Bal("CLBD", "2"))))
    assert "2 balances of type CLBD, expected one" in refusal(content)


def test_a_reversal_moves_the_balance_the_way_its_indicator_says() -> None:
    # A debit of 40 and its reversal, booked as a credit of 40 with RvslInd: 100 − 40 + 40 = 100.
    entries = (Ntry("-40", text="card"), Ntry("40", reversal="true", text="card"))
    [observation] = parse(document(8, Stmt("S", (Bal("OPBD", "100"), Bal("CLBD", "100")),
                                           entries)))
    assert amounts(observation) == [Decimal("-40"), Decimal("40")]
    assert observation.movements[1].description == "reversal: card"
    flipped = document(8, Stmt("S", (Bal("OPBD", "100"), Bal("CLBD", "20")), entries))
    assert "80 too little" in refusal(flipped)
    bad = document(8, Stmt("S", (Bal("CLBD", "100"),), (Ntry("40", reversal="yes"),)))
    assert refusal(bad).endswith("Stmt[0]/Ntry[0]/RvslInd: statement S: 'yes' is not true or "
                                 "false")


def test_opening_plus_booked_entries_must_equal_the_closing() -> None:
    entries = (Ntry("0.1"), Ntry("0.2"), Ntry("-0.3"), Ntry("0.00001"), Ntry("5", status="INFO"))
    [observation] = parse(document(2, Stmt("S", (Bal("OPBD", "0"), Bal("CLBD", "0.00001")),
                                           entries)))
    assert observation.amount == Decimal("0.00001")
    content = document(2, Stmt("S", (Bal("OPBD", "10"), Bal("CLBD", "9.99")), (Ntry("-0.02"),)))
    assert refusal(content) == (
        "bank.xml:5: Stmt[0]/Bal[1]: statement S: opening OPBD 10 EUR + booked entries -0.02 = "
        "9.98, but the closing CLBD is 9.99 EUR: 0.01 too much in the closing balance")


def escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


def _with_closing_amount(text: str) -> bytes:
    content = document(8, Stmt("S", (Bal("CLBD", "777"),)))
    return content.replace(b">777<", b">" + text.encode() + b"<")


@pytest.mark.parametrize("text", [
    "1E+5000", "1e5", "1E+999999999", "12,50", " 12.50", "12.50 ", "-12.50", "+12.50", ".5", "5.",
    "1.123456", "1234567890123456789", "12345678901234.56789", "", "NaN", "Infinity", "0x10",
    "\u0661\u0662", "１２", "1_000", "12.5.0", "12 50"])
def test_an_amount_that_is_not_a_plain_decimal_is_refused(text: str) -> None:
    message = refusal(_with_closing_amount(escape_text(text)))
    assert message.startswith("bank.xml:5: Stmt[0]/Bal[0]/Amt: statement S: amount ")
    assert "is not a plain decimal" in message or "more than 18 digits" in message
    assert "\n" not in message


@pytest.mark.parametrize(("text", "value"), [
    ("0", "0"), ("12.5", "12.5"), ("000012.50000", "12.5"), ("999999999999999999", "999999999999999999"),
    ("9999999999999.99999", "9999999999999.99999")])
def test_a_plain_decimal_is_read_exactly(text: str, value: str) -> None:
    [observation] = parse(_with_closing_amount(text))
    assert observation.amount == Decimal(value)


def test_a_huge_exponent_is_refused_at_once() -> None:
    with no_hang():
        refusal(_with_closing_amount("1E+999999999"))
        refusal(_with_closing_amount("9" * 1_000_000))


@pytest.mark.parametrize(("old", "new", "reason"), [
    (b'Ccy="EUR">777', b'Ccy="eur">777', "currency 'eur' is not three capital letters"),
    (b'Ccy="EUR">777', b'Ccy="EURO">777', "currency 'EURO' is not three capital letters"),
    (b'Ccy="EUR">777', b'Ccy="">777', "currency '' is not three capital letters"),
    (b'Ccy="EUR">777', b">777", "currency nothing is not three capital letters"),
    (b"<CdtDbtInd>CRDT", b"<CdtDbtInd>CRD", "credit/debit indicator 'CRD' is not CRDT or DBIT"),
    (b"<CdtDbtInd>CRDT", b"<CdtDbtInd>crdt", "credit/debit indicator 'crdt' is not CRDT or"),
    (b"<CdtDbtInd>CRDT", b"<CdtDbtInd> CRDT", "credit/debit indicator ' CRDT' is not CRDT or"),
    (b"<CdtDbtInd>CRDT</CdtDbtInd>", b"", "credit/debit indicator nothing is not CRDT or DBIT"),
    (b"<Amt Ccy", b"<Amt Ccy=\"EUR\">1</Amt><Amt Ccy", "more than one Amt"),
    (b">777<", b">7<x/>77<", "holds elements where the schema has a value"),
    (b"<Dt>2025-11-25</Dt></Dt>", b"<Dt>2025-11-31</Dt></Dt>", "'2025-11-31' is not an ISO date"),
    (b"<Dt>2025-11-25</Dt></Dt>", b"<Dt>20251125</Dt></Dt>", "'20251125' is not an ISO date"),
    (b"<Cd>CLBD</Cd>", b"<Cd>CLBD</Cd><Prtry>X</Prtry>", "needs exactly one of Cd or Prtry"),
])
def test_bad_currency_indicator_and_structure_are_refused(old: bytes, new: bytes,
                                                          reason: str) -> None:
    content = document(8, Stmt("S", (Bal("CLBD", "777"),)))
    assert content.count(old) == 1
    message = refusal(content.replace(old, new))
    assert message.startswith("bank.xml:5: Stmt[0]/Bal[0]")
    assert f"statement S: {reason}" in message


@pytest.mark.parametrize(("old", "new", "reason"), [
    (b'<Ntry><Amt Ccy="EUR">5<', b'<Ntry><Amt Ccy="EUR">1e5<',
     "Stmt[0]/Ntry[0]/Amt: statement S: amount '1e5'"),
    (b'<Ntry><Amt Ccy="EUR">5<', b'<Ntry><Amt Ccy="USD">5<',
     "entry in USD on a statement whose closing balance is in EUR"),
    (b"<Sts>BOOK</Sts>", b"", "Stmt[0]/Ntry[0]: statement S: entry without a status (Sts)"),
    (b"<Sts>BOOK</Sts>", b"<Sts>BOKK</Sts>", "entry status 'BOKK' is not one of BOOK, FUTR, "
                                             "INFO, PDNG"),
    (b"<Sts>BOOK</Sts>", b"<Sts><Prtry>X</Prtry></Sts>", "entry status is proprietary"),
    (b"<BookgDt><Dt>2025-11-25</Dt></BookgDt><ValDt><Dt>2025-11-25</Dt></ValDt>", b"",
     "booked entry without a booking or value date"),
])
def test_bad_entries_are_refused(old: bytes, new: bytes, reason: str) -> None:
    content = document(2, Stmt("S", (Bal("OPBD", "0"), Bal("CLBD", "5")), (Ntry("5"),)))
    assert content.count(old) == 1
    assert reason in refusal(content.replace(old, new))


def test_status_is_read_in_both_forms_in_every_version() -> None:
    # The schemas moved from the code to Sts/Cd around 001.08 (the 001.08 fixture writes
    # Sts/Cd); both are read in every version, so which one a bank writes never changes a number.
    for version in (2, 8, 13):
        for form in (b"<Sts>BOOK</Sts>", b"<Sts><Cd>BOOK</Cd></Sts>"):
            content = document(version, Stmt("S", (Bal("OPBD", "0"), Bal("CLBD", "5")),
                                             (Ntry("5"),)))
            content = re.sub(rb"<Sts>.*?</Sts>(?=<BookgDt>)", form, content)
            assert parse(content)[0].amount == Decimal("5")


@pytest.mark.parametrize("declaration", [
    b'<?xml version="1.0" encoding="x-nope"?>', b'<?xml version="1.0" encoding="utf-32"?>',
    b"<?xml version='1.0' encoding='rot13'?>", b'<?xml version="1.0" encoding="cp500"?>',
    b'<?xml version="1.0"' + b" " * 300 + b'encoding="x-nope"?>'])
def test_an_unknown_encoding_is_a_clear_error(declaration: bytes) -> None:
    content = document(2, Stmt("S", (Bal("CLBD", "1"),))).replace(
        b'<?xml version="1.0" encoding="UTF-8"?>', declaration)
    with pytest.raises(InputError) as refused:
        parse_evidence(EvidenceFile("bank.xml", content))
    assert refused.value.render().startswith("bank.xml:1: the XML declaration names the encoding")


def test_a_byte_order_mark_and_latin1_are_fine() -> None:
    content = document(2, Stmt("S", (Bal("CLBD", "1"),)))
    assert parse(b"\xef\xbb\xbf" + content)[0].amount == Decimal("1")
    latin = document(2, Stmt("S\xe9", (Bal("CLBD", "1"),)), encoding="ISO-8859-1")
    latin = latin.replace("S\xe9".encode(), b"S\xe9")
    assert parse(latin)[0].facts["statement_id"] == "Sé"


def test_malformed_xml_names_the_line() -> None:
    content = document(2, Stmt("S", (Bal("CLBD", "1"),))).replace(b"</Stmt>", b"</Stmtx>")
    assert refusal(content).startswith("bank.xml:5: malformed XML: mismatched tag")


def test_write_statement_escapes_text_and_writes_plain_amounts() -> None:
    content = statement(IBAN, "JPY", "1E+3", "2025-11-25", [("-5", "A&B<1>", "fee & <tax>")])
    [observation] = parse(content)
    assert observation.amount == Decimal("1000")
    assert (observation.movements[0].reference, observation.movements[0].description) == (
        "A&B<1>", "fee & <tax>")


# Fuzzing: mutate valid statements at the byte and the element level. The only outcomes
# allowed are observations that keep the invariants or an InputError with a one-line message.

def _seeds() -> list[bytes]:
    built = [document(v, Stmt("S", (Bal("OPBD", "1000.00"), Bal("CLBD", "1175.25")), DAY_ENTRIES))
             for v in (2, 4, 8, 10, 13)]
    built += [document(8, S3, S1, S2), document(2, S1, S1),
              document(8, Stmt("R", (Bal("OPBD", "100"), Bal("ITBD", "130")), (Ntry("30"),)),
                       message="camt.052"),
              document(8, Stmt("P", (Bal("OPBD", "100"),), (Ntry("5"),), page=(1, False)),
                       Stmt("P", (Bal("CLBD", "107"),), (Ntry("2", reversal="true"),),
                            page=(2, True))),
              statement(IBAN, "JPY", "249670", "2025-11-25", [("-330", None, "fee")])]
    fixtures = [path.read_bytes() for path in sorted(CAMT.glob("*.xml"))]
    return built + fixtures + [repaired(name) for name, _, _ in REPAIRED]


SEEDS = _seeds()
TOKENS = [b"1E+5000", b"1e5", b"12,50", b" ", b"-", b"0", b"9" * 19, b".", b"CRDT", b"DBIT",
          b"BOOK", b"PDNG", b"CLBD", b"OPBD", b"ITBD", b"PRCD", b"EUR", b"eur", b"<", b">", b"&",
          b"&amp;", b"<!DOCTYPE d [<!ENTITY a 'x'>]>", b"&a;", b"\xef\xbb\xbf", b"\x00",
          b"\xff\xfe", b"<?xml version='1.0' encoding='x-nope'?>", b"</Ntry>", b"<Ntry>",
          b"</Stmt>", b"<Stmt>", b'<Amt Ccy="EUR">', b"</Amt>", b"camt.053.001.99", b"camt.052",
          b"camt.054", b"\xe2\x80\xa8", b"\xd9\xa1", b"<![CDATA[1]]>", b"<!-- -->", b"1E+999999999"]
TEXTS = st.one_of(st.sampled_from([t.decode("latin-1") for t in TOKENS]),
                  st.text(st.characters(exclude_categories=("Cs",)), max_size=12))
NAMES = ["Amt", "CdtDbtInd", "Bal", "Ntry", "Stmt", "Rpt", "Sts", "Cd", "Dt", "DtTm", "Id",
         "IBAN", "ElctrncSeqNb", "LglSeqNb", "CreDtTm", "RvslInd", "StmtPgntn", "PgNb"]


def booked_balances_written(content: bytes) -> set[tuple[Decimal, str | None]]:
    """Every CLBD and ITBD balance in the file, read independently of the adapter."""
    found: set[tuple[Decimal, str | None]] = set()
    for bal in SafeET.fromstring(content).iter():
        if not bal.tag.endswith("}Bal"):
            continue
        code, amt = bal.find("./{*}Tp/{*}CdOrPrtry/{*}Cd"), bal.find("./{*}Amt")
        sign = {"CRDT": 1, "DBIT": -1}.get(bal.findtext("./{*}CdtDbtInd") or "")
        if code is not None and code.text in ("CLBD", "ITBD") and amt is not None and sign:
            with contextlib.suppress(ArithmeticError, TypeError):
                found.add((sign * Decimal(amt.text or ""), amt.get("Ccy")))
    return found


def check(content: bytes) -> str:
    """Parse and hold the outcome to the invariants; returns "parsed" or "refused"."""
    try:
        found = camt053.parse(content, "fuzz.xml")
    except InputError as error:
        message = error.render()
        assert message.startswith("fuzz.xml"), message
        assert "\n" not in message and "\r" not in message, message
        assert "Traceback" not in message and "<Element" not in message, message
        assert not re.search(r"at 0x[0-9a-fA-F]{4,}", message), message
        return "refused"
    written = booked_balances_written(content)
    for observation in found:
        # No number is made up: the balance is one the file states for a booked balance.
        assert (observation.amount, observation.currency) in written
        for value in (observation.amount, *amounts(observation)):
            assert isinstance(value, Decimal) and value.is_finite()
            exponent = value.as_tuple().exponent
            assert isinstance(exponent, int) and exponent >= -5
            assert len(value.as_tuple().digits) <= 18 + 5
        assert re.fullmatch(r"[A-Z]{3}", observation.currency)
        assert isinstance(observation.as_of, date)
    return "parsed"


@st.composite
def byte_mutants(draw: st.DrawFn) -> bytes:
    content = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(content)))
        operation = draw(st.sampled_from(["flip", "insert", "delete", "token", "copy"]))
        if operation == "flip" and at < len(content):
            content[at] = draw(st.integers(0, 255))
        elif operation == "insert":
            content[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete":
            del content[at:at + draw(st.integers(1, 40))]
        elif operation == "token":
            content[at:at + draw(st.integers(0, 8))] = draw(st.sampled_from(TOKENS))
        else:
            start = draw(st.integers(0, len(content)))
            content[at:at] = content[start:start + draw(st.integers(1, 200))]
    return bytes(content)


@st.composite
def element_mutants(draw: st.DrawFn) -> bytes:
    root = ET.fromstring(draw(st.sampled_from(SEEDS)))
    namespace = root.tag[1:].split("}")[0]
    for _ in range(draw(st.integers(1, 4))):
        parents = {child: parent for parent in root.iter() for child in parent}
        target = draw(st.sampled_from(list(root.iter())))
        operation = draw(st.sampled_from(["text", "delete", "copy", "move", "attr", "rename",
                                          "clear", "swap"]))
        parent = parents.get(target)
        if operation == "text":
            target.text = draw(TEXTS)
        elif operation == "attr":
            target.set("Ccy", draw(TEXTS))
        elif operation == "rename":
            target.tag = f"{{{namespace}}}{draw(st.sampled_from(NAMES))}"
        elif operation == "clear":
            target.clear()
        elif parent is not None and operation == "delete":
            parent.remove(target)
        elif parent is not None and operation == "copy":
            parent.insert(draw(st.integers(0, len(parent))), copy.deepcopy(target))
        elif parent is not None and operation == "move":
            parent.remove(target)
            others = [e for e in root.iter() if e is not target]
            draw(st.sampled_from(others)).append(target)
        elif parent is not None and operation == "swap" and len(parent) > 1:
            siblings = list(parent)
            other = draw(st.sampled_from(siblings))
            i, j = siblings.index(target), siblings.index(other)
            parent[i], parent[j] = other, target
    return ET.tostring(root, encoding="utf-8", xml_declaration=draw(st.booleans()))


FUZZ = settings(max_examples=examples(3000), deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(byte_mutants())
def test_fuzz_byte_mutations_parse_or_are_refused_clearly(content: bytes) -> None:
    event(check(content))


@FUZZ
@given(element_mutants())
def test_fuzz_element_mutations_parse_or_are_refused_clearly(content: bytes) -> None:
    event(check(content))


AMOUNT_GRAMMAR = re.compile(r"[0-9]{1,18}(\.[0-9]{1,5})?")


def is_schema_amount(text: str) -> bool:
    """ActiveOrHistoricCurrencyAndAmount as the brief and the schema state it, said again here
    independently of the adapter: digits, an optional point and 1 to 5 decimals, 18 digits."""
    if AMOUNT_GRAMMAR.fullmatch(text) is None:
        return False
    whole, _, fraction = text.partition(".")
    return len(whole.lstrip("0")) + len(fraction.rstrip("0")) <= 18


@settings(max_examples=examples(2000), deadline=None)
@given(st.one_of(TEXTS, st.from_regex(r"\A[0-9]{1,20}(\.[0-9]{1,7})?\Z"),
                 st.decimals(allow_nan=True).map(str)))
def test_fuzz_amount_text_is_read_exactly_or_refused(text: str) -> None:
    root = ET.fromstring(document(8, Stmt("S", (Bal("CLBD", "777"),))))
    amount = next(e for e in root.iter() if e.tag.endswith("}Amt"))
    amount.text = text
    content = ET.tostring(root, encoding="utf-8")
    if is_schema_amount(text):
        [observation] = parse(content)
        assert observation.amount == Decimal(text)
        event("read exactly")
    else:
        assert check(content) == "refused"
        event("refused")


@settings(max_examples=examples(500), deadline=None)
@given(st.lists(st.tuples(st.decimals(min_value=-10**9, max_value=10**9, places=5),
                          st.sampled_from(["BOOK", "BOOK", "PDNG", "INFO"])), max_size=12),
       st.decimals(min_value=-10**9, max_value=10**9, places=2), st.sampled_from([2, 8, 13]))
def test_fuzz_opening_plus_booked_entries_is_the_closing(
        entries: list[tuple[Decimal, str]], opening: Decimal, version: int) -> None:
    closing = opening + sum((amount for amount, status in entries if status == "BOOK"),
                            Decimal(0))
    rows = tuple(Ntry(str(amount), status=status) for amount, status in entries)
    good = document(version, Stmt("S", (Bal("OPBD", str(opening)), Bal("CLBD", str(closing))),
                                  rows))
    [observation] = parse(good)
    assert observation.amount == closing
    off = document(version, Stmt("S", (Bal("OPBD", str(opening)),
                                       Bal("CLBD", str(closing + Decimal("0.00001")))), rows))
    assert "0.00001 too much in the closing balance" in refusal(off)


@settings(max_examples=examples(300), deadline=None)
@given(st.permutations(range(5)), st.lists(st.integers(-1000, 1000), min_size=5, max_size=5))
def test_fuzz_a_shuffled_intraday_sequence_gives_the_last_closing(
        order: list[int], moves: list[int]) -> None:
    balances = [100]
    for move in moves:
        balances.append(balances[-1] + move)
    chain = [Stmt(f"S{n}", (Bal("OPBD", str(balances[n])), Bal("CLBD", str(balances[n + 1]))),
                  (Ntry(str(moves[n])),), seq=n + 1) for n in range(5)]
    [observation] = parse(document(10, *(chain[n] for n in order)))
    assert observation.amount == balances[-1]
    assert amounts(observation) == [Decimal(move) for move in moves]

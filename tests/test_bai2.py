"""BAI2 read right: the numbers of a balance report, or a one-line error that names the line
and the field — never a wrong number, a hang or a traceback."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ledger.errors import InputError
from reconcile.adapters import bai2
from reconcile.adapters.detect import parse_evidence
from reconcile.evidence import EvidenceFile, Observation
from tests.fuzzing import examples, no_hang

TRUST = (Path(__file__).parent / "data" / "trust.bai").read_bytes()

# Two groups (as of 24 and 25 November), two USD accounts in the first, one JPY account in the
# second; an 03 whose balances continue over two 88 lines (the first 88 opens with the amount
# of the 015 named at the end of the 03 line), a 16 whose text continues over two 88 lines,
# funds types 0, S, V, D, 2, Z and blank, a negative opening balance and a non-monetary 890.
#
# Account 1111111 (USD, cents): 010 500000, 100 275000, 400 12500, 015 762500, 040 450000,
#   045 762500; details 200000 + 75000 credit, 10000 + 2500 debit.
#   control total 500000+275000+12500+762500+450000+762500 + 200000+75000+10000+2500 = 3050000
#   records: 03 + 2×88, 16 + 2×88, 16, 16, 16, 49 = 10
#   opening 5000.00 + 2750.00 − 125.00 = closing 7625.00
# Account 2222222 (USD from the group): 010 −15000, 015 5000; 275 credit 20000; 890 no amount.
#   control total −15000 + 5000 + 20000 = 10000; records 03, 16, 16, 49 = 4
# Group 1: 3050000 + 10000 = 3060000; 2 accounts; records 02 + 10 + 4 + 98 = 16
# Account 7654321 (JPY, no decimals): 010 1000000, 040 1000000, 015 1199670, 045 1199670;
#   195 credit 200000, 495 debit 330.
#   control total 1000000+1000000+1199670+1199670 + 200000+330 = 4599670; records 03+88, 16, 16,
#   49 = 5
# Group 2: 4599670; 1 account; records 02 + 5 + 98 = 7
# File: 3060000 + 4599670 = 7659670; 2 groups; records 01 + 16 + 7 + 99 = 25
TWO_GROUPS = b"""\
01,TRUSTBANK,SEGLEDGER,251125,0200,20251125-1,,,2/
02,SEGLEDGER,TRUSTBANK,1,251124,2400,USD,2/
03,1111111,USD,010,500000,,,100,275000,2,0,400,12500,1,1,015/
88,762500,,,040,450000,,/
88,045,762500,,/
16,195,200000,0,WIRE-1,INV-77,Incoming wire from
88,ACME CORP, PO 12
88,second line
16,165,75000,S,25000,,50000,ACH-9,,ACH credit/
16,475,10000,V,251125,1200,CHK-1,CHQ 1001,Cheque paid/
16,455,2500,D,2,1,1500,2,1000,ACH-D,,ACH debit/
49,3050000,10/
03,2222222,,010,-15000,,,015,5000,,/
16,275,20000,2,ZBA-1,,Zero balance transfer/
16,890,,,,,Detail reports delayed/
49,10000,4/
98,3060000,2,16/
02,SEGLEDGER,TRUSTBANK,1,251125,2300,JPY,2/
03,7654321,JPY,010,1000000,,,040,1000000,,/
88,015,1199670,,,045,1199670,,/
16,195,200000,Z,E2E-1,DEPOSIT-REF,Customer deposit/
16,495,330,,FEE-1,,Bank fee/
49,4599670,5/
98,4599670,1,7/
99,7659670,2,25/
"""


def one_account(currency: str, lines: bytes, control: int, records: int) -> bytes:
    """`lines` (03 … 16) as the one account of a file, with trailers for the totals given."""
    return (b"01,BANK,SEGLEDGER,251125,0200,1,,,2/\n02,SEGLEDGER,BANK,1,251125,2300,"
            + currency.encode() + b",2/\n" + lines
            + b"49,%d,%d/\n98,%d,1,%d/\n99,%d,1,%d/\n"
            % (control, records, control, records + 2, control, records + 4))


def error_of(content: bytes, source: str = "t.bai") -> str:
    with pytest.raises(InputError) as caught:
        bai2.parse(content, source)
    return str(caught.value)




# --- Reading right ------------------------------------------------------------------------


def test_two_groups_with_their_own_dates_and_two_accounts_in_one_group() -> None:
    first, second, jpy = bai2.parse(TWO_GROUPS, "two.bai")
    assert [(o.account, o.currency, o.amount, o.as_of) for o in (first, second, jpy)] == [
        ({"bank_account": "1111111"}, "USD", Decimal("7625.00"), date(2025, 11, 24)),
        ({"bank_account": "2222222"}, "USD", Decimal("50.00"), date(2025, 11, 24)),
        ({"bank_account": "7654321"}, "JPY", Decimal("1199670"), date(2025, 11, 25))]
    assert str(first.amount) == "7625.00" and str(jpy.amount) == "1199670"


def test_balances_continued_over_two_88_lines_keep_each_type_code_with_its_amount() -> None:
    """The 03 line ends with type code 015; its amount opens the next 88 line. Gluing the two
    lines made 015762500 out of a type code and an amount."""
    first = bai2.parse(TWO_GROUPS, "two.bai")[0]
    assert first.amount == Decimal("7625.00")
    assert (first.facts["opening_ledger"], first.facts["opening_available"],
            first.facts["closing_available"]) == ("5000.00", "4500.00", "7625.00")


def test_text_continued_over_88_lines_is_one_description() -> None:
    wire = bai2.parse(TWO_GROUPS, "two.bai")[0].movements[0]
    assert (wire.amount, wire.reference, wire.description) == (
        Decimal("2000.00"), "INV-77", "Incoming wire from ACME CORP, PO 12 second line")


def test_the_specification_sample_continues_a_detail_after_its_availability() -> None:
    # Section 3 (88): the 16 line ends after the S availability; the references and the text
    # are on the 88 lines. Control total 010 0 + 015 10000000 + 115 10000000 = 20000000;
    # records 03, 16, 88, 88, 49 = 5.
    content = one_account("USD", b"03,0975312468,,010,0,,,015,10000000,,/\n"
                                 b"16,115,10000000,S,5000000,4000000,1000000/\n"
                                 b"88,AX13612,B096132,AMALGAMATED CORP. LOCKBOX\n"
                                 b"88,DEPOSIT-MISC. RECEIVABLES\n", 20_000_000, 5)
    [account] = bai2.parse(content, "spec.bai")
    [lockbox] = account.movements
    assert (lockbox.amount, lockbox.reference, lockbox.description) == (
        Decimal("100000.00"), "B096132", "AMALGAMATED CORP. LOCKBOX DEPOSIT-MISC. RECEIVABLES")


def test_funds_types_consume_their_own_fields() -> None:
    """S brings three amounts, V a date and a time, D a count and that many pairs: read one
    field too few or too many and the references, the texts and the totals fall apart."""
    first, second, jpy = bai2.parse(TWO_GROUPS, "two.bai")
    assert [(m.amount, m.reference, m.description) for m in first.movements] == [
        (Decimal("2000.00"), "INV-77", "Incoming wire from ACME CORP, PO 12 second line"),
        (Decimal("750.00"), "ACH-9", "ACH credit"),            # S,25000,,50000
        (Decimal("-100.00"), "CHQ 1001", "Cheque paid"),      # V,251125,1200
        (Decimal("-25.00"), "ACH-D", "ACH debit")]            # D,2,1,1500,2,1000
    assert [(m.amount, m.reference) for m in second.movements] == [
        (Decimal("200.00"), "ZBA-1")]                         # 2; the 890 is no movement
    assert [(m.amount, m.reference) for m in jpy.movements] == [
        (Decimal("200000"), "DEPOSIT-REF"), (Decimal("-330"), "FEE-1")]   # Z and blank


def test_jpy_has_no_decimals_usd_two_and_bhd_three() -> None:
    # 010 0 + 015 1234567 = 1234567; records 03, 49 = 2
    for currency, expected in (("JPY", "1234567"), ("USD", "12345.67"), ("BHD", "1234.567")):
        content = one_account(currency, b"03,42,,010,0,,,015,1234567,,/\n", 1234567, 2)
        [account] = bai2.parse(content, "scale.bai")
        assert (account.currency, str(account.amount)) == (currency, expected)


def test_currency_of_the_account_wins_over_the_group_and_usd_is_the_default() -> None:
    account_says = one_account("USD", b"03,42,JPY,015,100,,/\n", 100, 2)
    assert bai2.parse(account_says, "a.bai")[0].amount == Decimal("100")
    nobody_says = one_account("", b"03,42,,015,100,,/\n", 100, 2)
    [default] = bai2.parse(nobody_says, "a.bai")
    assert (default.currency, default.amount) == ("USD", Decimal("1.00"))


def test_opening_plus_details_is_recorded_not_enforced() -> None:
    # 010 1000 + 015 5000 + 195 1000 = 7000; records 03, 16, 49 = 3. 1000 + 1000 ≠ 5000: the
    # bank detailed only part of the day; the closing ledger is still the balance observed.
    content = one_account("JPY", b"03,42,,010,1000,,,015,5000,,/\n16,195,1000,,W,,wire/\n",
                          7000, 3)
    [account] = bai2.parse(content, "walk.bai")
    assert account.amount == Decimal("5000")
    assert (account.facts["opening_ledger"], account.facts["detail_credits"],
            account.facts["detail_debits"], account.facts["details_explain_closing"]) == (
        "1000", "1000", "0", False)
    assert bai2.parse(TWO_GROUPS, "two.bai")[0].facts["details_explain_closing"] is True


def test_a_bank_quirk_one_empty_field_after_the_balances_is_read() -> None:
    content = one_account("JPY", b"03,42,,015,100,,,/\n", 100, 2)
    assert bai2.parse(content, "q.bai")[0].amount == Decimal("100")


def test_windows_line_ends_and_records_padded_to_80_columns_read_the_same() -> None:
    expected = bai2.parse(TRUST, "trust.bai")
    padded = b"".join(line.ljust(80) + b"\n" for line in TRUST.splitlines())
    for content in (TRUST.replace(b"\n", b"\r\n"), padded):
        assert bai2.parse(content, "trust.bai") == expected


def test_through_detection_the_trust_file_still_reads() -> None:
    [trust] = parse_evidence(EvidenceFile("trust.bai", TRUST))
    assert (trust.amount, trust.facts["details_explain_closing"]) == (Decimal("1199670"), True)


# --- Refusing, with the line and the field ------------------------------------------------


def test_account_without_closing_ledger_names_what_it_has() -> None:
    content = one_account("JPY", b"03,1234567,,010,100,,,045,100,,/\n", 200, 2)
    assert error_of(content) == ("t.bai:3: 03 record: account 1234567 has no closing ledger "
                                 "balance (type 015); it has 010, 045")
    nothing = one_account("JPY", b"03,5765432,,,,,/\n", 0, 2)
    assert error_of(nothing).endswith("account 5765432 has no closing ledger balance (type 015); "
                                      "it has no balance at all")


def test_empty_amount_in_a_detail() -> None:
    content = TRUST.replace(b"16,495,330,,FEE-1,,Bank fee/", b"16,195,,,,,x/")
    assert error_of(content, "trust.bai") == "trust.bai:5: 16 record, field 3 (amount): empty amount"


def test_a_balance_type_code_in_a_detail() -> None:
    content = TRUST.replace(b"16,495,330,,FEE-1,,Bank fee/", b"16,015,")
    assert error_of(content, "trust.bai") == (
        "trust.bai:5: 16 record, field 2 (type code): type code 015 is an account status "
        "(balance) code: balances belong in the 03 record")


@pytest.mark.parametrize(("code", "why"), [
    ("720", "is a loan code, whose direction BAI2 does not fix: refused, not guessed"),
    ("960", "is bank-defined, its direction not fixed by BAI2: refused, not guessed"),
    ("801", "is not a BAI2 transaction code")])
def test_a_detail_whose_direction_is_not_fixed_is_refused(code: str, why: str) -> None:
    content = TRUST.replace(b"16,495,", b"16," + code.encode() + b",")
    assert error_of(content) == f"t.bai:5: 16 record, field 2 (type code): type code {code} {why}"


def test_a_signed_detail_amount_is_refused_a_signed_balance_is_read() -> None:
    signed = TRUST.replace(b"16,495,330,", b"16,495,-330,")
    assert "amount \"-330\" has a sign" in error_of(signed)
    assert bai2.parse(TWO_GROUPS, "two.bai")[1].facts["opening_ledger"] == "-150.00"


@pytest.mark.parametrize(("currency", "reason"), [
    (b"XYZ", "unknown currency XYZ: the decimals implied in its amounts are not known"),
    (b"jpy", "\"jpy\" is not a currency code (three capital letters)")])
def test_unknown_currency_is_refused_rather_than_guessed(currency: bytes, reason: str) -> None:
    content = TRUST.replace(b"03,7654321,JPY,", b"03,7654321," + currency + b",")
    assert error_of(content).startswith(f"t.bai:3: 03 record, field 3 (currency code): {reason}")


@pytest.mark.parametrize(("old", "new", "expected"), [
    (b"49,2400000,4/", b"49,2400001,4/", "t.bai:6: 49 record, field 2 (account control total): "
     "states 2400001, but the 03 and 16 amounts of account 7654321 sum to 2400000"),
    (b"98,2400000,1,6/", b"98,2400010,1,6/", "t.bai:7: 98 record, field 2 (group control "
     "total): states 2400010, but the account control totals sum to 2400000"),
    (b"99,2400000,1,8/", b"99,-2400000,1,8/", "t.bai:8: 99 record, field 2 (file control "
     "total): states -2400000, but the group control totals sum to 2400000"),
    (b"49,2400000,4/", b"49,2400000,5/", "t.bai:6: 49 record, field 3 (number of records): "
     "states 5, but account 7654321 has 4 lines of records"),
    (b"98,2400000,1,6/", b"98,2400000,2,6/", "t.bai:7: 98 record, field 3 (number of "
     "accounts): states 2, but the group has 1"),
    (b"98,2400000,1,6/", b"98,2400000,1,7/", "t.bai:7: 98 record, field 4 (number of "
     "records): states 7, but the group has 6 lines of records"),
    (b"99,2400000,1,8/", b"99,2400000,2,8/", "t.bai:8: 99 record, field 3 (number of groups): "
     "states 2, but the file has 1"),
    (b"99,2400000,1,8/", b"99,2400000,1,9/", "t.bai:8: 99 record, field 4 (number of "
     "records): states 9, but the file has 8 lines of records")])
def test_control_totals_and_record_counts_must_match_exactly(
        old: bytes, new: bytes, expected: str) -> None:
    assert error_of(TRUST.replace(old, new)) == expected


def test_every_truncation_of_a_valid_file_is_an_error_and_none_hangs() -> None:
    """The library waited forever for the trailer of a cut file. Cut anywhere, except only the
    final line end, a file is refused in well under a second."""
    for content in (TWO_GROUPS, TRUST):
        whole = content.rstrip(b"\n")
        for cut in range(len(whole)):
            with no_hang():
                message = error_of(whole[:cut])
            assert message.startswith("t.bai") and "\n" not in message
        assert bai2.parse(whole, "t.bai")
    assert error_of(TRUST[:TRUST.index(b"49,")]) == (
        "t.bai:5: end of file: the file ends in account 7654321 with no 16 or 49 record: it is "
        "truncated")


def test_a_last_record_cut_inside_its_fields_has_no_final_slash() -> None:
    assert error_of(TRUST.rstrip(b"/\n")) == (
        "t.bai:8: 99 record: the line does not end with \"/\": the record is cut short")


@pytest.mark.parametrize(("content", "expected"), [
    (TRUST + b"16,195,1,,,,x/\n", "t.bai:9: 16 record: a record after the file trailer (99)"),
    (b"88,x/\n" + TRUST, "t.bai:1: 88 record: a continuation (88) with no record before it"),
    (TRUST.replace(b"03,7654321", b"16,7654321"),
     "t.bai:3: 16 record: a 03 or 98 record was expected in the group of 2025-11-25"),
    (TRUST.replace(b"Customer", "Kund\u00e9".encode()), "t.bai:4: BAI2 must be ASCII text"),
    (TRUST.replace(b"Customer", b"Cust\x07omer"), "t.bai:4: a control character (code 7)"),
    (TRUST.replace(b"02,SEGLEDGER,TRUSTBANK,1,", b"02,SEGLEDGER,TRUSTBANK,4,"),
     "t.bai:2: 02 record, field 4 (group status): group status 4 (test only)"),
    (TRUST.replace(b"16,195,200000,,", b"16,195,200000,X,"),
     "t.bai:4: 16 record, field 4 (funds type): funds type \"X\" is not 0, 1, 2, S, V, D or Z"),
    (TRUST.replace(b"16,195,200000,,E2E-1,DEPOSIT-REF,Customer deposit/",
                   b"16,195,200000,D,3,0,150000,1,50000/"),
     "t.bai:4: 16 record, field 10 (availability in days): missing availability in days: the "
     "record ends before it"),
    (TRUST.replace(b"16,195,200000,,", b"16,195,200000,V,251332,,"),
     "t.bai:4: 16 record, field 5 (value date): \"251332\" is not a date (YYMMDD)"),
    (TRUST.replace(b"16,195,200000,", b"16,195,2000.00,"),
     "t.bai:4: 16 record, field 3 (amount): amount \"2000.00\" is not a whole number"),
    (TRUST.replace(b"03,7654321,JPY,010,1000000,,,", b"03,7654321,JPY,010,1000000,,,010,1,,,"),
     "t.bai:3: 03 record, field 8 (type code): type code 010 appears twice for account 7654321"),
    (TRUST.replace(b",,2/\n02", b",,3/\n02"),
     "t.bai:1: 01 record, field 9 (version number): version \"3\": only BAI version 2 is read"),
    (TRUST.replace(b"49,2400000,4/", b"49,2400000,4,9/"),
     "t.bai:6: 49 record, field 4 (after the last field): unexpected value \"9\""),
    (TRUST.replace(b"49,2400000,4/\n", b"49,2400000,4/\n88,/\n"),
     "t.bai:6: 49 record, field 3 (number of records): states 4, but account 7654321 has 5 "
     "lines of records"),
    (TRUST.replace(b"\n", b""), "t.bai:1: 01 record, field 9 (version number): "
     "a \"/\" ends the record but more follows it on the line"),
])
def test_malformed_files_are_refused_with_their_line_and_field(
        content: bytes, expected: str) -> None:
    assert error_of(content).startswith(expected)


def test_a_changed_amount_digit_never_passes() -> None:
    """Every one-digit change to an amount of an 03 or 16 record breaks a control total: no
    edit of a single digit turns into a wrong balance or a wrong movement."""
    lines = TWO_GROUPS.split(b"\n")
    amounts = [(n, m.start(), m.end()) for n, line in enumerate(lines)
               if line[:3] in (b"03,", b"16,", b"88,")
               for m in re.finditer(rb"(?<=,(010|015|040|045|100|400|195|165|475|455|275|495),)"
                                    rb"-?\d+", line)]
    amounts += [(n, m.start(), m.end()) for n, line in enumerate(lines) if line[:3] == b"88,"
                for m in re.finditer(rb"(?<=^88,)\d+(?=,,,)", line)]  # the amount of 015
    assert len(amounts) == 19
    changed = 0
    for n, start, end in amounts:
        for at in range(start, end):
            for digit in b"0123456789":
                if lines[n][at] == digit or lines[n][at] == ord("-"):
                    continue
                line = lines[n][:at] + bytes([digit]) + lines[n][at + 1:]
                mutated = b"\n".join([*lines[:n], line, *lines[n + 1:]])
                assert "control total" in error_of(mutated), mutated.decode()
                changed += 1
    assert changed > 500


# --- Fuzzing ------------------------------------------------------------------------------

SEEDS = (TRUST, TWO_GROUPS)


def check_outcome(content: bytes) -> None:
    """A parse whose numbers hold together, or one InputError line; nothing else, quickly."""
    try:
        with no_hang():
            observations = bai2.parse(content, "fuzz.bai")
    except InputError as error:
        event("refused")
        message = str(error)
        assert message.startswith("fuzz.bai") and error.source == "fuzz.bai"
        assert "\n" not in message and "\r" not in message
        # A message may quote the file; it must not add a repr, an address or a traceback.
        for leak in ("0x", "Traceback", "b'", "\\x"):
            assert leak not in message or leak.encode() in content, message
        assert error.line is None or 1 <= error.line <= len(re.split(rb"\r\n|\r|\n", content))
        return
    event("parsed")
    assert observations
    for observation in observations:
        check_observation(observation, content)


def check_observation(observation: Observation, content: bytes) -> None:
    exponent = bai2.EXPONENTS[observation.currency]
    assert re.fullmatch(r"[A-Z]{3}", observation.currency)
    for amount in [observation.amount] + [m.amount for m in observation.movements]:
        assert isinstance(amount, Decimal) and amount.is_finite()
        assert amount.as_tuple().exponent == -exponent
        # The number read is a number written in the file, not one made of two fields.
        minor = str(abs(amount.scaleb(exponent)).to_integral_exact())
        assert minor.encode() in content
    assert observation.kind == "bai2" and observation.account["bank_account"]


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 40)),
    st.tuples(st.just("duplicate"), st.integers(0, 10**6), st.integers(1, 60)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("swap_fields"), st.integers(0, 10**6), st.integers(0, 10**6)),
    st.tuples(st.just("swap_lines"), st.integers(0, 10**6), st.integers(0, 10**6)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.sampled_from(
        [b",", b"/", b"\n", b"88,", b"-", b"0", b"9", b"\r", b"\x00", b"\xff", b"S,", b"D,9,"])),
)


def mutate(content: bytes, how: tuple[str, int, object]) -> bytes:
    kind, at, arg = how
    at %= len(content) + 1
    if kind == "flip":
        assert isinstance(arg, int)
        return content[:at] + bytes([arg]) + content[at + 1:]
    if kind == "delete":
        assert isinstance(arg, int)
        return content[:at] + content[at + arg:]
    if kind == "duplicate":
        assert isinstance(arg, int)
        return content[:at + arg] + content[at:at + arg] + content[at + arg:]
    if kind == "truncate":
        return content[:at]
    if kind == "insert":
        assert isinstance(arg, bytes)
        return content[:at] + arg + content[at:]
    assert isinstance(arg, int)
    lines = content.split(b"\n")
    if kind == "swap_lines":
        i, j = at % len(lines), arg % len(lines)
        lines[i], lines[j] = lines[j], lines[i]
        return b"\n".join(lines)
    line = at % len(lines)
    fields = lines[line].split(b",")
    i, j = arg % len(fields), (arg // 7) % len(fields)
    fields[i], fields[j] = fields[j], fields[i]
    lines[line] = b",".join(fields)
    return b"\n".join(lines)


@settings(max_examples=examples(3000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), mutations=st.lists(mutation, min_size=1, max_size=4))
def test_fuzz_mutated_files_parse_right_or_fail_in_one_line(
        seed: bytes, mutations: list[tuple[str, int, object]]) -> None:
    content = seed
    for how in mutations:
        content = mutate(content, how)
    check_outcome(content)


@settings(max_examples=examples(3000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.integers(0, 10**6), min_size=0, max_size=40))
def test_fuzz_files_made_of_lines_of_valid_files(picks: list[int]) -> None:
    """Records of valid files in any order, repeated or missing: structure and totals decide."""
    lines = [line for seed in SEEDS for line in seed.split(b"\n") if line]
    check_outcome(b"\n".join(lines[pick % len(lines)] for pick in picks))


@settings(max_examples=examples(3000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300), head=st.sampled_from([b"", b"01,", TRUST[:120]]))
def test_fuzz_arbitrary_bytes(data: bytes, head: bytes) -> None:
    check_outcome(head + data)

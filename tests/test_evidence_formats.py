"""Bank statement and snapshot formats, on real statement files from banks."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from ledger.errors import InputError
from reconcile.adapters import bai2, camt053, mt940, observations
from reconcile.adapters.detect import parse_evidence, recognise
from reconcile.evidence import EvidenceFile
from tests.conftest import FIXTURES

CAMT = FIXTURES / "camt053"
MT940 = FIXTURES / "mt940"
DATA = Path(__file__).parent / "data"


# What each camt.053 fixture says, read off the files: (IBAN or account id, closing booked
# balance, currency of the amount, date, entries) per statement.
CAMT_EXPECTED = {
    "camt053.v2.minimal.xml": [({"iban": "NL26VAYB8060476890"}, "-27.00", "SEK",
                                date(2014, 12, 31), ["8.85"])],
    "camt053.v2.multi.statement.xml": [
        ({"iban": "NL26VAYB8060476890"}, "27.00", "EUR", date(2014, 12, 31), ["8.85"]),
        ({"iban": "NL26VAYB8060476890"}, "20.00", "EUR", date(2014, 12, 31), ["-7.00"])],
    "camt053.v3.xml": [({"bank_account": "NL26VAYB8060476890"}, "-27.00", "SEK",
                        date(2014, 12, 31), ["8.85"])],
    "camt053.v4.xml": [({"bank_account": "NL26VAYB8060476890"}, "-27.00", "SEK",
                        date(2014, 12, 30), ["8.85"])],
    "camt053.v8.xml": [({"bank_account": "NL26VAYB8060476890"}, "-27.00", "SEK",
                        date(2014, 12, 30), ["8.85"])],
}


@pytest.mark.parametrize("name", sorted(CAMT_EXPECTED))
def test_camt053_fixture_parses_to_its_numbers(name: str) -> None:
    content = (CAMT / name).read_bytes()
    assert recognise(EvidenceFile(name, content)) == "camt053"
    parsed = camt053.parse(content, name)
    assert [(o.account, o.amount, o.currency, o.as_of, [m.amount for m in o.movements])
            for o in parsed] == [
        (account, Decimal(amount), currency, when, [Decimal(x) for x in moves])
        for account, amount, currency, when, moves in CAMT_EXPECTED[name]]


def test_every_camt053_fixture_is_covered() -> None:
    assert sorted(p.name for p in CAMT.glob("*.xml")) == sorted(
        [*CAMT_EXPECTED, "camt053.v2.wrong.xml"])


def test_camt053_without_statement_is_a_clear_error() -> None:
    with pytest.raises(InputError) as refused:
        camt053.parse((CAMT / "camt053.v2.wrong.xml").read_bytes(), "wrong.xml")
    assert refused.value.render() == "wrong.xml: no statement (BkToCstmrStmt/Stmt) in the file"


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><x>&x;</x></Document>"""
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">&d;</Document>"""


@pytest.mark.parametrize("content", [XXE, BILLION_LAUGHS], ids=["external_entity", "expansion"])
def test_hostile_xml_is_refused_before_any_entity_is_read(content: bytes) -> None:
    with pytest.raises(InputError, match="refused unsafe XML"):
        camt053.parse(content, "evil.xml")


@pytest.mark.parametrize(("content", "reason"), [
    (b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.12'/>", "not supported"),
    (b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.02'><BkToCstmrStmt>",
     "malformed XML"),
])
def test_camt053_refuses_unsupported_and_broken_documents(content: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        camt053.parse(content, "x.xml")


def _expected_mt940(path: Path) -> tuple[Decimal, str] | None:
    # The fixtures' .yml files are the mt-940 authors' own pickled parse (trusted test data).
    expected = yaml.load(path.with_suffix(".yml").read_text(), Loader=yaml.UnsafeLoader)
    closing = expected.data.get("final_closing_balance")
    return None if closing is None else (Decimal(closing.amount.amount), closing.amount.currency)


@pytest.mark.parametrize("path", sorted(MT940.glob("*.sta")), ids=lambda p: p.name)
def test_mt940_fixture_gives_the_closing_balance_its_yml_expects(path: Path) -> None:
    expected = _expected_mt940(path)
    content = path.read_bytes()
    assert recognise(EvidenceFile(path.name, content)) == "mt940"
    if expected is None:
        with pytest.raises(InputError, match="no closing balance"):
            mt940.parse(content, path.name)
        return
    [observation] = mt940.parse(content, path.name)
    assert (observation.amount, observation.currency) == expected


def test_mt940_account_identification_becomes_iban_or_account_number() -> None:
    [rabobank] = mt940.parse((MT940 / "jejik-rabobank-iban.sta").read_bytes(), "r.sta")
    assert rabobank.account == {"iban": "NL71RABO0123456789"}
    [triodos] = mt940.parse((MT940 / "jejik-triodos.sta").read_bytes(), "t.sta")
    assert triodos.account["bank_account"] == "0390123456"


def test_bai2_closing_ledger_and_details() -> None:
    content = (DATA / "trust.bai").read_bytes()
    assert recognise(EvidenceFile("trust.bai", content)) == "bai2"
    [observation] = bai2.parse(content, "trust.bai")
    assert observation.account == {"bank_account": "7654321"}
    assert (observation.currency, observation.amount) == ("JPY", Decimal("1199670"))
    assert [(m.amount, m.reference) for m in observation.movements] == [
        (Decimal("200000"), "DEPOSIT-REF"), (Decimal("-330"), "FEE-1")]


def test_bai2_with_a_wrong_control_total_is_refused() -> None:
    content = (DATA / "trust.bai").read_bytes().replace(b"49,2400000", b"49,2400001")
    with pytest.raises(InputError, match="malformed BAI2"):
        bai2.parse(content, "trust.bai")


def test_observation_json_and_csv() -> None:
    as_json = b'{"observations": [{"account": "custody:customer:cold:BTC", ' \
              b'"as_of": "2025-11-25T00:00:00Z", "amount": "1.5", "source": "custodian-x"}]}'
    as_csv = b"account,as_of,amount,source\ncustody:customer:cold:BTC,2025-11-25T00:00:00Z,1.5," \
             b"custodian-x\n"
    for content in (as_json, as_csv):
        [observation] = parse_evidence(EvidenceFile("o", content))
        assert observation.account == {"account": "custody:customer:cold:BTC"}
        assert observation.amount == Decimal("1.5")


@pytest.mark.parametrize(("content", "reason"), [
    (b'{"observations": [{"account": "a", "as_of": "2025-11-25", "amount": "1", "source": "s"}]}',
     "timezone"),
    (b'{"observations": [{"account": "a", "as_of": "2025-11-25T00:00:00Z", "amount": "x", '
     b'"source": "s"}]}', "not a decimal"),
    (b"account,as_of,amount,source\na,2025-11-25T00:00:00Z,1\n", "wrong number of columns"),
    (b"hello", "not a recognised evidence format"),
    (b"<html></html>", "XML that is not a camt.053"),
    (b"", "empty evidence file"),
])
def test_bad_snapshot_files_are_clear_errors(content: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        parse_evidence(EvidenceFile("bad", content))


def test_observations_are_recognised_by_content_not_name() -> None:
    assert observations.looks_like_csv(b"account,as_of,amount,source\n")
    assert recognise(EvidenceFile("statement.txt", (CAMT / "camt053.v8.xml").read_bytes())) \
        == "camt053"

"""ISO 20022 cash-management XML (camt.052, camt.053, camt.054) read safely, and the schema's
simple types read strictly: a value the schema would refuse is refused here, never guessed.

Parsed by defusedxml with DTDs forbidden (no entity expansion, no external entities). expat's
line numbers are kept, so that an error points at the line of the element it is about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pyexpat import XMLParserType
from typing import NamedTuple
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from ledger.errors import InputError

ROOT = re.compile(r"\{urn:iso:std:iso:20022:tech:xsd:(camt\.05[234])\.001\.([0-9]{2})\}Document")
HEAD = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:(camt\.05[234])\.")
FIRST_VERSION, LAST_VERSION = 2, 13
# Bytes looked at to recognise a message: its root element with the namespace comes first.
HEAD_BYTES = 4096
# A real 50 MB statement holds under two million elements; more is refused, not held in memory.
MAX_ELEMENTS = 3_000_000
# ISO 20022 messages are UTF-8; a few banks still write Latin-1 or Windows-1252. Any other
# declared encoding is refused before expat hands it to Python's codec registry.
ENCODINGS = frozenset({"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1",
                       "iso-8859-15", "windows-1252", "cp1252"})
DECLARATION = re.compile(rb"\A(?:\xef\xbb\xbf)?<\?xml[ \t\r\n][^>]*?encoding[ \t\r\n]*=[ \t\r\n]*"
                         rb"([\"'])([^\"'>]*)\1")
DECLARATION_BYTES = 1024

AMOUNT = re.compile(r"([0-9]{1,18})(?:\.([0-9]{1,5}))?")
TOTAL_DIGITS = 18
CURRENCY = re.compile(r"[A-Z]{3}")
ISO_DATE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:Z|[+-][0-9]{2}:[0-9]{2})?")
ISO_DATETIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?"
                          r"(Z|[+-][0-9]{2}:[0-9]{2})?")
NUMBER = re.compile(r"[0-9]{1,18}")
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def shown(text: str, limit: int = 40) -> str:
    """Text from the file as it may appear in a one-line message: printable and short."""
    cut = text[:limit] + ("…" if len(text) > limit else "")
    return "".join(c if c.isprintable() else "?" for c in cut)


def quoted(text: str | None) -> str:
    return "nothing" if text is None else f"'{shown(text)}'"


class Place(NamedTuple):
    """Where a value sits: the file, the statement it belongs to, its element path and line."""

    source: str
    label: str
    path: str
    line: int | None

    def error(self, reason: str, *, join: str = ": ") -> InputError:
        return InputError(f"{self.label}{join}{reason}" if self.label else reason,
                          source=self.source, line=self.line, field=self.path or None)


@dataclass(frozen=True)
class Document:
    source: str
    message: str  # camt.052, camt.053 or camt.054
    version: int
    root: Element
    lines: Mapping[Element, int] = field(repr=False)
    prefix: str = ""  # "{namespace}", the start of every element's tag

    @property
    def name(self) -> str:
        return f"{self.message}.001.{self.version:02d}"

    def node(self) -> Node:
        return Node(self, self.root, None, "", "")


class Node(NamedTuple):
    """An element and the way down to it, so that every value read from it can be blamed on
    its statement, element path and line. (A tuple: a large statement makes millions.)"""

    doc: Document
    element: Element
    parent: Node | None
    step: str  # this element's part of the path: "Ntry[3]", "Amt"
    label: str  # the statement it belongs to: "statement 253EUR…"

    @property
    def place(self) -> Place:
        steps: list[str] = []
        node: Node | None = self
        while node is not None:
            if node.step:
                steps.append(node.step)
            node = node.parent
        return Place(self.doc.source, self.label, "/".join(reversed(steps)),
                     self.doc.lines.get(self.element))

    def labelled(self, label: str) -> Node:
        return self._replace(label=label)

    def children(self, name: str) -> list[Node]:
        found = self.element.findall(self.doc.prefix + name)
        return [Node(self.doc, element, self, f"{name}[{n}]", self.label)
                for n, element in enumerate(found)]

    def child(self, path: str) -> Node | None:
        """The element at `path`, where the schema allows at most one at each step."""
        node = self
        for name in path.split("/"):
            found = node.element.findall(node.doc.prefix + name)
            if not found:
                return None
            if len(found) > 1:
                raise Node(node.doc, found[1], node, name, node.label).error(
                    f"more than one {name} (the schema allows one)")
            node = Node(node.doc, found[0], node, name, node.label)
        return node

    def text(self, path: str) -> str | None:
        """The text of a simple element at `path`, exactly as written, or None when absent."""
        node = self.child(path)
        return None if node is None else node.value()

    def value(self) -> str:
        if len(self.element):
            raise self.error("holds elements where the schema has a value")
        return self.element.text or ""

    def has(self, path: str) -> bool:
        return self.child(path) is not None

    def error(self, reason: str, *, join: str = ": ") -> InputError:
        return self.place.error(reason, join=join)


def message_in_head(content: bytes) -> str | None:
    """The camt message a file's first bytes name (camt.052, camt.053 or camt.054), if any."""
    found = HEAD.search(content[:HEAD_BYTES])
    return found[1].decode() if found else None


class _LineBuilder:
    """An ElementTree target that remembers the line each element starts on."""

    def __init__(self, source: str) -> None:
        builder = TreeBuilder()
        self.lines: dict[Element, int] = {}
        self.expat: XMLParserType | None = None
        self.source = source
        # The parser calls these for every element and every piece of text: straight to C.
        self.end: Callable[[str], Element] = builder.end
        self.data: Callable[[str], None] = builder.data
        self.close: Callable[[], Element] = builder.close
        self._start = builder.start

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        element = self._start(tag, attrs)
        assert self.expat is not None
        lines = self.lines
        lines[element] = self.expat.CurrentLineNumber
        if len(lines) > MAX_ELEMENTS:
            raise InputError(f"more than {MAX_ELEMENTS:,} XML elements: not a statement a bank "
                             "writes", source=self.source, line=lines[element])
        return element


def _check_encoding(content: bytes, source: str) -> None:
    declared = DECLARATION.match(content[:DECLARATION_BYTES])
    if declared is None:
        return
    name = declared[2].decode("ascii", "replace")
    if name.strip().lower() not in ENCODINGS:
        raise InputError(f"the XML declaration names the encoding {quoted(name)}, which statements "
                         "are not read in (UTF-8, US-ASCII, ISO-8859-1/15 or Windows-1252)",
                         source=source, line=1)


def read(content: bytes, source: str) -> Document:
    """The file as an ISO 20022 camt document of a supported version, or a clear InputError."""
    _check_encoding(content, source)
    target = _LineBuilder(source)
    parser = DefusedXMLParser(target=target, forbid_dtd=True)
    target.expat = parser.parser
    try:
        parser.feed(content)
        root = parser.close()
    except DefusedXmlException as error:
        raise InputError(f"refused unsafe XML ({type(error).__name__}: DTDs and entities are not "
                         "allowed in statements)", source=source) from None
    except ParseError as error:
        line = error.position[0] if error.position else None
        raise InputError(f"malformed XML: {shown(str(error), 120)}", source=source,
                         line=line) from None
    except (LookupError, ValueError, UnicodeError) as error:
        raise InputError(f"unreadable XML: {shown(str(error), 120)}", source=source) from None
    return _identify(root, target.lines, source)


def _identify(root: Element, lines: Mapping[Element, int], source: str) -> Document:
    match = ROOT.fullmatch(root.tag)
    if match is None:
        raise InputError(f"not an ISO 20022 camt.053 or camt.052 document (root element "
                         f"{quoted(root.tag)})", source=source, line=lines.get(root))
    message, version = match[1], int(match[2])
    if not FIRST_VERSION <= version <= LAST_VERSION:
        raise InputError(f"{message}.001.{version:02d} is not supported ({message}.001."
                         f"{FIRST_VERSION:02d} to .{LAST_VERSION:02d} are)", source=source,
                         line=lines.get(root))
    return Document(source, message, version, root, lines,
                    f"{{urn:iso:std:iso:20022:tech:xsd:{message}.001.{version:02d}}}")


# The schema's simple types. Each takes the text exactly as written: the schema has no
# whitespace in these values, and a reader that trims or converts liberally is how a
# malformed amount becomes a wrong number.

def amount(text: str | None, where: Node) -> Decimal:
    """ActiveOrHistoricCurrencyAndAmount: non-negative, at most 18 digits, 5 after the point."""
    found = AMOUNT.fullmatch(text or "")
    if text is None or found is None:
        raise where.error(f"amount {quoted(text)} is not a plain decimal (digits, optionally a "
                          "point and up to 5 decimals)")
    whole, fraction = found[1].lstrip("0"), (found[2] or "").rstrip("0")
    if len(whole) + len(fraction) > TOTAL_DIGITS:
        raise where.error(f"amount {quoted(text)} has more than {TOTAL_DIGITS} digits")
    return Decimal(text)


def currency(text: str | None, where: Node) -> str:
    if text is None or CURRENCY.fullmatch(text) is None:
        raise where.error(f"currency {quoted(text)} is not three capital letters (ISO 4217)")
    return text


def credit_debit(text: str | None, where: Node) -> int:
    """+1 for CRDT, -1 for DBIT."""
    if text == "CRDT":
        return 1
    if text == "DBIT":
        return -1
    raise where.error(f"credit/debit indicator {quoted(text)} is not CRDT or DBIT")


def iso_date(text: str, where: Node) -> date:
    found = ISO_DATE.fullmatch(text)
    try:
        if found is None:
            raise ValueError
        return date.fromisoformat(found[1])
    except ValueError:
        raise where.error(f"{quoted(text)} is not an ISO date (YYYY-MM-DD)") from None


def iso_datetime(text: str, where: Node) -> datetime:
    found = ISO_DATETIME.fullmatch(text)
    try:
        if found is None:
            raise ValueError
        micro = f".{(found[2] or '')[:6]:0<6}"
        zone = "+00:00" if found[3] == "Z" else found[3] or ""
        return datetime.fromisoformat(f"{found[1]}{micro}{zone}")
    except ValueError:
        raise where.error(f"{quoted(text)} is not an ISO date and time "
                          "(YYYY-MM-DDThh:mm:ss)") from None


def number(text: str, where: Node) -> int:
    if NUMBER.fullmatch(text) is None:
        raise where.error(f"{quoted(text)} is not a whole number of at most 18 digits")
    return int(text)


def boolean(text: str, where: Node) -> bool:
    if text not in BOOLEANS:
        raise where.error(f"{quoted(text)} is not true or false")
    return BOOLEANS[text]

"""XML from outside, read without ever expanding an entity.

WeCom's envelopes and events carry no DTD, so any ``<!DOCTYPE`` or ``<!ENTITY`` is refused on the
raw text before a parser sees it: entity declarations can only live in a DOCTYPE's internal subset,
so with none there is nothing to expand (billion laughs, external entities). The text must be
UTF-8 without NUL characters first, so the check cannot be dodged by a UTF-16 document whose
markup has zero bytes between its letters. What is left goes to the stdlib expat parser, which
answers an undeclared entity reference (``&lol;``) with a parse error.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # only after the DOCTYPE/ENTITY refusal below

# Declarations have no place in WeCom's XML; case-insensitive and allowing whitespace after "<!"
# so no spelling slips past, even ones expat itself would reject.
_DECLARATION = re.compile(r"<!\s*(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)


class UnsafeXml(ValueError):
    """A document that declares a DTD or entities: refused, never parsed."""


class MalformedXml(ValueError):
    """Not well-formed XML (or not UTF-8)."""


def as_text(raw: bytes | str) -> str:
    """The document as text, refusing anything that is not plain UTF-8."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedXml("not UTF-8") from exc
    else:
        text = raw
    if "\x00" in text:
        raise MalformedXml("NUL character")
    return text


def refuse_declarations(text: str) -> None:
    if _DECLARATION.search(text):
        raise UnsafeXml("DTD or entity declaration")


def parse(raw: bytes | str) -> ET.Element:
    """Parse a WeCom XML document, refusing declarations before the parser runs."""
    text = as_text(raw)
    refuse_declarations(text)
    try:
        # A str (not bytes) goes in, so an encoding declaration cannot switch the decoding.
        return ET.fromstring(text)  # noqa: S314 - declarations refused above
    except ET.ParseError as exc:
        raise MalformedXml(str(exc)) from exc

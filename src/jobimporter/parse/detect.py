"""Format detection from the first bytes of a body, and the byte-level prolog guard.

This module owns the question "what is this body?": it reads only a head (BOM, XML declaration,
comments, processing instructions and the DOCTYPE may come before the root element) and answers
with a :class:`FeedFormat`, or refuses with :class:`NotAFeed` (an HTML page such as a firewall or
captcha page served with 200, or anything else it does not know). It also refuses a DOCTYPE that
declares entities (:class:`FeedParseError`) before lxml sees a byte of it.
"""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass

from jobimporter.errors import FeedParseError, NotAFeed
from jobimporter.models import FeedFormat
from jobimporter.parse.xml import ENTITY_DECLARATIONS_REFUSED

HEAD_SIZE = 64 * 1024
_TITLE = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_HTML_ROOTS = frozenset({"html", "head", "body", "meta", "title", "script", "div", "link", "style"})
_RSS_ROOTS = frozenset({"rss", "rdf", "RDF"})
_ELEMENT_NAME = re.compile(r"<([A-Za-z_][\w.:-]*)")


@dataclass(frozen=True, slots=True)
class Prolog:
    """What precedes the root element: the root's qualified name (``None`` if not in the head)."""

    root: str | None
    doctype: str | None = None


def detect_format(head: bytes, content_type: str | None = None) -> FeedFormat:
    """Tell the format of a body from its first bytes (ideally :data:`HEAD_SIZE` of them).

    ``content_type`` is only a hint for bodies the bytes leave open (``text/html`` → HTML page).

    :raises NotAFeed: an HTML page (the message carries its ``<title>``), an empty body, or an
        unknown document.
    :raises FeedParseError: an XML DOCTYPE that declares entities.
    """
    text = decode_head(head).lstrip()
    if not text:
        raise NotAFeed("parse: the body is empty")
    if text.startswith("{"):
        return _detect_json(text)
    if not text.startswith("<"):
        raise NotAFeed(f"parse: the body is neither XML nor JSON (starts with {text[:20]!r})")
    prolog = scan_prolog(text)
    check_prolog(prolog)
    return _detect_xml(prolog, text, content_type, head_size=len(head))


def decode_head(head: bytes) -> str:
    """Decode enough of the head to read markup; UTF-16/32 by BOM, anything else as UTF-8."""
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if head.startswith(bom):
            return head.decode(encoding, errors="replace")
    return head.decode("utf-8", errors="replace")


def scan_prolog(text: str) -> Prolog:
    """Skip the XML declaration, comments, PIs and the DOCTYPE; name the first element."""
    pos, doctype = 0, None
    while True:
        pos = _skip_space(text, pos)
        if text.startswith("<?", pos) or text.startswith("<!--", pos):
            terminator = "?>" if text[pos + 1] == "?" else "-->"
            end = text.find(terminator, pos)
            if end < 0:
                return Prolog(root=None, doctype=doctype)
            pos = end + len(terminator)
        elif text[pos : pos + 9].upper() == "<!DOCTYPE":
            end = _doctype_end(text, pos)
            doctype = text[pos:end] if end > 0 else text[pos:]
            if end < 0:
                return Prolog(root=None, doctype=doctype)
            pos = end
        else:
            match = _ELEMENT_NAME.match(text, pos)
            return Prolog(root=match.group(1) if match else None, doctype=doctype)


def check_prolog(prolog: Prolog) -> None:
    """:raises FeedParseError: the DOCTYPE declares entities (XXE, billion laughs)."""
    if prolog.doctype is not None and "<!ENTITY" in prolog.doctype:
        raise FeedParseError(ENTITY_DECLARATIONS_REFUSED)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _doctype_end(text: str, pos: int) -> int:
    """Index just past the DOCTYPE's closing ``>``, or -1 if the head ends first."""
    bracket, close = text.find("[", pos), text.find(">", pos)
    if 0 <= bracket < close or (bracket >= 0 and close < 0):
        subset_end = text.find("]", bracket)
        if subset_end < 0:
            return -1
        close = text.find(">", subset_end)
    return close + 1 if close >= 0 else -1


def _detect_xml(prolog: Prolog, text: str, content_type: str | None, *, head_size: int) -> FeedFormat:
    root = (prolog.root or "").rpartition(":")[2]
    doctype = (prolog.doctype or "").lower()
    if root.lower() in _HTML_ROOTS or doctype.startswith("<!doctype html"):
        raise NotAFeed(_html_message(text))
    if root in _RSS_ROOTS:
        return FeedFormat.RSS
    if root == "feed":
        return FeedFormat.ATOM
    if prolog.root is None and content_type is not None and "html" in content_type.lower():
        raise NotAFeed(_html_message(text))
    if prolog.root is None:
        raise NotAFeed(f"parse: no root element in the first {head_size} bytes")
    raise NotAFeed(f"parse: unknown document type: root element <{prolog.root}>")


def _detect_json(text: str) -> FeedFormat:
    # The jobicy envelope puts a few short fields (apiVersion, friendlyNotice, ...) before "jobs".
    if '"jobs"' in text:
        return FeedFormat.JOBICY_JSON
    raise NotAFeed('parse: JSON document without a "jobs" array in its first bytes')


def _html_message(text: str) -> str:
    match = _TITLE.search(text)
    title = " ".join(html.unescape(match.group(1)).split())[:120] if match else ""
    suffix = f" ({title})" if title else ""
    return f"parse: the body looks like an HTML page{suffix}"

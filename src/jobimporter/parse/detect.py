"""Format detection from the first bytes of a body, and the byte-level prolog guard.

This module owns the question "what is this body?": it reads only a head (BOM, XML declaration,
comments, processing instructions and the DOCTYPE may come before the root element) and tells XML,
JSON and HTML apart (:func:`sniff`), then an XML body's format by its root (RSS, Atom, Personio)
or by its first job-like element (job XML). JSON bodies are told apart by :mod:`.jsondoc` from the
whole document, HTML pages by their JobPosting JSON-LD (:mod:`.jsonld`). It refuses with
:class:`NotAFeed` what it cannot read (an HTML page without postings such as a firewall or captcha
page served with 200, an XML root of no job format: the message names it), and refuses a DOCTYPE
that declares entities (:class:`FeedParseError`) before lxml sees a byte of it.
"""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass
from enum import StrEnum

from jobimporter.errors import FeedParseError, NotAFeed
from jobimporter.models import FeedFormat
from jobimporter.parse import jsonld
from jobimporter.parse.jobxml import ITEM_NAMES
from jobimporter.parse.jsonapi import load_json
from jobimporter.parse.xml import ENTITY_DECLARATIONS_REFUSED

HEAD_SIZE = 64 * 1024
_TITLE = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_HTML_ROOTS = frozenset({"html", "head", "body", "meta", "title", "script", "div", "link", "style"})
_RSS_ROOTS = frozenset({"rss", "rdf", "RDF"})
_ELEMENT_NAME = re.compile(r"<([A-Za-z_][\w.:-]*)")
_START_TAG = re.compile(r"<([A-Za-z_][\w.:-]*)[\s/>]")


@dataclass(frozen=True, slots=True)
class Prolog:
    """What precedes the root element: the root's qualified name (``None`` if not in the head)."""

    root: str | None
    doctype: str | None = None


class Sniffed(StrEnum):
    """What kind of document a head starts: decided before any format is."""

    XML = "xml"
    JSON = "json"
    HTML = "html"


def sniff(head: bytes, content_type: str | None = None) -> Sniffed:
    """XML, JSON or an HTML page (which may carry JobPosting JSON-LD), from the first bytes.

    :raises NotAFeed: an empty body, or one that is none of them.
    :raises FeedParseError: an XML DOCTYPE that declares entities.
    """
    text = decode_head(head).lstrip()
    if not text:
        raise NotAFeed("parse: the body is empty")
    if text.startswith(("{", "[")):
        return Sniffed.JSON
    if not text.startswith("<"):
        raise NotAFeed(f"parse: the body is neither XML nor JSON (starts with {text[:20]!r})")
    prolog = scan_prolog(text)
    check_prolog(prolog)
    return Sniffed.HTML if _is_html(prolog, content_type) else Sniffed.XML


def detect_format(head: bytes, content_type: str | None = None) -> FeedFormat:
    """Tell the format of a body from its first bytes (ideally :data:`HEAD_SIZE` of them). A JSON
    body must be whole in ``head`` (job APIs are recognised from the whole document).

    ``content_type`` is only a hint for bodies the bytes leave open (``text/html`` → HTML page).

    :raises NotAFeed: an HTML page without JobPosting JSON-LD (the message carries its
        ``<title>``), an empty body, or an unknown document (the message says what it is).
    :raises FeedParseError: an XML DOCTYPE that declares entities; malformed JSON.
    """
    kind = sniff(head, content_type)
    if kind is Sniffed.JSON:
        from jobimporter.parse import jsondoc  # the registry imports every API module

        return jsondoc.detect(load_json(head), "").format
    if kind is Sniffed.HTML:
        if jsonld.postings(jsonld.blocks_in_page(head)):
            return FeedFormat.JSONLD
        raise NotAFeed(html_message(decode_head(head)))
    return detect_xml(head)


def detect_xml(head: bytes) -> FeedFormat:
    """The format of an XML body that is no HTML page.

    :raises NotAFeed: no root element in the head, or a root of no known job format.
    """
    text = decode_head(head).lstrip()
    prolog = scan_prolog(text)
    root = (prolog.root or "").rpartition(":")[2]
    if root in _RSS_ROOTS:
        return FeedFormat.RSS
    if root == "feed":
        return FeedFormat.ATOM
    if root == "workzag-jobs":
        return FeedFormat.PERSONIO_XML
    if prolog.root is None:
        raise NotAFeed(f"parse: no root element in the first {len(head)} bytes")
    if job_item_name(text) is not None:
        return FeedFormat.JOB_XML
    raise NotAFeed(
        f"parse: XML with root <{prolog.root}>, not a known job format: give the feed a field mapping"
    )


def job_item_name(text: str) -> str | None:
    """The local name of the first job-like element below the root (``job``, ``Job``, ``vacancy``…)."""
    names = (match.group(1).rpartition(":")[2] for match in _START_TAG.finditer(text))
    next(names, None)  # the root
    return next((name for name in names if name.lower() in ITEM_NAMES), None)


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


def _is_html(prolog: Prolog, content_type: str | None) -> bool:
    root = (prolog.root or "").rpartition(":")[2]
    doctype = (prolog.doctype or "").lower()
    if root.lower() in _HTML_ROOTS or doctype.startswith("<!doctype html"):
        return True
    return prolog.root is None and content_type is not None and "html" in content_type.lower()


def html_message(text: str) -> str:
    match = _TITLE.search(text)
    title = " ".join(html.unescape(match.group(1)).split())[:120] if match else ""
    suffix = f" ({title})" if title else ""
    return f"parse: the body looks like an HTML page{suffix}"

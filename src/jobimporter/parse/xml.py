"""Hardened lxml plumbing shared by the RSS and Atom parsers.

This module owns the one place where feed bytes meet lxml (:func:`iter_items`), the namespace
table, and the element helpers both XML formats use (text, inner markup, the WP Job Manager field
rule, media logos, the ``extra`` catch-all).

Safety rules (why each one):

- ``resolve_entities=False``, ``load_dtd=False``, ``no_network=True``: no external DTD, no file or
  network read (XXE) and no entity expansion; ``huge_tree=False`` keeps libxml2's size limits.
- A document whose DTD *declares* entities is refused outright with :class:`FeedParseError`: a
  feed has no reason to declare them, and refusing is clearer than parsing around them. The byte
  prolog is checked before parsing (``detect.check_prolog``); the parsed DTD is checked again at
  the first event, as a second line. A plain ``<!DOCTYPE rss PUBLIC ...>`` (RSS 0.91) is fine;
  undeclared entity references such as ``&nbsp;`` are kept as the text ``&nbsp;`` so that
  normalize decodes them together with the rest of the HTML entities.
- Memory stays flat: every finished item is converted, cleared and dropped together with its
  already-processed previous siblings; elements outside items are dropped the same way.

Namespace rule for WP Job Manager fields: an element whose *local name* is one of
``location``, ``job_type``, ``job_category``, ``company``, ``salary`` is a job field when its
namespace URI is **not** one of the standard feed namespaces in :data:`STANDARD_NAMESPACES`
(no namespace counts as non-standard). The declared prefix is never looked at, because WPJM
declares ``xmlns:job_listing="<site URL>"``, a URI that differs per site.
"""

from __future__ import annotations

import copy
import functools
import html
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from lxml import etree  # type: ignore[import-untyped]

from jobimporter.errors import FeedParseError
from jobimporter.models import RawItem
from jobimporter.parse.salary import salary_from_text

# lxml ships no type information; elements are ``Any`` at this boundary and converted to ``str``
# by the helpers below before anything leaves this package.
Element = Any

NS_CONTENT = "http://purl.org/rss/1.0/modules/content/"
NS_DC = "http://purl.org/dc/elements/1.1/"
NS_DCTERMS = "http://purl.org/dc/terms/"
NS_ATOM = "http://www.w3.org/2005/Atom"
NS_ATOM03 = "http://purl.org/atom/ns#"
NS_MEDIA = "http://search.yahoo.com/mrss/"
NS_SY = "http://purl.org/rss/1.0/modules/syndication/"
NS_SLASH = "http://purl.org/rss/1.0/modules/slash/"
NS_WFW = "http://wellformedweb.org/CommentAPI/"
NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_RSS1 = "http://purl.org/rss/1.0/"
NS_RSS090 = "http://my.netscape.com/rdf/simple/0.9/"
NS_XHTML = "http://www.w3.org/1999/xhtml"

STANDARD_NAMESPACES = frozenset(
    {
        NS_CONTENT,
        NS_DC,
        NS_DCTERMS,
        NS_ATOM,
        NS_ATOM03,
        NS_MEDIA,
        NS_SY,
        NS_SLASH,
        NS_WFW,
        NS_RDF,
        NS_RSS1,
        NS_RSS090,
        NS_XHTML,
    }
)
JOB_FIELDS = frozenset({"location", "job_type", "job_category", "company", "salary"})

_PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "load_dtd": False,
    "no_network": True,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}

ENTITY_DECLARATIONS_REFUSED = "parse: DTD entity declarations are not allowed (XXE / entity-expansion guard)"


# ---------------------------------------------------------------- the parse loop


def iter_items(
    stream: BinaryIO, is_item: Callable[[Element], bool], build: Callable[[Element, int], RawItem]
) -> Iterator[RawItem]:
    """Yield ``build(element, position)`` for every element ``is_item`` accepts, as it is read.

    :raises FeedParseError: malformed XML or declared entities. Items yielded before stay yielded.
    """
    events = etree.iterparse(stream, events=("start", "end"), **_PARSER_OPTIONS)
    position = 0
    depth = 0  # inside an item: how many of its elements (itself included) are open
    checked = False
    try:
        for event, element in events:
            if event == "start":
                if depth:
                    depth += 1
                    continue
                if not checked:  # the root's start: the DTD is read by then
                    _refuse_declared_entities(element)
                    checked = True
                if is_item(element):
                    depth = 1
                continue
            if depth > 1:
                depth -= 1
                continue  # the item's children stay until the item itself is finished
            if depth == 1:
                depth = 0
                position += 1
                item = build(element, position)
                _release(element)
                yield item
            else:
                _release(element)
    except etree.LxmlError as exc:
        raise FeedParseError(_describe(exc)) from exc


def _refuse_declared_entities(element: Element) -> None:
    dtd = element.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise FeedParseError(ENTITY_DECLARATIONS_REFUSED)


def _release(element: Element) -> None:
    """Free a finished element and every earlier sibling (all of them are processed by now)."""
    element.clear(keep_tail=True)
    parent = element.getparent()
    if parent is None:
        return
    while element.getprevious() is not None:
        del parent[0]


def _describe(exc: Exception) -> str:
    if isinstance(exc, etree.XMLSyntaxError):
        line, column = exc.position
        message = exc.msg or str(exc)
        return f"parse: malformed XML at line {line}, column {column}: {message}"
    return f"parse: XML error: {exc}"


# ---------------------------------------------------------------- element helpers


def namespace(element: Element) -> str | None:
    tag = element.tag
    return _split_tag(tag)[0] if isinstance(tag, str) else None


def local_name(element: Element) -> str:
    tag = element.tag
    return _split_tag(tag)[1] if isinstance(tag, str) else ""


@functools.lru_cache(maxsize=1024)
def _split_tag(tag: str) -> tuple[str | None, str]:
    """``"{ns}local"`` → ``("ns", "local")``: a feed has a few dozen tags, read ~30 times an item."""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


def qualified_name(element: Element) -> str:
    """``prefix:local`` as written in the document (``local`` without a prefix): a key for ``extra``."""
    prefix = element.prefix
    return f"{prefix}:{local_name(element)}" if prefix else local_name(element)


def text_of(element: Element) -> str | None:
    """The element's text, XML-decoded only; ``None`` when it is blank."""
    text = (element.text or "") if len(element) == 0 else "".join(element.itertext())
    return text if text.strip() else None


def markup_of(element: Element) -> str | None:
    """An HTML field's value: its text, or its inner markup when it holds elements unescaped."""
    if not any(isinstance(child.tag, str) for child in element):
        return text_of(element)
    parts = [html.escape(element.text or "", quote=False)]
    parts += [_plain_markup(child) for child in element]
    markup = "".join(parts)
    return markup if markup.strip() else None


def _plain_markup(element: Element) -> str:
    """Serialize as plain HTML: a copy without namespaces, so no ``xmlns`` declarations leak in."""
    if not isinstance(element.tag, str):
        return str(etree.tostring(element, encoding="unicode", with_tail=True))
    plain = copy.deepcopy(element)
    for node in plain.iter("{*}*"):
        node.tag = local_name(node)
        for name in [name for name in node.attrib if name.startswith("{")]:
            del node.attrib[name]
    etree.cleanup_namespaces(plain)
    return str(etree.tostring(plain, encoding="unicode", with_tail=True))


def attr(element: Element, name: str) -> str | None:
    value = element.get(name)
    return value if isinstance(value, str) and value.strip() else None


def is_simple(element: Element) -> bool:
    return not any(isinstance(child.tag, str) for child in element)


# ---------------------------------------------------------------- collecting one item


@dataclass
class ItemFields:
    """Mutable collector for one item; the first value seen for a scalar field wins."""

    scalars: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)  # format-specific hints that never reach RawItem

    def set(self, name: str, value: str | None) -> None:
        if value is not None and name not in self.scalars:
            self.scalars[name] = value

    def add(self, name: str, *values: str | None) -> None:
        self.lists.setdefault(name, []).extend(v for v in values if v is not None and v.strip())

    def add_extra(self, key: str, value: str | None) -> None:
        if value is not None and key not in self.extra:
            self.extra[key] = value

    def build(self, position: int) -> RawItem:
        values: dict[str, Any] = {name: tuple(items) for name, items in self.lists.items()}
        values.update(self.scalars)
        return RawItem(position=position, extra=self.extra, **values)


def apply_shared(child: Element, fields: ItemFields) -> bool:
    """Handle elements both RSS and Atom items may carry (dc, content, media, WPJM); ``False`` if none."""
    ns = namespace(child)
    handler = _SHARED.get((ns, local_name(child)))
    if handler is not None:
        handler(child, fields)
        return True
    job_field = job_listing_field(child)
    if job_field is None:
        return False
    _apply_job_field(job_field, child, fields)
    return True


def apply_extra(child: Element, fields: ItemFields) -> None:
    """Keep any other simple element with text in ``extra`` under its qualified name."""
    if is_simple(child):
        fields.add_extra(qualified_name(child), text_of(child))


def job_listing_field(element: Element) -> str | None:
    """The WPJM field name for ``element``, by the namespace rule in the module docstring."""
    name = local_name(element)
    if name in JOB_FIELDS and namespace(element) not in STANDARD_NAMESPACES:
        return name
    return None


def split_list(value: str | None) -> list[str]:
    """WPJM joins several terms with ``", "``; split them back."""
    if value is None:
        return []
    return [part for part in (p.strip() for p in value.split(",")) if part]


def _apply_job_field(name: str, element: Element, fields: ItemFields) -> None:
    value = text_of(element)
    if name == "location":
        fields.add("locations", value)
    elif name == "job_type":
        fields.add("job_types", *split_list(value))
    elif name == "job_category":
        fields.add("categories", *split_list(value))
    elif name == "company":
        fields.set("company", value)
    elif value is not None:
        fields.add_extra("salary_text", value)
        for key, parsed in salary_from_text(value).items():
            fields.set(key, parsed)


def _media_logo(element: Element, fields: ItemFields) -> None:
    url = attr(element, "url")
    medium = (element.get("medium") or "").lower()
    mime = (element.get("type") or "").lower()
    if local_name(element) == "thumbnail" or medium == "image" or mime.startswith("image/"):
        fields.set("logo_url", url)


def _media_group(element: Element, fields: ItemFields) -> None:
    for child in element:
        if namespace(child) == NS_MEDIA and local_name(child) in ("content", "thumbnail"):
            _media_logo(child, fields)


_SHARED: dict[tuple[str | None, str], Callable[[Element, ItemFields], None]] = {
    (NS_CONTENT, "encoded"): lambda el, f: f.set("content_html", markup_of(el)),
    (NS_DC, "creator"): lambda el, f: f.set("author", text_of(el)),
    (NS_DC, "date"): lambda el, f: f.set("published", text_of(el)),
    (NS_DC, "subject"): lambda el, f: f.add("categories", text_of(el)),
    (NS_MEDIA, "content"): _media_logo,
    (NS_MEDIA, "thumbnail"): _media_logo,
    (NS_MEDIA, "group"): _media_group,
}

"""RSS 2.0, 0.9x and 1.0 (RDF) items → :class:`RawItem`.

This module owns the mapping of RSS item elements: ``title``, ``link``, ``guid``, ``description``
(→ ``summary``), ``pubDate``, ``author``, ``category``, ``enclosure``; RSS 1.0 items also give their
``rdf:about`` as the guid of last resort; an Atom ``author``/``updated`` inside an item (Stack Overflow
Jobs' ``a10:`` elements) gives its author and update time. The elements shared with Atom (``content:encoded``,
``dc:*``, ``media:*``, WP Job Manager's ``job_listing:*``) and the ``extra`` catch-all live in
:mod:`jobimporter.parse.xml`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

from jobimporter.models import RawItem
from jobimporter.parse.xml import (
    NS_ATOM,
    NS_RDF,
    NS_RSS090,
    NS_RSS1,
    Element,
    ItemFields,
    apply_extra,
    apply_shared,
    attr,
    iter_items,
    local_name,
    markup_of,
    namespace,
    text_of,
)

# RSS 0.9x/2.0 elements have no namespace; RSS 1.0 and 0.90 put theirs in one.
_CORE_NAMESPACES = frozenset({None, NS_RSS1, NS_RSS090})


def parse(stream: BinaryIO) -> Iterator[RawItem]:
    """Yield every ``item`` of an RSS document as it is read (see :func:`xml.iter_items`)."""
    return iter_items(stream, is_item, build_item)


def is_item(element: Element) -> bool:
    return local_name(element) == "item" and namespace(element) in _CORE_NAMESPACES


def build_item(element: Element, position: int) -> RawItem:
    fields = ItemFields()
    for child in element.iterchildren("{*}*"):
        _apply(child, fields)
    _fallbacks(element, fields)
    return fields.build(position)


def _apply(child: Element, fields: ItemFields) -> None:
    ns = namespace(child)
    handler = _CORE.get(local_name(child)) if ns in _CORE_NAMESPACES else None
    if handler is None and ns == NS_ATOM:
        handler = _ATOM_IN_RSS.get(local_name(child))
    if handler is not None:
        handler(child, fields)
    elif not apply_shared(child, fields):
        apply_extra(child, fields)


def _atom_author(element: Element, fields: ItemFields) -> None:
    name = next(element.iterchildren(f"{{{NS_ATOM}}}name"), None)
    fields.set("author", text_of(name) if name is not None else text_of(element))


def _guid(element: Element, fields: ItemFields) -> None:
    fields.set("guid", text_of(element))
    if (element.get("isPermaLink") or "true").strip().lower() == "true":
        fields.flags.add("guid_is_permalink")


def _enclosure(element: Element, fields: ItemFields) -> None:
    if (element.get("type") or "").lower().startswith("image/"):
        fields.set("logo_url", attr(element, "url"))
    else:
        fields.add_extra("enclosure", attr(element, "url"))


def _fallbacks(element: Element, fields: ItemFields) -> None:
    """A permalink guid stands in for a missing link; ``rdf:about`` for a missing guid (RSS 1.0)."""
    guid = fields.scalars.get("guid")
    if (
        "guid_is_permalink" in fields.flags
        and guid is not None
        and guid.strip().lower().startswith(("http://", "https://"))
    ):
        fields.set("link", guid)
    fields.set("guid", attr(element, f"{{{NS_RDF}}}about"))


# Atom elements some RSS feeds carry in their items (Stack Overflow Jobs: a10:author, a10:updated).
_ATOM_IN_RSS: dict[str, Callable[[Element, ItemFields], None]] = {
    "author": _atom_author,
    "updated": lambda el, f: f.set("updated", text_of(el)),
}

_CORE: dict[str, Callable[[Element, ItemFields], None]] = {
    "title": lambda el, f: f.set("title", text_of(el)),
    "link": lambda el, f: f.set("link", text_of(el)),
    "guid": _guid,
    "description": lambda el, f: f.set("summary", markup_of(el)),
    "pubDate": lambda el, f: f.set("published", text_of(el)),
    "author": lambda el, f: f.set("author", text_of(el)),
    "category": lambda el, f: f.add("categories", text_of(el)),
    "enclosure": _enclosure,
}

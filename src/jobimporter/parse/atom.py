"""Atom 1.0 (and 0.3) entries → :class:`RawItem`.

This module owns the mapping of Atom entry elements: ``id`` (→ guid), ``link`` (``rel="alternate"``
or no rel → link; an image enclosure → logo), ``title``, ``summary``, ``content`` (by ``type``),
``published``/``updated`` (Atom 0.3: ``issued``/``modified``), ``author/name`` and ``category/@term``.

Text constructs are returned as HTML strings without decoding HTML: ``type="html"`` text is
already HTML, ``type="xhtml"`` is serialized from its markup, and plain ``type="text"`` content is
HTML-escaped so that normalize's single decode gives back the literal text.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from typing import BinaryIO

from jobimporter.models import RawItem
from jobimporter.parse.xml import (
    NS_ATOM,
    NS_ATOM03,
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

_ATOM_NAMESPACES = frozenset({NS_ATOM, NS_ATOM03})


def parse(stream: BinaryIO) -> Iterator[RawItem]:
    """Yield every ``entry`` of an Atom document as it is read (see :func:`xml.iter_items`)."""
    return iter_items(stream, is_entry, build_item)


def is_entry(element: Element) -> bool:
    return local_name(element) == "entry" and namespace(element) in _ATOM_NAMESPACES


def build_item(element: Element, position: int) -> RawItem:
    fields = ItemFields()
    for child in element.iterchildren("{*}*"):
        _apply(child, fields)
    return fields.build(position)


def _apply(child: Element, fields: ItemFields) -> None:
    if namespace(child) in _ATOM_NAMESPACES:
        handler = _ATOM.get(local_name(child))
        if handler is not None:
            handler(child, fields)
            return
    if not apply_shared(child, fields):
        apply_extra(child, fields)


def html_of(element: Element) -> str | None:
    """An Atom text construct as HTML, by its ``type`` attribute."""
    kind = (element.get("type") or "text").strip().lower()
    if kind in ("xhtml", "application/xhtml+xml"):
        return _xhtml(element)
    if kind in ("html", "text/html"):
        return text_of(element)
    text = text_of(element)
    return html.escape(text, quote=False) if text is not None else None


def _xhtml(element: Element) -> str | None:
    """The markup inside the wrapping ``<div>`` (serialized without namespaces by ``markup_of``)."""
    holder = next(element.iterchildren("{*}div"), element)
    return markup_of(holder)


def _link(element: Element, fields: ItemFields) -> None:
    rel = (element.get("rel") or "alternate").strip().lower()
    if rel == "alternate":
        fields.set("link", attr(element, "href"))
    elif rel == "enclosure" and (element.get("type") or "").lower().startswith("image/"):
        fields.set("logo_url", attr(element, "href"))


def _author(element: Element, fields: ItemFields) -> None:
    name = next(element.iterchildren("{*}name"), None)
    fields.set("author", text_of(name) if name is not None else None)


def _content(element: Element, fields: ItemFields) -> None:
    fields.add_extra("content_src", attr(element, "src"))
    fields.set("content_html", html_of(element))


_ATOM: dict[str, Callable[[Element, ItemFields], None]] = {
    "id": lambda el, f: f.set("guid", text_of(el)),
    "title": lambda el, f: f.set("title", html_of(el) if el.get("type") == "xhtml" else text_of(el)),
    "link": _link,
    "summary": lambda el, f: f.set("summary", html_of(el)),
    "content": _content,
    "published": lambda el, f: f.set("published", text_of(el)),
    "issued": lambda el, f: f.set("published", text_of(el)),
    "updated": lambda el, f: f.set("updated", text_of(el)),
    "modified": lambda el, f: f.set("updated", text_of(el)),
    "author": _author,
    "category": lambda el, f: f.add("categories", attr(el, "term")),
}

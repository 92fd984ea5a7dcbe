"""A feed's own field mapping (:class:`~jobimporter.mapping.FieldMapping`) applied to its body.

XML streams like RSS: items are the elements the mapping's items path names (matched by name and
ancestors as the document is read), each field an XPath relative to the item. JSON is read whole:
items are what the JSONPath finds (a list found is its elements), each field a JSONPath relative to
the item. Fields are read and transformed as :mod:`jobimporter.mapping` describes; the item's other
simple elements or keys, which no path starts with, are kept in ``extra`` under their names.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from jsonpath_ng.ext.parser import parse as jsonpath
from lxml import etree  # type: ignore[import-untyped]

from jobimporter.mapping import LIST_TARGETS, FieldMapping, FieldRule
from jobimporter.models import RawItem
from jobimporter.parse.jsonapi import iso_from_epoch, load_json, scalar
from jobimporter.parse.salary import salary_from_text
from jobimporter.parse.xml import Element, is_simple, iter_items, local_name, markup_of, namespace, text_of

Reader = Callable[[str], list[str]]
_HTML_TARGETS = frozenset({"content_html", "summary"})
_FIRST_STEP = re.compile(r"^[./]*@?(?:[\w.-]+:)?([\w.-]+)")


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A mapping made ready once per body: its rules, compiled paths, and the names they read."""

    mapping: FieldMapping
    rules: dict[str, FieldRule]
    paths: dict[str, Any]
    mapped_names: frozenset[str]


def parse(body: BinaryIO, mapping: FieldMapping) -> Iterator[RawItem]:
    """Yield the mapped items of ``body``.

    :raises FeedParseError: malformed XML/JSON (XML: where it breaks, after the items before it).
    """
    compiled = _compile(mapping)
    if mapping.kind == "json":
        return _json_items(load_json(body.read()), compiled)
    return iter_items(body, _xml_item_test(mapping), functools.partial(_xml_item, compiled))


def _compile(mapping: FieldMapping) -> _Compiled:
    rules = mapping.rules()
    paths = {path for rule in rules.values() for step in rule.chain() for path in step.paths}
    namespaces = mapping.namespaces or None
    if mapping.kind == "json":
        compiled = {path: jsonpath(path) for path in paths}
    else:
        compiled = {path: etree.XPath(path, namespaces=namespaces) for path in paths}
    names = frozenset(m.group(1) for path in paths if (m := _FIRST_STEP.match(path.removeprefix("$."))))
    return _Compiled(mapping, rules, compiled, names)


# ---------------------------------------------------------------- XML


def _xml_item_test(mapping: FieldMapping) -> Callable[[Element], bool]:
    anywhere, steps = mapping.item_steps()
    wanted = [_qualified(step, mapping.namespaces) for step in reversed(steps)]

    def is_item(element: Element) -> bool:
        chain = [element, *element.iterancestors()]
        if len(chain) < len(wanted) or (not anywhere and len(chain) != len(wanted)):
            return False
        return all(_named(node, name) for node, name in zip(chain, wanted, strict=False))

    return is_item


def _qualified(step: str, namespaces: dict[str, str]) -> tuple[str | None, str]:
    prefix, _, name = step.rpartition(":")
    return (namespaces[prefix] if prefix else None), name


def _named(element: Element, name: tuple[str | None, str]) -> bool:
    uri, local = name
    return local_name(element) == local and (uri is None or namespace(element) == uri)


def _xml_item(compiled: _Compiled, element: Element, position: int) -> RawItem:
    def read(target: str) -> Reader:
        return lambda path: _xml_values(compiled.paths[path](element), html=target in _HTML_TARGETS)

    leftovers = {
        local_name(child): text.strip()
        for child in element.iterchildren("{*}*")
        if is_simple(child) and local_name(child) not in compiled.mapped_names and (text := text_of(child))
    }
    return _item(compiled, position, read, leftovers)


def _xml_values(results: object, *, html: bool) -> list[str]:
    found = results if isinstance(results, list) else [results]
    values: list[str] = []
    for result in found:
        if isinstance(result, bool):
            continue
        text = (markup_of(result) if html else text_of(result)) if hasattr(result, "tag") else str(result)
        if text is not None and text.strip():
            values.append(text.strip())
    return values


# ---------------------------------------------------------------- JSON


def _json_items(document: Any, compiled: _Compiled) -> Iterator[RawItem]:
    found = [match.value for match in jsonpath(compiled.mapping.items).find(document)]
    if len(found) == 1 and isinstance(found[0], list):
        found = found[0]
    for position, item in enumerate(found, start=1):
        if not isinstance(item, dict):
            yield RawItem(position=position)
            continue

        def read(target: str, item: dict[str, Any] = item) -> Reader:
            return lambda path: _json_values(match.value for match in compiled.paths[path].find(item))

        leftovers = {
            key: text
            for key, value in item.items()
            if key not in compiled.mapped_names and (text := scalar(value)) is not None
        }
        yield _item(compiled, position, read, leftovers)


def _json_values(values: Iterator[Any]) -> list[str]:
    found: list[str] = []
    for value in values:
        for element in value if isinstance(value, list) else [value]:
            if isinstance(element, bool):
                text: str | None = "true" if element else "false"
            elif isinstance(element, dict):
                text = json.dumps(element, ensure_ascii=False)
            else:
                text = scalar(element)
            if text is not None:
                found.append(text.strip())
    return found


# ---------------------------------------------------------------- fields and transforms


def _item(
    compiled: _Compiled, position: int, read: Callable[[str], Reader], leftovers: dict[str, str]
) -> RawItem:
    values: dict[str, Any] = {}
    extra = dict(leftovers)
    for target, rule in compiled.rules.items():
        found = rule_values(rule, read(target))
        if not found:
            continue
        if target.startswith("extra."):
            extra[target.removeprefix("extra.")] = found[0]
        elif target == "salary":
            extra["salary_text"] = found[0]
            for key, value in salary_from_text(found[0]).items():
                values.setdefault(key, value)
        elif target in LIST_TARGETS:
            values[target] = tuple(found)
        else:
            values[target] = found[0]
    return RawItem(position=position, extra=extra, **values)


def rule_values(rule: FieldRule, read: Reader) -> list[str]:
    """What ``rule`` gives (its first step that gives anything, fallbacks after)."""
    for step in rule.chain():
        if step.value is not None:
            values = [step.value]
        else:
            values = next((found for path in step.paths if (found := read(path))), [])
        values = transform(step, values)
        if values:
            return values
    return []


def transform(rule: FieldRule, values: list[str]) -> list[str]:
    """regex → split/take → join → date_format, in that order (see :mod:`jobimporter.mapping`)."""
    if rule.regex is not None:
        values = [captured for value in values if (captured := _capture(rule.regex, value)) is not None]
    if rule.split is not None:
        values = [part for value in values for part in _split(value, rule.split, rule.take)]
    if rule.join is not None and values:
        values = [rule.join.join(values)]
    if rule.date_format is not None:
        values = [iso for value in values if (iso := _date(value, rule.date_format)) is not None]
    return [value for value in values if value.strip()]


def _capture(pattern: str, value: str) -> str | None:
    match = re.search(pattern, value)
    if match is None:
        return None
    if "value" in match.re.groupindex:
        return match.group("value")
    return match.group(1) if match.re.groups else match.group(0)


def _split(value: str, separator: str, take: int | None) -> list[str]:
    parts = [part.strip() for part in value.split(separator)]
    if take is None:
        return [part for part in parts if part]
    try:
        return [parts[take]]
    except IndexError:
        return []


def _date(value: str, fmt: str) -> str | None:
    if fmt == "epoch":
        return iso_from_epoch(value)
    try:
        return datetime.strptime(value.strip(), fmt).isoformat()
    except ValueError:
        return None

"""Personio XML (``<company>.jobs.personio.de/xml``) → items, streamed.

``<workzag-jobs><position>…</position>…</workzag-jobs>``. Per position: ``id`` (guid; the job page
is ``/job/<id>`` on the feed's host, so the link is that path and normalize resolves it),
``name`` (title), ``subcompany`` (the company, when the account has several; else none is given),
``office`` (+ ``additionalOffices/office``: locations; "Remote" among them means remote),
``department`` and ``recruitingCategory``/``occupationCategory`` (categories), ``employmentType``
(permanent, intern, trainee, freelance, temporary, working_student) and ``schedule`` (full-time,
part-time, full-or-part-time) as job types, ``createdAt``, ``jobDescriptions/jobDescription``
(``name`` heading + ``value`` HTML, joined), ``salaryInformation`` (``min``/``max``/
``currencyCode``/``type`` such as yearly). Other simple elements (seniority, yearsOfExperience,
keywords, occupation) go to ``extra``.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import BinaryIO

from jobimporter.models import RawItem
from jobimporter.parse.xml import Element, ItemFields, is_simple, iter_items, local_name, markup_of, text_of

_SIMPLE = {"id": "guid", "name": "title", "subcompany": "company", "createdAt": "published"}
_CATEGORIES = ("department", "recruitingCategory", "occupationCategory")
_TYPES = ("employmentType", "schedule")
_SALARY = {
    "min": "salary_min",
    "max": "salary_max",
    "currencyCode": "salary_currency",
    "type": "salary_period",
}


def parse(stream: BinaryIO) -> Iterator[RawItem]:
    """Yield every ``position`` as it is read (see :func:`xml.iter_items`)."""
    return iter_items(stream, lambda element: local_name(element) == "position", build_item)


def build_item(element: Element, position: int) -> RawItem:
    fields = ItemFields()
    for child in element.iterchildren("{*}*"):
        _apply(local_name(child), child, fields)
    guid = fields.scalars.get("guid")
    if guid is not None:
        fields.set("link", f"/job/{guid.strip()}")
    offices = fields.lists.get("locations", [])
    if any(office.strip().lower() == "remote" for office in offices):
        fields.set("workplace", "remote")
    return fields.build(position)


def _apply(name: str, child: Element, fields: ItemFields) -> None:
    if name in _SIMPLE:
        fields.set(_SIMPLE[name], text_of(child))
    elif name == "office":
        fields.add("locations", text_of(child))
    elif name == "additionalOffices":
        fields.add("locations", *(text_of(office) for office in child.iterchildren("{*}office")))
    elif name in _CATEGORIES:
        fields.add("categories", text_of(child))
    elif name in _TYPES:
        fields.add("job_types", text_of(child))
    elif name == "jobDescriptions":
        fields.set("content_html", _descriptions(child))
    elif name == "salaryInformation":
        _salary(child, fields)
    elif is_simple(child):
        fields.add_extra(name, (text_of(child) or "").strip() or None)


def _descriptions(element: Element) -> str | None:
    parts: list[str] = []
    for block in element.iterchildren("{*}jobDescription"):
        heading = next(block.iterchildren("{*}name"), None)
        value = next(block.iterchildren("{*}value"), None)
        title = text_of(heading) if heading is not None else None
        if title:
            parts.append(f"<h3>{html.escape(title.strip(), quote=False)}</h3>")
        body = markup_of(value) if value is not None else None
        if body:
            parts.append(body.strip())
    return "\n".join(parts) or None


def _salary(element: Element, fields: ItemFields) -> None:
    for child in element.iterchildren("{*}*"):
        target = _SALARY.get(local_name(child))
        if target is not None:
            fields.set(target, text_of(child))

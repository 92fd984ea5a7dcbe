"""Lever postings API (``api.lever.co/v0/postings/<site>?mode=json``) → items.

A JSON array of postings: ``id`` (guid), ``text`` (title), ``hostedUrl``, ``applyUrl``,
``categories`` (``commitment`` → job type, ``department``/``team`` → categories, ``location`` and
``allLocations``), ``workplaceType`` (onsite/remote/hybrid), ``createdAt`` (ms), ``description`` +
``lists`` (``text`` heading, ``content`` list items) + ``additional`` → the content, ``salaryRange``
(``min``/``max``/``currency``/``interval`` such as ``per-year-salary``) or ``salaryDescription``.
The company is not in the answer. Paging: with ``limit=N`` in the URL, ``skip`` moves on by N
while a page comes back full.
"""

from __future__ import annotations

from typing import Any

from jobimporter.models import FeedFormat, RawItem
from jobimporter.parse.jsonapi import (
    JsonApi,
    Page,
    first_keys,
    iso_from_epoch,
    leftovers,
    obj,
    objects,
    query_int,
    scalar,
    strings,
    with_query,
)
from jobimporter.parse.salary import salary_from_text

_HANDLED = {"id", "text", "hostedUrl", "applyUrl", "categories", "workplaceType", "createdAt",
            "description", "descriptionPlain", "lists", "additional", "additionalPlain", "salaryRange",
            "salaryDescription", "salaryDescriptionPlain", "opening", "openingPlain", "descriptionBody",
            "descriptionBodyPlain"}  # fmt: skip
_INTERVALS = {"per-year-salary": "year", "per-month-salary": "month", "per-week-salary": "week",
              "per-day-wage": "day", "per-hour-wage": "hour"}  # fmt: skip


def _items(document: Any) -> list[Any] | None:
    return document if isinstance(document, list) else None


def _matches(document: Any) -> bool:
    keys = first_keys(_items(document))
    return {"hostedUrl", "text"} <= keys and ("categories" in keys or "applyUrl" in keys)


def build(job: dict[str, Any], position: int, page: Page) -> RawItem:
    categories = obj(job.get("categories"))
    locations = strings(categories.get("allLocations")) or strings(categories.get("location"))
    return RawItem(
        position=position,
        guid=scalar(job.get("id")),
        link=scalar(job.get("hostedUrl")),
        apply_url=scalar(job.get("applyUrl")),
        title=scalar(job.get("text")),
        locations=locations,
        job_types=strings(categories.get("commitment")),
        categories=strings(categories.get("department")) + strings(categories.get("team")),
        workplace=scalar(job.get("workplaceType")),
        published=iso_from_epoch(job.get("createdAt")),
        content_html=_content(job),
        extra=leftovers(job, _HANDLED) | _salary_text(job),
        **_salary(job),
    )


def _content(job: dict[str, Any]) -> str | None:
    parts = [scalar(job.get("description"))]
    for block in objects(job.get("lists")):
        heading, items = scalar(block.get("text")), scalar(block.get("content"))
        parts += [f"<h3>{heading}</h3>" if heading else None, f"<ul>{items}</ul>" if items else None]
    parts.append(scalar(job.get("additional")))
    html = "".join(part for part in parts if part)
    return html or None


def _salary(job: dict[str, Any]) -> dict[str, str | None]:
    salary = obj(job.get("salaryRange"))
    if salary:
        interval = scalar(salary.get("interval")) or ""
        return {
            "salary_min": scalar(salary.get("min")),
            "salary_max": scalar(salary.get("max")),
            "salary_currency": scalar(salary.get("currency")),
            "salary_period": _INTERVALS.get(interval, interval or None),
        }
    text = scalar(job.get("salaryDescriptionPlain")) or scalar(job.get("salaryDescription"))
    return dict(salary_from_text(text)) if text else {}


def _salary_text(job: dict[str, Any]) -> dict[str, str]:
    text = scalar(job.get("salaryDescriptionPlain")) or scalar(job.get("salaryDescription"))
    return {"salary_text": text.strip()} if text else {}


def _next_page(document: Any, url: str, count: int) -> str | None:
    limit = query_int(url, "limit", 0)
    if limit <= 0 or count < limit:
        return None
    return with_query(url, skip=query_int(url, "skip", 0) + limit)


API = JsonApi(FeedFormat.LEVER, ("lever.co",), _matches, _items, build, _next_page)

"""Greenhouse job board API (``boards-api.greenhouse.io/v1/boards/<board>/jobs?content=true``) → items.

``{"jobs": [...], "meta": {"total": N}}``; the board returns every job at once (no paging). Per job:
``id`` (the guid), ``title``, ``absolute_url``, ``company_name``, ``location.name``, ``content``
(HTML, entity-escaped once more: unescaped here so normalize sees HTML), ``first_published`` /
``updated_at``, ``departments``/``offices`` names, ``metadata`` (custom fields: an "Employment
Type"-like one gives the job type, a "Workplace"/"Remote"-like one the workplace), and
``pay_input_ranges`` (with ``pay_transparency=true``: cents and a currency).
"""

from __future__ import annotations

import html
from typing import Any

from jobimporter.models import FeedFormat, RawItem
from jobimporter.parse.jsonapi import (
    JsonApi,
    Page,
    dig,
    first_keys,
    first_list,
    leftovers,
    names,
    number,
    obj,
    objects,
    scalar,
)

_HANDLED = {"id", "title", "absolute_url", "company_name", "location", "content", "first_published",
            "updated_at", "departments", "offices", "metadata", "pay_input_ranges"}  # fmt: skip
_TYPE_FIELDS = ("employment type", "job type", "employment", "commitment", "contract type", "schedule")
_WORKPLACE_FIELDS = ("workplace", "remote", "location type", "work location", "work arrangement")


def _items(document: Any) -> list[Any] | None:
    return first_list(document, "jobs")


def _matches(document: Any) -> bool:
    keys = first_keys(_items(document))
    if keys:
        return "absolute_url" in keys and ("internal_job_id" in keys or "updated_at" in keys)
    return (
        isinstance(_items(document), list)
        and set(obj(document)) <= {"jobs", "meta"}
        and "meta" in obj(document)
    )


def build(job: dict[str, Any], position: int, page: Page) -> RawItem:
    content = scalar(job.get("content"))
    metadata = {str(m.get("name", "")).strip().lower(): m.get("value") for m in objects(job.get("metadata"))}
    return RawItem(
        position=position,
        guid=scalar(job.get("id")),
        link=scalar(job.get("absolute_url")),
        title=scalar(job.get("title")),
        company=scalar(job.get("company_name")),
        locations=_locations(job),
        content_html=html.unescape(content) if content else None,
        published=scalar(job.get("first_published")) or scalar(job.get("updated_at")),
        updated=scalar(job.get("updated_at")),
        categories=names(job.get("departments")),
        job_types=_metadata_values(metadata, _TYPE_FIELDS),
        workplace=next(iter(_metadata_values(metadata, _WORKPLACE_FIELDS)), None),
        extra=leftovers(job, _HANDLED),
        **_pay(job),
    )


def _locations(job: dict[str, Any]) -> tuple[str, ...]:
    name = scalar(dig(job, "location", "name"))
    if name is not None:
        return (name,)
    return names(job.get("offices"), "location") or names(job.get("offices"))


def _metadata_values(metadata: dict[str, Any], wanted: tuple[str, ...]) -> tuple[str, ...]:
    for name, value in metadata.items():
        if any(word in name for word in wanted):
            values = value if isinstance(value, list) else [value]
            return tuple(text for text in map(scalar, values) if text is not None)
    return ()


def _pay(job: dict[str, Any]) -> dict[str, str | None]:
    ranges = objects(job.get("pay_input_ranges"))
    if not ranges:
        return {}
    low, high = number(ranges[0].get("min_cents")), number(ranges[0].get("max_cents"))
    return {
        "salary_min": None if low is None else str(low / 100),
        "salary_max": None if high is None else str(high / 100),
        "salary_currency": scalar(ranges[0].get("currency_type")),
    }


API = JsonApi(FeedFormat.GREENHOUSE, ("greenhouse.io",), _matches, _items, build)

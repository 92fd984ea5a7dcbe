"""Workable job APIs → items: the public widget (``apply.workable.com/api/v1/widget/accounts/<account>``,
``{"name": <company>, "jobs": [...]}``) and the SPI (``<account>.workable.com/spi/v3/jobs``,
``{"jobs": [...], "paging": {"next": <url>}}``, followed to the end).

Per job: ``shortcode`` (guid), ``title``, ``url`` / ``shortlink``, ``application_url``,
``employment_type``, ``telecommuting`` or ``location.workplace_type``, ``department``, ``function``
/ ``industry``, ``published_on`` / ``created_at``, ``city``/``state``/``country`` or ``locations`` /
``location``, ``description``, ``salary`` (``salary_from``/``salary_to``/``salary_currency``).
"""

from __future__ import annotations

from typing import Any

from jobimporter.models import FeedFormat, RawItem
from jobimporter.parse.jsonapi import (
    JsonApi,
    Page,
    dig,
    first_keys,
    first_list,
    flag,
    joined,
    leftovers,
    obj,
    objects,
    scalar,
    strings,
)

_HANDLED = {"id", "shortcode", "title", "url", "shortlink", "application_url", "employment_type",
            "telecommuting", "department", "function", "industry", "published_on", "created_at", "city",
            "state", "country", "locations", "location", "description", "salary", "full_title"}  # fmt: skip


def _items(document: Any) -> list[Any] | None:
    return first_list(document, "jobs")


def _matches(document: Any) -> bool:
    keys = first_keys(_items(document))
    if keys:
        return "shortcode" in keys and ("application_url" in keys or "shortlink" in keys)
    return False


def build(job: dict[str, Any], position: int, page: Page) -> RawItem:
    location = obj(job.get("location"))
    return RawItem(
        position=position,
        guid=scalar(job.get("shortcode")) or scalar(job.get("id")),
        link=scalar(job.get("url")) or scalar(job.get("shortlink")),
        apply_url=scalar(job.get("application_url")),
        title=scalar(job.get("title")),
        company=scalar(obj(page.document).get("name")),
        locations=_locations(job, location),
        workplace=scalar(location.get("workplace_type"))
        or flag(job.get("telecommuting", location.get("telecommuting")), false=None),
        job_types=strings(job.get("employment_type")),
        categories=strings(job.get("department"))
        + strings(job.get("function"))
        + strings(job.get("industry")),
        published=scalar(job.get("published_on")) or scalar(job.get("created_at")),
        content_html=scalar(job.get("description")),
        extra=leftovers(job, _HANDLED),
        salary_min=scalar(dig(job, "salary", "salary_from")),
        salary_max=scalar(dig(job, "salary", "salary_to")),
        salary_currency=scalar(dig(job, "salary", "salary_currency")),
    )


def _locations(job: dict[str, Any], location: dict[str, Any]) -> tuple[str, ...]:
    listed = [
        joined(place.get("city"), place.get("region"), place.get("country"))
        for place in objects(job.get("locations"))
        if not place.get("hidden")
    ]
    found = tuple(text for text in listed if text)
    if found:
        return found
    single = scalar(location.get("location_str")) or joined(
        job.get("city"), job.get("state"), job.get("country")
    )
    return (single,) if single else ()


def _next_page(document: Any, url: str, count: int) -> str | None:
    return scalar(dig(document, "paging", "next"))


API = JsonApi(FeedFormat.WORKABLE, ("workable.com",), _matches, _items, build, _next_page)

"""Himalayas jobs API (``himalayas.app/jobs/api?limit=20&offset=0``) → items.

``{"comments", "updatedAt", "offset", "limit", "totalCount", "jobs": [...]}``, paged by ``offset``
(at most 20 a page) until ``totalCount``: tens of thousands, so the feed's page cap matters here.
Per job: ``guid`` (also the job page), ``applicationLink``, ``title``, ``companyName``,
``companyLogo``, ``employmentType``, ``minSalary``/``maxSalary`` (a year; ``currency`` when given),
``locationRestrictions`` (where candidates may live), ``categories``/``parentCategories``,
``pubDate``/``expiryDate`` (seconds since 1970), ``description``, ``excerpt``. Every job is remote.
"""

from __future__ import annotations

from typing import Any

from jobimporter.models import FeedFormat, RawItem
from jobimporter.parse.jsonapi import (
    JsonApi,
    Page,
    first_keys,
    first_list,
    iso_from_epoch,
    leftovers,
    number,
    obj,
    scalar,
    strings,
    with_query,
)

_HANDLED = {"guid", "applicationLink", "title", "companyName", "companyLogo", "employmentType", "minSalary",
            "maxSalary", "currency", "locationRestrictions", "categories", "parentCategories", "pubDate",
            "expiryDate", "description", "excerpt"}  # fmt: skip


def _items(document: Any) -> list[Any] | None:
    return first_list(document, "jobs")


def _matches(document: Any) -> bool:
    keys = first_keys(_items(document))
    if keys:
        return {"companyName", "applicationLink"} <= keys or {"locationRestrictions", "pubDate"} <= keys
    return isinstance(_items(document), list) and "totalCount" in obj(document) and "offset" in obj(document)


def build(job: dict[str, Any], position: int, page: Page) -> RawItem:
    low, high = scalar(job.get("minSalary")), scalar(job.get("maxSalary"))
    return RawItem(
        position=position,
        guid=scalar(job.get("guid")) or scalar(job.get("applicationLink")),
        link=scalar(job.get("guid")) or scalar(job.get("applicationLink")),
        apply_url=scalar(job.get("applicationLink")),
        title=scalar(job.get("title")),
        company=scalar(job.get("companyName")),
        logo_url=scalar(job.get("companyLogo")),
        job_types=strings(job.get("employmentType")),
        locations=strings(job.get("locationRestrictions")),
        workplace="remote",
        categories=strings(job.get("parentCategories")) + strings(job.get("categories")),
        published=iso_from_epoch(job.get("pubDate")),
        expires=iso_from_epoch(job.get("expiryDate")),
        content_html=scalar(job.get("description")),
        summary=scalar(job.get("excerpt")),
        salary_min=low,
        salary_max=high,
        salary_currency=scalar(job.get("currency")),
        salary_period="year" if low or high else None,
        extra=leftovers(job, _HANDLED),
    )


def _next_page(document: Any, url: str, count: int) -> str | None:
    page = obj(document)
    offset, total = number(page.get("offset")), number(page.get("totalCount"))
    if offset is None or total is None or count == 0:
        return None
    following = int(offset) + count
    return with_query(url, offset=following) if following < total else None


API = JsonApi(FeedFormat.HIMALAYAS, ("himalayas.app",), _matches, _items, build, _next_page)

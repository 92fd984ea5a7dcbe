"""USAJOBS search API (``data.usajobs.gov/api/search``) → items.

``{"SearchResult": {"SearchResultItems": [{"MatchedObjectId", "MatchedObjectDescriptor": {...}}],
"SearchResultCountAll", "UserArea": {"NumberOfPages"}}}``, paged by ``Page`` (from 1) up to
``NumberOfPages``. Per item: ``MatchedObjectId`` (guid; the announcement's ``PositionID`` kept),
``PositionTitle``, ``PositionURI``, ``ApplyURI[0]``, ``OrganizationName`` (the company;
``DepartmentName`` kept), ``PositionLocation[].LocationName``, ``PositionSchedule[].Name`` and
``PositionOfferingType[].Name`` (job types), ``JobCategory[].Name``, ``PositionRemuneration``
(``MinimumRange``/``MaximumRange``/``RateIntervalCode``: "Per Year" or PA, "Per Hour" or PH…),
``PublicationStartDate``, ``ApplicationCloseDate`` (expires), ``UserArea.Details.JobSummary`` and
``QualificationSummary`` (the description; ``PositionFormattedDescription`` holds search-hit
snippets, not the text). Dollars always.
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
    names,
    number,
    obj,
    objects,
    query_int,
    scalar,
    strings,
    with_query,
)

_INTERVALS = {"per year": "year", "pa": "year", "per hour": "hour", "ph": "hour", "per day": "day",
              "pd": "day", "per week": "week", "pw": "week", "per month": "month", "pm": "month"}  # fmt: skip
_UNPAID = {"without compensation", "wc"}


def _items(document: Any) -> list[Any] | None:
    found = dig(document, "SearchResult", "SearchResultItems")
    return found if isinstance(found, list) else None


def _matches(document: Any) -> bool:
    items = _items(document)
    return items is not None and (not items or "MatchedObjectDescriptor" in first_keys(items))


def build(item: dict[str, Any], position: int, page: Page) -> RawItem:
    job = obj(item.get("MatchedObjectDescriptor"))
    return RawItem(
        position=position,
        guid=scalar(item.get("MatchedObjectId")) or scalar(job.get("PositionID")),
        link=scalar(job.get("PositionURI")),
        apply_url=next(iter(strings(job.get("ApplyURI"))), None),
        title=scalar(job.get("PositionTitle")),
        company=scalar(job.get("OrganizationName")),
        locations=names(job.get("PositionLocation"), "LocationName"),
        job_types=names(job.get("PositionSchedule"), "Name") + names(job.get("PositionOfferingType"), "Name"),
        categories=names(job.get("JobCategory"), "Name"),
        published=scalar(job.get("PublicationStartDate")) or scalar(job.get("PositionStartDate")),
        expires=scalar(job.get("ApplicationCloseDate")) or scalar(job.get("PositionEndDate")),
        content_html=_description(job),
        extra=_extra(job),
        **_pay(job),
    )


def _description(job: dict[str, Any]) -> str | None:
    parts = [
        scalar(dig(job, "UserArea", "Details", "JobSummary")),
        scalar(job.get("QualificationSummary")),
    ]
    paragraphs = [f"<p>{html.escape(text, quote=False)}</p>" for text in parts if text]
    return "".join(paragraphs) or None


def _pay(job: dict[str, Any]) -> dict[str, str | None]:
    pay = next(iter(objects(job.get("PositionRemuneration"))), {})
    interval = (scalar(pay.get("RateIntervalCode")) or "").strip().lower()
    if not pay or interval in _UNPAID:
        return {}
    return {
        "salary_min": scalar(pay.get("MinimumRange")),
        "salary_max": scalar(pay.get("MaximumRange")),
        "salary_currency": "USD",
        "salary_period": _INTERVALS.get(interval),
    }


def _extra(job: dict[str, Any]) -> dict[str, str]:
    extra = {
        "position_id": scalar(job.get("PositionID")),
        "department": scalar(job.get("DepartmentName")),
        "pay_interval": scalar(
            next(iter(objects(job.get("PositionRemuneration"))), {}).get("RateIntervalCode")
        ),
        "grade": ", ".join(names(job.get("JobGrade"), "Code")) or None,
    }
    return {key: value for key, value in extra.items() if value is not None}


def _next_page(document: Any, url: str, count: int) -> str | None:
    pages = number(dig(document, "SearchResult", "UserArea", "NumberOfPages"))
    current = query_int(url, "Page", 1)
    if pages is None or count == 0 or current >= pages:
        return None
    return with_query(url, Page=current + 1)


API = JsonApi(FeedFormat.USAJOBS, ("usajobs.gov",), _matches, _items, build, _next_page)

"""Ashby job board API (``api.ashbyhq.com/posting-api/job-board/<board>?includeCompensation=true``) → items.

``{"apiVersion": "1", "jobs": [...]}``, every job at once. Per job: ``id`` (guid), ``title``,
``jobUrl``, ``applyUrl``, ``location`` + ``secondaryLocations``, ``address.postalAddress``,
``isRemote`` / ``workplaceType`` (OnSite, Remote, Hybrid), ``employmentType`` (FullTime,
PartTime, Intern, Contract, Temporary), ``publishedAt``, ``department``/``team``,
``descriptionHtml``, and ``compensation``: the first ``Salary`` component of the summary (or of
the first tier) gives min/max/currency/interval ("1 YEAR"); ``compensationTierSummary`` is kept
as the salary text. The company is not in the answer.
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

_HANDLED = {"id", "title", "jobUrl", "applyUrl", "location", "secondaryLocations", "address", "isRemote",
            "workplaceType", "employmentType", "publishedAt", "department", "team", "descriptionHtml",
            "descriptionPlain", "compensation"}  # fmt: skip
_INTERVALS = {"1 YEAR": "year", "1 MONTH": "month", "1 WEEK": "week", "1 DAY": "day", "1 HOUR": "hour"}


def _items(document: Any) -> list[Any] | None:
    return first_list(document, "jobs")


def _matches(document: Any) -> bool:
    keys = first_keys(_items(document))
    if keys:
        return {"jobUrl", "applyUrl"} <= keys
    return isinstance(_items(document), list) and set(obj(document)) == {"apiVersion", "jobs"}


def build(job: dict[str, Any], position: int, page: Page) -> RawItem:
    return RawItem(
        position=position,
        guid=scalar(job.get("id")),
        link=scalar(job.get("jobUrl")),
        apply_url=scalar(job.get("applyUrl")),
        title=scalar(job.get("title")),
        locations=_locations(job),
        workplace=scalar(job.get("workplaceType")) or flag(job.get("isRemote"), false=None),
        job_types=strings(job.get("employmentType")),
        published=scalar(job.get("publishedAt")),
        categories=strings(job.get("department")) + strings(job.get("team")),
        content_html=scalar(job.get("descriptionHtml")),
        extra=leftovers(job, _HANDLED) | _salary_text(job),
        **_salary(job),
    )


def _locations(job: dict[str, Any]) -> tuple[str, ...]:
    found = list(strings(job.get("location")))
    found += [text for loc in objects(job.get("secondaryLocations")) if (text := scalar(loc.get("location")))]
    if not found:
        address = obj(dig(job, "address", "postalAddress"))
        place = joined(
            address.get("addressLocality"), address.get("addressRegion"), address.get("addressCountry")
        )
        found += [place] if place else []
    return tuple(found)


def _salary(job: dict[str, Any]) -> dict[str, str | None]:
    compensation = obj(job.get("compensation"))
    tiers = objects(compensation.get("compensationTiers"))
    components = objects(compensation.get("summaryComponents")) or (
        objects(tiers[0].get("components")) if tiers else []
    )
    for part in components:
        if scalar(part.get("compensationType")) == "Salary":
            interval = scalar(part.get("interval")) or ""
            return {
                "salary_min": scalar(part.get("minValue")),
                "salary_max": scalar(part.get("maxValue")),
                "salary_currency": scalar(part.get("currencyCode")),
                "salary_period": _INTERVALS.get(interval.upper(), None),
            }
    return {}


def _salary_text(job: dict[str, Any]) -> dict[str, str]:
    compensation = obj(job.get("compensation"))
    text = scalar(compensation.get("compensationTierSummary")) or scalar(
        compensation.get("scrapeableCompensationSalarySummary")
    )
    return {"salary_text": text} if text else {}


API = JsonApi(FeedFormat.ASHBY, ("ashbyhq.com",), _matches, _items, build)

"""jobicy API v2 JSON (``{"jobs": [...]}``) → :class:`RawItem`.

This module owns the mapping of jobicy job objects (the document is read whole by :mod:`.jsondoc`).

- ``jobTitle``, ``companyName``, ``companyLogo``, ``url``, ``pubDate``, ``jobDescription`` (→
  content), ``jobExcerpt`` (→ summary), ``jobIndustry`` (→ categories), ``jobType`` (→ job types),
  ``jobGeo`` (split on commas → locations).
- Salary: ``salaryMin``/``salaryMax``/``salaryPeriod`` (API 2.2), else ``annualSalaryMin``/
  ``annualSalaryMax`` with period ``year`` (API 2.0); ``salaryCurrency`` in both.
- guid: ``<scheme>://<host of url>/?post_type=job_listing&p=<id>``, the guid the same WordPress
  post carries in the site's RSS feed, so a job keeps its identity whichever format it came in.
- ``jobLevel`` → ``extra["job_level"]``, ``jobSlug`` → ``extra["job_slug"]``; any other scalar
  field is kept in ``extra`` under its own name.

Values stay as the API sent them (titles carry ``&amp;``); normalize decodes HTML once.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from jobimporter.models import FeedFormat, RawItem
from jobimporter.parse.jsonapi import JsonApi, Page, first_keys, first_list, obj, scalar, strings

_SIMPLE = {
    "url": "link",
    "jobTitle": "title",
    "companyName": "company",
    "companyLogo": "logo_url",
    "jobExcerpt": "summary",
    "jobDescription": "content_html",
    "pubDate": "published",
    "salaryCurrency": "salary_currency",
}
_EXTRA = {"jobLevel": "job_level", "jobSlug": "job_slug"}
_LISTS = {"jobIndustry": "categories", "jobType": "job_types"}
_SALARY = ("salaryMin", "salaryMax", "salaryPeriod", "annualSalaryMin", "annualSalaryMax")
_HANDLED = {*_SIMPLE, *_EXTRA, *_LISTS, *_SALARY, "id", "jobGeo"}


def _items(document: Any) -> list[Any] | None:
    return first_list(document, "jobs")


def _matches(document: Any) -> bool:
    keys = first_keys(_items(document))
    if keys:
        return "jobTitle" in keys and ("jobGeo" in keys or "companyName" in keys)
    return isinstance(_items(document), list) and (
        "jobCount" in obj(document) or "friendlyNotice" in obj(document)
    )


def build(job: dict[str, Any], position: int, page: Page) -> RawItem:
    return build_item(job, position)


def build_item(job: dict[str, Any], position: int) -> RawItem:
    values: dict[str, Any] = {name: scalar(job.get(key)) for key, name in _SIMPLE.items()}
    values |= {name: strings(job.get(key)) for key, name in _LISTS.items()}
    values |= _salary(job)
    values["guid"] = site_guid(job.get("url"), job.get("id"))
    values["locations"] = tuple(
        part.strip() for part in (scalar(job.get("jobGeo")) or "").split(",") if part.strip()
    )
    return RawItem(position=position, extra=_extra(job), **values)


def site_guid(url: object, job_id: object) -> str | None:
    """The WordPress guid of the job's post, or the bare id when the url is unusable."""
    ident = scalar(job_id)
    if ident is None:
        return None
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
    except ValueError:  # e.g. a bracketed host that is no IP address
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        return ident
    return f"{parts.scheme}://{parts.netloc}/?post_type=job_listing&p={ident}"


def _salary(job: dict[str, Any]) -> dict[str, str | None]:
    if job.get("salaryMin") is not None or job.get("salaryMax") is not None:
        low, high, period = job.get("salaryMin"), job.get("salaryMax"), scalar(job.get("salaryPeriod"))
    else:
        low, high = job.get("annualSalaryMin"), job.get("annualSalaryMax")
        period = "year" if low is not None or high is not None else None
    return {"salary_min": scalar(low), "salary_max": scalar(high), "salary_period": period}


def _extra(job: dict[str, Any]) -> dict[str, str]:
    extra = {name: scalar(job.get(key)) for key, name in _EXTRA.items()}
    extra |= {key: scalar(value) for key, value in job.items() if key not in _HANDLED}
    return {key: value for key, value in extra.items() if value is not None}


API = JsonApi(FeedFormat.JOBICY_JSON, ("jobicy.com",), _matches, _items, build)

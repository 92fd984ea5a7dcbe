"""Remote OK API (``remoteok.com/api``) → items.

A JSON array whose first element is a legal notice (``{"last_updated", "legal"}``), not a job: it
is skipped. Per job: ``id`` (guid), ``url``, ``apply_url``, ``position`` (title), ``company``,
``company_logo``/``logo``, ``tags``, ``location``, ``date`` (ISO) or ``epoch``, ``salary_min`` /
``salary_max`` (USD a year; 0 means not given), ``description``. Every job is remote.
"""

from __future__ import annotations

from typing import Any

from jobimporter.models import FeedFormat, RawItem
from jobimporter.parse.jsonapi import JsonApi, Page, iso_from_epoch, leftovers, number, scalar, strings

_HANDLED = {"id", "url", "apply_url", "position", "company", "company_logo", "logo", "tags", "location",
            "date", "epoch", "salary_min", "salary_max", "description", "slug", "legal"}  # fmt: skip


def _items(document: Any) -> list[Any] | None:
    if not isinstance(document, list):
        return None
    return [
        job for job in document if not (isinstance(job, dict) and "legal" in job and "position" not in job)
    ]


def _matches(document: Any) -> bool:
    if not isinstance(document, list):
        return False
    notice = any(isinstance(job, dict) and "legal" in job and "position" not in job for job in document[:1])
    jobs = [job for job in (_items(document) or []) if isinstance(job, dict)]
    return bool(
        jobs and {"position", "company"} <= set(jobs[0]) and ("epoch" in jobs[0] or "slug" in jobs[0])
    ) or (notice and not jobs)


def build(job: dict[str, Any], position: int, page: Page) -> RawItem:
    low, high = number(job.get("salary_min")), number(job.get("salary_max"))
    salary = low or high  # 0 and 0: no salary given
    location = scalar(job.get("location"))
    return RawItem(
        position=position,
        guid=scalar(job.get("id")),
        link=scalar(job.get("url")),
        apply_url=scalar(job.get("apply_url")),
        title=scalar(job.get("position")),
        company=scalar(job.get("company")),
        logo_url=scalar(job.get("company_logo")) or scalar(job.get("logo")),
        categories=strings(job.get("tags")),
        locations=(location,) if location else (),
        workplace="remote",
        published=scalar(job.get("date")) or iso_from_epoch(job.get("epoch")),
        content_html=scalar(job.get("description")),
        salary_min=scalar(job.get("salary_min")) if salary else None,
        salary_max=scalar(job.get("salary_max")) if salary else None,
        salary_currency="USD" if salary else None,
        salary_period="year" if salary else None,
        extra=leftovers(job, _HANDLED),
    )


API = JsonApi(FeedFormat.REMOTEOK, ("remoteok.com", "remoteok.io"), _matches, _items, build)

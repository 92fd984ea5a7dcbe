"""Remotive remote jobs API (``remotive.com/api/remote-jobs``) → items.

``{"00-warning", "0-legal-notice", "job-count", "total-job-count", "jobs": [...]}``, no paging. Per
job: ``id`` (guid), ``url``, ``title``, ``company_name``, ``company_logo``, ``category``, ``tags``,
``job_type`` (full_time, contract, part_time, freelance, internship, other), ``publication_date``
(UTC without a zone), ``candidate_required_location`` (where candidates may live), ``salary`` (free
text), ``description``. Every job is remote.
"""

from __future__ import annotations

from typing import Any

from jobimporter.models import FeedFormat, RawItem
from jobimporter.parse.jsonapi import JsonApi, Page, first_keys, first_list, leftovers, obj, scalar, strings
from jobimporter.parse.salary import salary_from_text

_HANDLED = {"id", "url", "title", "company_name", "company_logo", "company_logo_url", "category", "tags",
            "job_type", "publication_date", "candidate_required_location", "salary", "description"}  # fmt: skip


def _items(document: Any) -> list[Any] | None:
    return first_list(document, "jobs")


def _matches(document: Any) -> bool:
    keys = first_keys(_items(document))
    if keys:
        return (
            "candidate_required_location" in keys or {"publication_date", "company_name", "job_type"} <= keys
        )
    return isinstance(_items(document), list) and (
        "0-legal-notice" in obj(document) or "job-count" in obj(document)
    )


def build(job: dict[str, Any], position: int, page: Page) -> RawItem:
    salary = scalar(job.get("salary"))
    where = scalar(job.get("candidate_required_location"))
    return RawItem(
        position=position,
        guid=scalar(job.get("id")),
        link=scalar(job.get("url")),
        title=scalar(job.get("title")),
        company=scalar(job.get("company_name")),
        logo_url=scalar(job.get("company_logo")) or scalar(job.get("company_logo_url")),
        categories=strings(job.get("category")) + strings(job.get("tags")),
        job_types=strings(job.get("job_type")),
        published=scalar(job.get("publication_date")),
        locations=tuple(part.strip() for part in (where or "").split(",") if part.strip()),
        workplace="remote",
        content_html=scalar(job.get("description")),
        extra=leftovers(job, _HANDLED) | ({"salary_text": salary} if salary else {}),
        **(salary_from_text(salary) if salary else {}),
    )


API = JsonApi(FeedFormat.REMOTIVE, ("remotive.com", "remotive.io"), _matches, _items, build)

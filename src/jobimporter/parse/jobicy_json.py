"""jobicy API v2 JSON (``{"jobs": [...]}``) → :class:`RawItem`.

This module owns the mapping of jobicy job objects. The document is small (the API returns at
most a few hundred jobs), so it is read whole with :func:`json.loads`.

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

import json
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from jobimporter.errors import FeedParseError
from jobimporter.models import RawItem

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


def parse(stream: BinaryIO) -> Iterator[RawItem]:
    """Yield one item per element of ``jobs``.

    :raises FeedParseError: the body is not JSON, or has no ``jobs`` array.
    """
    jobs = _load_jobs(stream.read())
    for position, job in enumerate(jobs, start=1):
        yield build_item(job, position) if isinstance(job, dict) else RawItem(position=position)


def _load_jobs(body: bytes) -> list[Any]:
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise FeedParseError(
            f"parse: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except (UnicodeDecodeError, RecursionError) as exc:
        raise FeedParseError(f"parse: unreadable JSON: {exc}") from exc
    jobs = document.get("jobs") if isinstance(document, dict) else None
    if not isinstance(jobs, list):
        raise FeedParseError('parse: the JSON document has no "jobs" array')
    return jobs


def build_item(job: dict[str, Any], position: int) -> RawItem:
    values: dict[str, Any] = {name: _scalar(job.get(key)) for key, name in _SIMPLE.items()}
    values |= {name: _strings(job.get(key)) for key, name in _LISTS.items()}
    values |= _salary(job)
    values["guid"] = site_guid(job.get("url"), job.get("id"))
    values["locations"] = tuple(
        part.strip() for part in (_scalar(job.get("jobGeo")) or "").split(",") if part.strip()
    )
    return RawItem(position=position, extra=_extra(job), **values)


def site_guid(url: object, job_id: object) -> str | None:
    """The WordPress guid of the job's post, or the bare id when the url is unusable."""
    ident = _scalar(job_id)
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
        low, high, period = job.get("salaryMin"), job.get("salaryMax"), _scalar(job.get("salaryPeriod"))
    else:
        low, high = job.get("annualSalaryMin"), job.get("annualSalaryMax")
        period = "year" if low is not None or high is not None else None
    return {"salary_min": _scalar(low), "salary_max": _scalar(high), "salary_period": period}


def _extra(job: dict[str, Any]) -> dict[str, str]:
    extra = {name: _scalar(job.get(key)) for key, name in _EXTRA.items()}
    extra |= {key: _scalar(value) for key, value in job.items() if key not in _HANDLED}
    return {key: value for key, value in extra.items() if value is not None}


def _scalar(value: object) -> str | None:
    """A JSON scalar as text; ``None`` for null, blanks, booleans and containers."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


def _strings(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(text for text in map(_scalar, items) if text is not None)

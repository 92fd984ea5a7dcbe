"""Working Nomads API (``workingnomads.com/api/exposed_jobs/``) → items.

A JSON array of jobs, no paging: ``url`` (also the identity: the API gives no id), ``title``,
``company_name``, ``category_name``, ``tags`` (one comma-separated string), ``location``,
``pub_date`` (ISO 8601), ``description``. Every job is remote.
"""

from __future__ import annotations

from typing import Any

from jobimporter.models import FeedFormat, RawItem
from jobimporter.parse.jsonapi import JsonApi, Page, first_keys, leftovers, scalar, strings

_HANDLED = {"url", "title", "company_name", "category_name", "tags", "location", "pub_date", "description"}


def _items(document: Any) -> list[Any] | None:
    return document if isinstance(document, list) else None


def _matches(document: Any) -> bool:
    keys = first_keys(_items(document))
    return {"category_name", "pub_date", "company_name"} <= keys


def build(job: dict[str, Any], position: int, page: Page) -> RawItem:
    tags = job.get("tags")
    tag_list = [t.strip() for t in tags.split(",")] if isinstance(tags, str) else list(strings(tags))
    location = scalar(job.get("location"))
    return RawItem(
        position=position,
        guid=scalar(job.get("id")),
        link=scalar(job.get("url")),
        title=scalar(job.get("title")),
        company=scalar(job.get("company_name")),
        categories=strings(job.get("category_name")) + tuple(t for t in tag_list if t),
        locations=tuple(part.strip() for part in (location or "").split(",") if part.strip()),
        workplace="remote",
        published=scalar(job.get("pub_date")),
        content_html=scalar(job.get("description")),
        extra=leftovers(job, _HANDLED | {"id"}),
    )


API = JsonApi(FeedFormat.WORKING_NOMADS, ("workingnomads.com", "workingnomads.co"), _matches, _items, build)

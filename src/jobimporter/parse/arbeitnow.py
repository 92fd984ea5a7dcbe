"""Arbeitnow job board API (``arbeitnow.com/api/job-board-api``) → items.

``{"data": [...], "links": {"next": <url>}, "meta": {...}}``, followed page by page through
``links.next``. Per job: ``slug`` (guid), ``url``, ``title``, ``company_name``, ``location``,
``remote`` (bool), ``tags``, ``job_types``, ``created_at`` (seconds since 1970), ``description``.
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
    iso_from_epoch,
    leftovers,
    obj,
    scalar,
    strings,
)

_HANDLED = {"slug", "url", "title", "company_name", "location", "remote", "tags", "job_types", "created_at",
            "description"}  # fmt: skip


def _items(document: Any) -> list[Any] | None:
    return first_list(document, "data")


def _matches(document: Any) -> bool:
    keys = first_keys(_items(document))
    if keys:
        return {"slug", "company_name", "created_at"} <= keys and ("job_types" in keys or "remote" in keys)
    return isinstance(_items(document), list) and "links" in obj(document) and "meta" in obj(document)


def build(job: dict[str, Any], position: int, page: Page) -> RawItem:
    location = scalar(job.get("location"))
    return RawItem(
        position=position,
        guid=scalar(job.get("slug")),
        link=scalar(job.get("url")),
        title=scalar(job.get("title")),
        company=scalar(job.get("company_name")),
        locations=(location,) if location else (),
        workplace=flag(job.get("remote"), false=None),
        categories=strings(job.get("tags")),
        job_types=strings(job.get("job_types")),
        published=iso_from_epoch(job.get("created_at")),
        content_html=scalar(job.get("description")),
        extra=leftovers(job, _HANDLED),
    )


def _next_page(document: Any, url: str, count: int) -> str | None:
    return scalar(dig(document, "links", "next"))


API = JsonApi(FeedFormat.ARBEITNOW, ("arbeitnow.com",), _matches, _items, build, _next_page)

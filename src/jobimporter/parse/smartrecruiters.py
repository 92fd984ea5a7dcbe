"""SmartRecruiters posting API (``api.smartrecruiters.com/v1/companies/<company>/postings``) → items.

``{"offset", "limit", "totalFound", "content": [...]}``, paged by ``offset``/``limit`` until
``totalFound``. Per posting: ``id`` (guid; ``refNumber`` kept), ``name`` (title), ``company.name``,
``location`` (``city``/``region``/``country``, ``remote``, ``hybrid``, ``fullLocation``),
``typeOfEmployment.label``, ``department``/``function``/``industry`` labels, ``releasedDate``. The list
carries no description; the job page is ``jobs.smartrecruiters.com/<company identifier>/<id>``.
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
    joined,
    leftovers,
    number,
    obj,
    scalar,
    strings,
    with_query,
)

_HANDLED = {"id", "name", "company", "location", "typeOfEmployment", "department", "function", "industry",
            "releasedDate", "ref", "postingUrl", "applyUrl"}  # fmt: skip


def _items(document: Any) -> list[Any] | None:
    return first_list(document, "content")


def _matches(document: Any) -> bool:
    keys = first_keys(_items(document))
    if keys:
        return {"name", "releasedDate"} <= keys and ("typeOfEmployment" in keys or "company" in keys)
    return isinstance(_items(document), list) and "totalFound" in obj(document)


def build(job: dict[str, Any], position: int, page: Page) -> RawItem:
    location = obj(job.get("location"))
    return RawItem(
        position=position,
        guid=scalar(job.get("id")),
        link=scalar(job.get("postingUrl")) or _job_page(job),
        apply_url=scalar(job.get("applyUrl")),
        title=scalar(job.get("name")),
        company=scalar(dig(job, "company", "name")),
        locations=_location(location),
        workplace=_workplace(location),
        job_types=strings(dig(job, "typeOfEmployment", "label")),
        categories=tuple(
            label
            for key in ("department", "function", "industry")
            for label in strings(dig(job, key, "label"))
        ),
        published=scalar(job.get("releasedDate")),
        extra=leftovers(job, _HANDLED),
    )


def _job_page(job: dict[str, Any]) -> str | None:
    company, ident = scalar(dig(job, "company", "identifier")), scalar(job.get("id"))
    return f"https://jobs.smartrecruiters.com/{company}/{ident}" if company and ident else None


def _location(location: dict[str, Any]) -> tuple[str, ...]:
    text = scalar(location.get("fullLocation")) or joined(
        location.get("city"), location.get("region"), location.get("country")
    )
    return (text,) if text else ()


def _workplace(location: dict[str, Any]) -> str | None:
    if location.get("hybrid") is True:
        return "hybrid"
    if location.get("remote") is True:
        return "remote"
    return "onsite" if location.get("remote") is False else None


def _next_page(document: Any, url: str, count: int) -> str | None:
    page = obj(document)
    offset, limit, total = (
        number(page.get("offset")),
        number(page.get("limit")),
        number(page.get("totalFound")),
    )
    if offset is None or total is None or count == 0:
        return None
    step = int(limit or count)
    following = int(offset) + step
    return with_query(url, offset=following, limit=step) if following < total else None


API = JsonApi(FeedFormat.SMARTRECRUITERS, ("smartrecruiters.com",), _matches, _items, build, _next_page)

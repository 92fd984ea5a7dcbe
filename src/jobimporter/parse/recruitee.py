"""Recruitee careers API (``<company>.recruitee.com/api/offers/``) → items.

``{"offers": [...]}``, every offer at once. Per offer: ``id`` (guid), ``title``, ``careers_url``,
``careers_apply_url``, ``company_name``, ``location`` / ``locations`` (``city``, ``state``,
``country``), ``remote`` / ``hybrid`` / ``on_site``, ``employment_type_code`` (fulltime, parttime,
…), ``department``, ``tags``, ``published_at`` / ``created_at`` (``"2024-01-01 10:00:00 UTC"``),
``description`` + ``requirements`` (HTML), ``salary`` (``min``/``max``/``currency``/``period``).
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
    obj,
    objects,
    scalar,
    strings,
)

_HANDLED = {"id", "title", "careers_url", "careers_apply_url", "company_name", "location", "locations",
            "city", "state_name", "country", "remote", "hybrid", "on_site", "employment_type_code",
            "department", "tags", "published_at", "created_at", "updated_at", "description",
            "requirements", "salary"}  # fmt: skip


def _items(document: Any) -> list[Any] | None:
    return first_list(document, "offers")


def _matches(document: Any) -> bool:
    keys = first_keys(_items(document))
    if keys:
        return "careers_url" in keys or {"slug", "employment_type_code"} <= keys
    return isinstance(_items(document), list) and set(obj(document)) <= {"offers", "meta"}


def build(job: dict[str, Any], position: int, page: Page) -> RawItem:
    return RawItem(
        position=position,
        guid=scalar(job.get("id")),
        link=scalar(job.get("careers_url")),
        apply_url=scalar(job.get("careers_apply_url")),
        title=scalar(job.get("title")),
        company=scalar(job.get("company_name")),
        locations=_locations(job),
        workplace=_workplace(job),
        job_types=strings(job.get("employment_type_code")),
        categories=strings(job.get("department")) + strings(job.get("tags")),
        published=scalar(job.get("published_at")) or scalar(job.get("created_at")),
        updated=scalar(job.get("updated_at")),
        content_html="".join(filter(None, (scalar(job.get("description")), scalar(job.get("requirements")))))
        or None,
        salary_min=scalar(dig(job, "salary", "min")),
        salary_max=scalar(dig(job, "salary", "max")),
        salary_currency=scalar(dig(job, "salary", "currency")),
        salary_period=scalar(dig(job, "salary", "period")),
        extra=leftovers(job, _HANDLED),
    )


def _locations(job: dict[str, Any]) -> tuple[str, ...]:
    listed = [joined(p.get("city"), p.get("state"), p.get("country")) for p in objects(job.get("locations"))]
    found = tuple(text for text in listed if text)
    if found:
        return found
    single = scalar(job.get("location")) or joined(job.get("city"), job.get("state_name"), job.get("country"))
    return (single,) if single else ()


def _workplace(job: dict[str, Any]) -> str | None:
    for key, word in (("hybrid", "hybrid"), ("remote", "remote"), ("on_site", "onsite")):
        if obj(job).get(key) is True:
            return word
    return None


API = JsonApi(FeedFormat.RECRUITEE, ("recruitee.com",), _matches, _items, build)

"""Adzuna search API (``api.adzuna.com/v1/api/jobs/<country>/search/<page>?...``) → items.

``{"__CLASS__", "count", "mean", "results": [...]}``, paged by the page number in the path until
``count`` results. Per job: ``id`` (guid), ``redirect_url``, ``title``, ``company.display_name``,
``location.display_name``, ``category.label``, ``contract_time`` (full_time, part_time) and
``contract_type`` (permanent, contract), ``created``, ``description`` (a snippet), ``salary_min`` /
``salary_max`` (a year, in the country's currency, from the URL; ``salary_is_predicted`` "1" marks
Adzuna's estimate, kept in ``extra``).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jobimporter.models import FeedFormat, RawItem
from jobimporter.parse.jsonapi import (
    JsonApi,
    Page,
    dig,
    first_keys,
    first_list,
    leftovers,
    number,
    obj,
    query_int,
    scalar,
)

_HANDLED = {"id", "redirect_url", "title", "company", "location", "category", "contract_time",
            "contract_type", "created", "description", "salary_min", "salary_max", "__CLASS__", "adref"}  # fmt: skip
_CURRENCIES = {"gb": "GBP", "us": "USD", "au": "AUD", "ca": "CAD", "nz": "NZD", "in": "INR", "br": "BRL",
               "pl": "PLN", "sg": "SGD", "za": "ZAR", "mx": "MXN", "ch": "CHF"}  # fmt: skip
_EURO = {"at", "be", "de", "es", "fr", "it", "nl"}
_PAGE = re.compile(r"(/jobs/([a-z]{2})/search/)(\d+)")


def _items(document: Any) -> list[Any] | None:
    return first_list(document, "results")


def _matches(document: Any) -> bool:
    keys = first_keys(_items(document))
    if keys:
        return "redirect_url" in keys and ("adref" in keys or "__CLASS__" in keys)
    return isinstance(_items(document), list) and "Adzuna" in str(obj(document).get("__CLASS__", ""))


def build(job: dict[str, Any], position: int, page: Page) -> RawItem:
    low, high = scalar(job.get("salary_min")), scalar(job.get("salary_max"))
    location = scalar(dig(job, "location", "display_name"))
    extra = leftovers(job, _HANDLED)
    return RawItem(
        position=position,
        guid=scalar(job.get("id")),
        link=scalar(job.get("redirect_url")),
        title=scalar(job.get("title")),
        company=scalar(dig(job, "company", "display_name")),
        locations=(location,) if location else (),
        categories=tuple(filter(None, [scalar(dig(job, "category", "label"))])),
        job_types=tuple(filter(None, [scalar(job.get("contract_time")), scalar(job.get("contract_type"))])),
        published=scalar(job.get("created")),
        summary=scalar(job.get("description")),
        salary_min=low,
        salary_max=high,
        salary_currency=_currency(page.url) if low or high else None,
        salary_period="year" if low or high else None,
        extra=extra,
    )


def _currency(url: str) -> str | None:
    match = _PAGE.search(urlsplit(url).path)
    country = match.group(2) if match else ""
    return "EUR" if country in _EURO else _CURRENCIES.get(country)


def _next_page(document: Any, url: str, count: int) -> str | None:
    parts = urlsplit(url)
    match = _PAGE.search(parts.path)
    total = number(obj(document).get("count"))
    if match is None or total is None or count == 0:
        return None
    page, per_page = int(match.group(3)), query_int(url, "results_per_page", count)
    if count < per_page or page * per_page >= total:
        return None
    path = parts.path[: match.start(3)] + str(page + 1) + parts.path[match.end(3) :]
    return urlunsplit(parts._replace(path=path))


API = JsonApi(FeedFormat.ADZUNA, ("adzuna.com", "adzuna.co.uk"), _matches, _items, build, _next_page)

"""schema.org ``JobPosting`` in JSON-LD → items: in an HTML page (every ``<script
type="application/ld+json">``, ``@graph`` too, as Google for Jobs reads them) or as a JSON document
(one posting, an array, an ``@graph``, an ``ItemList``).

Per posting: ``identifier`` (a PropertyValue's ``value``, or a text: the guid), ``url`` (else, on a
page with one posting, the page's URL), ``title`` (or ``name``), ``hiringOrganization`` (name, logo),
``jobLocation`` (Place → PostalAddress: locality, region, country), ``applicantLocationRequirements``
(where candidates may live), ``jobLocationType`` (TELECOMMUTE: remote), ``employmentType`` (one or a
list: FULL_TIME, CONTRACTOR…), ``baseSalary`` (MonetaryAmount: currency, QuantitativeValue
min/max/value, unitText HOUR…YEAR), ``datePosted``, ``validThrough``, ``description`` (HTML; a
description escaped once more is unescaped), ``industry``/``occupationalCategory``, ``directApply``
and an ``ApplyAction``'s target (the apply URL).
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Iterator
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from jobimporter.models import FeedFormat, RawItem
from jobimporter.parse.jsonapi import JsonApi, Page, joined, names, obj, objects, scalar, strings

_UNITS = {"HOUR": "hour", "DAY": "day", "WEEK": "week", "MONTH": "month", "YEAR": "year"}
_WRAPPERS = re.compile(
    r"^\s*(?:<!--|//\s*<!\[CDATA\[|/\*\s*<!\[CDATA\[\s*\*/)|(?:-->|//\s*\]\]>|/\*\s*\]\]>\s*\*/)\s*$"
)
_MAX_DEPTH = 12


def postings(value: object, depth: int = 0) -> list[dict[str, Any]]:
    """Every JobPosting object in ``value``, in document order (not looking inside a posting)."""
    if depth > _MAX_DEPTH:
        return []
    if isinstance(value, list):
        return [found for item in value for found in postings(item, depth + 1)]
    if not isinstance(value, dict):
        return []
    if _is_posting(value):
        return [value]
    return [found for item in value.values() for found in postings(item, depth + 1)]


def _is_posting(value: dict[str, Any]) -> bool:
    kinds = value.get("@type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return any(isinstance(k, str) and k.rsplit("/", 1)[-1].rsplit(":", 1)[-1] == "JobPosting" for k in kinds)


def _items(document: Any) -> list[Any] | None:
    return postings(document) or None


def _matches(document: Any) -> bool:
    return bool(postings(document))


def blocks_in_page(body: bytes) -> list[Any]:
    """The parsed JSON-LD blocks of an HTML page; a block that is not JSON is skipped."""
    parser = etree.HTMLParser(no_network=True, remove_comments=False, recover=True)
    try:
        root = etree.fromstring(body, parser)
    except (etree.LxmlError, ValueError):
        return []
    if root is None:
        return []
    found: list[Any] = []
    for script in root.iter("script"):
        if "ld+json" not in (script.get("type") or "").lower():
            continue
        text = _WRAPPERS.sub("", script.text or "")
        try:
            found.append(json.loads(text))
        except (json.JSONDecodeError, RecursionError):
            continue
    return found


def parse_page(body: bytes, url: str | None) -> Iterator[RawItem] | None:
    """The postings of an HTML page, or ``None`` when it has none (then it is just a page)."""
    found = postings(blocks_in_page(body))
    if not found:
        return None
    page = Page(url or "", None)
    items = [build(posting, position, page) for position, posting in enumerate(found, start=1)]
    if len(items) == 1 and items[0].link is None and url:
        items[0] = dataclasses.replace(items[0], link=url)  # the page is the posting
    return iter(items)


def build(posting: dict[str, Any], position: int, page: Page) -> RawItem:
    organization = posting.get("hiringOrganization")
    return RawItem(
        position=position,
        guid=_identifier(posting.get("identifier")),
        link=scalar(posting.get("url")),
        apply_url=_apply_target(posting.get("potentialAction")),
        title=scalar(posting.get("title")) or scalar(posting.get("name")),
        company=scalar(obj(organization).get("name")) or scalar(organization),
        logo_url=_image(obj(organization).get("logo")) or _image(posting.get("image")),
        locations=_locations(posting),
        workplace=_workplace(posting.get("jobLocationType")),
        job_types=tuple(
            part.strip() for t in strings(posting.get("employmentType")) for part in t.split(",")
        ),
        categories=strings(posting.get("industry")) + strings(posting.get("occupationalCategory")),
        published=scalar(posting.get("datePosted")),
        expires=scalar(posting.get("validThrough")),
        content_html=_description(posting.get("description")),
        extra=_extra(posting),
        **_salary(posting.get("baseSalary") or posting.get("estimatedSalary")),
    )


def _identifier(value: object) -> str | None:
    if isinstance(value, list):
        value = next(iter(value), None)
    if isinstance(value, dict):
        return scalar(value.get("value")) or scalar(value.get("@id"))
    return scalar(value)


def _apply_target(action: object) -> str | None:
    for act in objects(action):
        target = act.get("target")
        url = scalar(target) or scalar(obj(target).get("urlTemplate")) or scalar(obj(target).get("url"))
        if url:
            return url
    return None


def _image(value: object) -> str | None:
    return scalar(value) or scalar(obj(value).get("url")) or scalar(obj(value).get("contentUrl"))


def _locations(posting: dict[str, Any]) -> tuple[str, ...]:
    found = [place for loc in _listed(posting.get("jobLocation")) if (place := _place(loc))]
    found += [
        place for area in _listed(posting.get("applicantLocationRequirements")) if (place := _area(area))
    ]
    return tuple(found)


def _place(location: object) -> str | None:
    if not isinstance(location, dict):
        return scalar(location)
    address = location.get("address")
    if isinstance(address, dict):
        country = address.get("addressCountry")
        place = joined(
            address.get("addressLocality"), address.get("addressRegion"), _area(country) if country else None
        )
        if place:
            return place
    return scalar(address) or scalar(location.get("name"))


def _area(area: object) -> str | None:
    return scalar(obj(area).get("name")) or scalar(area)


def _listed(value: object) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _workplace(value: object) -> str | None:
    kinds = [k.strip().upper() for k in strings(value)]
    return "TELECOMMUTE" if "TELECOMMUTE" in kinds else (kinds[0] if kinds else None)


def _description(value: object) -> str | None:
    text = scalar(value)
    if text is not None and "<" not in text and "&lt;" in text:
        return html.unescape(text)  # escaped once more than HTML
    return text


def _salary(value: object) -> dict[str, str | None]:
    amount = next(iter(objects(value)), None)
    if amount is None:
        return {}
    quantity = amount.get("value")
    if not isinstance(quantity, dict):
        return {"salary_min": scalar(quantity), "salary_max": scalar(quantity),
                "salary_currency": scalar(amount.get("currency"))}  # fmt: skip
    exact = scalar(quantity.get("value"))
    unit = (scalar(quantity.get("unitText")) or scalar(amount.get("unitText")) or "").upper()
    return {
        "salary_min": scalar(quantity.get("minValue")) or exact,
        "salary_max": scalar(quantity.get("maxValue")) or exact,
        "salary_currency": scalar(amount.get("currency")) or scalar(quantity.get("currency")),
        "salary_period": _UNITS.get(unit),
    }


def _extra(posting: dict[str, Any]) -> dict[str, str]:
    extra = {
        "direct_apply": "true" if posting.get("directApply") is True else None,
        "months_of_experience": scalar(obj(posting.get("experienceRequirements")).get("monthsOfExperience")),
        "education": ", ".join(names(posting.get("educationRequirements"), "credentialCategory")) or None,
        "benefits": scalar(posting.get("jobBenefits")),
        "identifier_name": scalar(obj(posting.get("identifier")).get("name")),
    }
    return {key: value for key, value in extra.items() if value is not None}


API = JsonApi(FeedFormat.JSONLD, (), _matches, _items, build)

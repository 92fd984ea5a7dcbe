"""Job XML feeds → items: the Indeed-style ``<source><job>…</job></source>`` exchange format and its
many near variants (Talent.com/Neuvoo with ``<cpc>``, Jooble's ``<job id="…">`` with ``<name>``,
Careerjet's nested ``<location>``, Jobvite's ``<result>``, PascalCase ATS exports such as
``<Jobs><Job><JobTitle>``), streamed like RSS.

The item element is found by :mod:`.detect` (the first ``job``-like element of the document,
:data:`ITEM_NAMES`); each child is matched by its name with case, ``-``, ``_`` and ``.`` ignored
(``JobTitle``, ``job_title`` and ``job-title`` are one name), against ordered alias lists: the first
alias present wins (``referencenumber`` before ``id`` for the guid, ``url`` before ``link``…).

- the guid: a reference number or id element, else the item's ``id`` attribute;
- locations: ``<location>`` (text, or ``city``/``region``/``country`` children), else the item's own
  ``city``/``state``/``region``/``country`` joined ("Maitland, FL, US"; a part repeated next to
  itself once: "Porto, PT");
- salary: structured elements (``<salary><salary_min>…``, ``<salarymin>``…) or the text of
  ``<salary>`` ("Up to $75,000/year", kept in ``extra["salary_text"]``); a ``<currency>`` beside no
  amount is a click price's (Neuvoo's ``<cpc>``), not a salary's;
- any other element with text goes to ``extra`` under its own name (``cpc``, ``indeed-apply-data``).

Text is XML-decoded only (CDATA padding, entity-encoded HTML and all): normalize cleans it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from jobimporter.models import RawItem
from jobimporter.parse.salary import salary_from_text
from jobimporter.parse.xml import Element, attr, is_simple, iter_items, local_name, markup_of, text_of

ITEM_NAMES = frozenset(
    {"job", "vacancy", "jobposting", "posting", "position", "advert", "joblisting", "listing", "offer",
     "opening", "opportunity"}
)  # fmt: skip

_SCALARS: dict[str, tuple[str, ...]] = {
    "guid": ("referencenumber", "jobreference", "reference", "refnumber", "referenceid", "jobid", "id",
             "requisitionid", "reqid", "jobcode", "vacancyid", "postingid", "jobnumber"),
    "link": ("url", "joburl", "link", "detailurl", "jobdetailurl", "jobdetailsurl", "joblink", "positionurl",
             "jobpageurl", "permalink"),
    "apply_url": ("applyurl", "applicationurl", "applylink", "applyto"),
    "title": ("title", "jobtitle", "positiontitle", "positionname", "jobname", "vacancytitle", "name"),
    "company": ("company", "companyname", "employer", "employername", "hiringorganization", "organization",
                "organisation", "advertiser"),
    "content_html": ("description", "jobdescription", "fulldescription", "descriptionhtml", "body", "content",
                     "details"),
    "summary": ("briefdescription", "shortdescription", "summary", "teaser", "excerpt", "snippet"),
    "published": ("date", "dateposted", "pubdate", "posted", "postdate", "posteddate", "postingdate",
                  "datecreated", "created", "createdat", "publishdate", "publisheddate", "publishedat",
                  "datepublished"),
    "updated": ("updated", "dateupdated", "lastupdated", "modified", "datemodified", "lastmodified", "updatedat"),
    "expires": ("expirationdate", "expire", "expires", "expiry", "expirydate", "expiresat", "validthrough",
                "closingdate", "closedate", "enddate", "deadline", "applicationdeadline"),
    "workplace": ("remotetype", "isremote", "remote", "telecommute", "workplacetype", "worklocationtype",
                  "remotework", "locationtype", "workplace"),
    "logo_url": ("logo", "companylogo", "logourl", "companylogourl"),
    "salary_min": ("salarymin", "minsalary", "salaryfrom", "minimumsalary", "min", "minimum", "from"),
    "salary_max": ("salarymax", "maxsalary", "salaryto", "maximumsalary", "max", "maximum", "to"),
    "salary_currency": ("salarycurrency", "currency", "currencycode"),
    "salary_period": ("salaryperiod", "period", "salaryunit", "salaryinterval", "payperiod", "unit", "interval"),
}  # fmt: skip
_LISTS: dict[str, tuple[str, ...]] = {
    "job_types": ("jobtype", "type", "employmenttype", "contracttype", "workinghours", "schedule",
                  "positiontype", "jobschedule", "worktype", "contracttime"),
    "categories": ("category", "categories", "jobcategory", "industry", "department", "occupation", "function",
                   "sector", "classification", "jobfunction"),
}  # fmt: skip
_LOCATIONS = ("location", "joblocation", "locations", "fulllocation")
_PLACE = ("city", "state", "region", "province", "county", "country", "countrycode")
_SALARY_TEXT = ("salary", "salaryrange", "pay", "payrate", "compensation", "wage")
_BY_KEY = {alias: target for target, aliases in (_SCALARS | _LISTS).items() for alias in aliases}
_RANK = {alias: rank for aliases in (_SCALARS | _LISTS).values() for rank, alias in enumerate(aliases)}
_BARE_SALARY = frozenset({"min", "max", "from", "to", "unit"})  # a <salary> block's, not the job's
_SEPARATORS = re.compile(r"[-_.]")
_SCHEMA_REPR = re.compile(r"^\s*\{'@type': '[^']*', 'value': '(.*)'\}\s*$", re.DOTALL)


def parse(stream: BinaryIO, item_name: str) -> Iterator[RawItem]:
    """Yield every ``item_name`` element (by local name) of a job XML document as it is read."""
    return iter_items(stream, lambda element: local_name(element) == item_name, build_item)


def key_of(element: Element) -> str:
    """``JobTitle``, ``job_title``, ``job-title`` → ``jobtitle``."""
    return _key_of_name(local_name(element))


@functools.lru_cache(maxsize=1024)
def _key_of_name(name: str) -> str:
    return _SEPARATORS.sub("", name.lower())  # once per name: a feed has a few dozen


def build_item(element: Element, position: int) -> RawItem:
    children = [child for child in element.iterchildren("{*}*")]
    by_key: dict[str, list[Element]] = {}
    for child in children:
        by_key.setdefault(key_of(child), []).append(child)
    values = _scalars(by_key) | _lists(by_key)
    values.setdefault("guid", attr(element, "id") or attr(element, "reference"))
    values["locations"] = _locations(by_key)
    currency = values.get("salary_currency")
    values |= _salary(by_key, values)
    extra = _extra(children, values)
    if isinstance(currency, str) and "salary_currency" not in values:
        extra.setdefault("currency", currency)  # kept, but as what it is: not a salary's
    return RawItem(position=position, extra=extra, **{k: v for k, v in values.items() if k != "salary_text"})


def _scalars(by_key: dict[str, list[Element]]) -> dict[str, Any]:
    """Each field from the first of its aliases present with a value (an item has a dozen elements:
    they are looked up by name, not the hundred aliases tried one by one)."""
    present: dict[str, list[str]] = {}
    for key in by_key:
        target = _BY_KEY.get(key)
        if target in _SCALARS and not (target.startswith("salary_") and key in _BARE_SALARY):
            present.setdefault(target, []).append(key)
    found: dict[str, Any] = {}
    for target, keys in present.items():
        for alias in sorted(keys, key=_RANK.__getitem__):
            value = _value(target, by_key[alias][0])
            if value is not None:
                found[target] = value
                break
    return found


def _lists(by_key: dict[str, list[Element]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for target, aliases in _LISTS.items():
        texts = [
            _schema_value(text)
            for alias in aliases
            for element in by_key.get(alias, ())
            if (text := text_of(element)) is not None
        ]
        found[target] = tuple(texts)
    return found


def _value(target: str, element: Element) -> str | None:
    if target in ("content_html", "summary"):
        return markup_of(element)
    if target == "company" and not is_simple(element):
        name = next((c for c in element.iterchildren("{*}*") if key_of(c) in ("name", "companyname")), None)
        return text_of(name) if name is not None else None
    return text_of(element) if is_simple(element) else None


def _locations(by_key: dict[str, list[Element]]) -> tuple[str, ...]:
    found = [place for key in _LOCATIONS for element in by_key.get(key, ()) for place in _places(element)]
    if found:
        return tuple(found)
    place = _joined(by_key)
    return (place,) if place else ()


def _places(element: Element) -> list[str]:
    if is_simple(element):
        text = text_of(element)
        return [text.strip()] if text else []
    nested: dict[str, list[Element]] = {}
    for child in element.iterchildren("{*}*"):
        nested.setdefault(key_of(child), []).append(child)
    if any(key in _LOCATIONS for key in nested):  # <locations><location>…</location>…</locations>
        return [place for key in _LOCATIONS for child in nested.get(key, ()) for place in _places(child)]
    place = _joined(nested)
    return [place] if place else []


def _joined(by_key: dict[str, list[Element]]) -> str | None:
    parts: list[str] = []
    for key in _PLACE:
        if key == "countrycode" and "country" in by_key:
            continue
        for element in by_key.get(key, ())[:1]:
            text = text_of(element)
            if text and (not parts or parts[-1].casefold() != text.strip().casefold()):
                parts.append(text.strip())
    return ", ".join(parts) or None


def _salary(by_key: dict[str, list[Element]], values: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key in _SALARY_TEXT:
        for element in by_key.get(key, ()):
            if is_simple(element):
                text = text_of(element)
                if text and "salary_text" not in found:
                    found["salary_text"] = text.strip()
            else:
                found |= _scalars(_children_by_key(element, nested=True))
    if "salary_min" not in values and "salary_max" not in values and "salary_min" not in found:
        text = found.get("salary_text")
        found |= salary_from_text(text) if isinstance(text, str) else {}
    amounts = {"salary_min", "salary_max"} & (set(found) | set(values))
    if not amounts:  # a currency alone is a click price's (<cpc>), not a salary's
        values.pop("salary_currency", None)
        found.pop("salary_currency", None)
    return found


def _children_by_key(element: Element, *, nested: bool) -> dict[str, list[Element]]:
    by_key: dict[str, list[Element]] = {}
    for child in element.iterchildren("{*}*"):
        key = key_of(child)
        if nested and key in ("min", "max", "from", "to", "minimum", "maximum"):
            key = "salarymin" if key in ("min", "from", "minimum") else "salarymax"
        elif nested and key in ("unit", "interval"):
            key = "salaryperiod"
        by_key.setdefault(key, []).append(child)
    return by_key


def _extra(children: list[Element], values: dict[str, Any]) -> dict[str, str]:
    extra: dict[str, str] = {}
    if isinstance(values.get("salary_text"), str):
        extra["salary_text"] = str(values["salary_text"])
    for child in children:
        key = key_of(child)
        if (
            key in _BY_KEY
            or key in _LOCATIONS
            or key in _PLACE
            or key in _SALARY_TEXT
            or not is_simple(child)
        ):
            continue
        text = text_of(child)
        if text is not None:
            extra.setdefault(local_name(child), text.strip())
    return extra


def _schema_value(text: str) -> str:
    """A schema.org value some generators print as a Python dict: ``{'@type': 'Text', 'value': 'X'}`` → X."""
    match = _SCHEMA_REPR.match(text)
    return match.group(1) if match else text

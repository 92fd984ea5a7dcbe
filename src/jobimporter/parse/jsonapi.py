"""What every JSON job API module provides (:class:`JsonApi`), and the value helpers they share.

A JSON API module (``greenhouse``, ``lever``, ``remotive``…) declares one :class:`JsonApi`:

- ``matches(document)``: the document looks like this API's answer (its envelope, or the keys of
  its first job). Content first; ``hosts`` only settles a document several APIs would match (an
  empty ``{"jobs": []}``);
- ``items(document)``: the list of job objects, or ``None`` when the document is not of that shape;
- ``build(job, position, page)``: one job object → :class:`RawItem`, values as the API sent them;
- ``next_page(document, url, count)``: the URL of the next page, or ``None`` at the end (only paged
  APIs; :mod:`.jsondoc` follows it, within the feed's page cap).

The helpers never raise on unexpected types: a field of the wrong type is simply absent, so one odd
job fails alone (normalize names what it lacks) and never its feed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jobimporter.errors import FeedParseError
from jobimporter.models import FeedFormat, RawItem


@dataclass(frozen=True, slots=True)
class Page:
    """The page a job came from: its URL (to resolve and to derive from) and the whole document."""

    url: str
    document: Any


def _no_next_page(document: Any, url: str, count: int) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class JsonApi:
    """One JSON job API (module docstring)."""

    format: FeedFormat
    hosts: tuple[str, ...]
    matches: Callable[[Any], bool]
    items: Callable[[Any], list[Any] | None]
    build: Callable[[dict[str, Any], int, Page], RawItem]
    next_page: Callable[[Any, str, int], str | None] = _no_next_page

    def serves(self, host: str) -> bool:
        return any(host == h or host.endswith("." + h) for h in self.hosts)


def load_json(body: bytes) -> Any:
    """The document; a UTF-8 BOM is fine, UTF-16/32 are recognised.

    :raises FeedParseError: not JSON, or not decodable.
    """
    try:
        try:
            return json.loads(body.decode("utf-8-sig"))
        except UnicodeDecodeError:
            return json.loads(body)  # json detects UTF-16/32 by their byte patterns
    except json.JSONDecodeError as exc:
        raise FeedParseError(
            f"parse: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except (UnicodeDecodeError, RecursionError) as exc:
        raise FeedParseError(f"parse: unreadable JSON: {exc}") from exc


# ---------------------------------------------------------------- reading values


def scalar(value: object) -> str | None:
    """A JSON scalar as text; ``None`` for null, blanks, booleans and containers."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


def strings(value: object) -> tuple[str, ...]:
    """A scalar or a list of scalars as a tuple of texts (other elements dropped)."""
    items = value if isinstance(value, list) else [value]
    return tuple(text for text in map(scalar, items) if text is not None)


def obj(value: object) -> dict[str, Any]:
    """``value`` if it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}


def objects(value: object) -> list[dict[str, Any]]:
    """The objects in a list (or the one object given)."""
    if isinstance(value, dict):
        return [value]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def dig(value: object, *keys: str) -> object:
    """``value[k1][k2]...``, or ``None`` where a step is missing."""
    for key in keys:
        value = obj(value).get(key)
    return value


def names(value: object, key: str = "name") -> tuple[str, ...]:
    """The ``key`` of each object in a list (``departments: [{"name": ...}]``), or the scalars."""
    found = [scalar(item.get(key)) if isinstance(item, dict) else scalar(item) for item in _listed(value)]
    return tuple(text for text in found if text is not None)


def first_list(document: object, *keys: str) -> list[Any] | None:
    """The list under the first of ``keys`` that holds one."""
    for key in keys:
        value = obj(document).get(key)
        if isinstance(value, list):
            return value
    return None


def first_keys(jobs: list[Any] | None) -> frozenset[str]:
    """The keys of the first object in ``jobs`` (what identifies an API's job objects)."""
    for job in jobs or ():
        if isinstance(job, dict):
            return frozenset(job)
    return frozenset()


def flag(value: object, *, true: str = "remote", false: str | None = "onsite") -> str | None:
    """A JSON boolean as a workplace word; ``None`` when absent."""
    if value is True:
        return true
    if value is False:
        return false
    return scalar(value)


def iso_from_epoch(value: object) -> str | None:
    """Seconds (or milliseconds, for values past year 5000 in seconds) since 1970 as ISO 8601 UTC."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return scalar(value)  # not a number: an ISO date most likely; normalize reads it
    if number > 1e11:
        number /= 1000
    try:
        return datetime.fromtimestamp(number, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def joined(*parts: object) -> str | None:
    """``"City, Region, Country"`` from the parts present, a part repeated next to itself once."""
    texts: list[str] = []
    for part in parts:
        text = scalar(part)
        if text is not None and (not texts or texts[-1].strip().casefold() != text.strip().casefold()):
            texts.append(text.strip())
    return ", ".join(texts) or None


def leftovers(job: dict[str, Any], handled: Iterable[str]) -> dict[str, str]:
    """Scalar fields no rule took, kept in ``extra`` under their own names."""
    skip = set(handled)
    kept = {key: scalar(value) for key, value in job.items() if key not in skip}
    return {key: value for key, value in kept.items() if value is not None}


def with_query(url: str, **params: object) -> str:
    """``url`` with the given query parameters set (others kept, in order)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({key: str(value) for key, value in params.items()})
    return urlunsplit(parts._replace(query=urlencode(query)))


def query_int(url: str, name: str, default: int) -> int:
    value = dict(parse_qsl(urlsplit(url).query)).get(name)
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def number(value: object) -> float | None:
    text = scalar(value)
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _listed(value: object) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]

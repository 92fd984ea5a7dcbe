"""JSON bodies: which job API answered (by content, then by host), its items, and its further pages.

The document is read whole (job APIs answer a few MB at most; the fetch size cap bounds it). Each
API's module says what its answers look like (:class:`~.jsonapi.JsonApi`); this module picks one:
the APIs whose ``matches`` accepts the document, and among several the one serving the feed's host
(an empty ``{"jobs": []}`` is many APIs' answer). A document no API accepts is refused with what it
is (its top-level keys), so the user knows to give the feed a field mapping.

Paging: after the items of a page, the API's ``next_page`` names the next URL; ``load_page`` (the
caller's: it fetches, politely) reads it, until there is none, a URL repeats, or ``max_pages`` pages
were read. A page that fails raises :class:`FeedPageError` naming the page: the items of the
pages before it were already yielded and stay valid.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from jobimporter.errors import FeedError, FeedPageError, FeedParseError, ImporterError, NotAFeed
from jobimporter.models import FeedFormat, RawItem
from jobimporter.parse import (
    adzuna,
    arbeitnow,
    ashby,
    greenhouse,
    himalayas,
    jobicy_json,
    jsonld,
    lever,
    recruitee,
    remoteok,
    remotive,
    smartrecruiters,
    usajobs,
    workable,
    workingnomads,
)
from jobimporter.parse.jsonapi import JsonApi, Page, load_json

__all__ = ["APIS", "BY_FORMAT", "PageLoader", "describe", "detect", "load_json", "parse"]

log = logging.getLogger(__name__)

PageLoader = Callable[[str], bytes]  # URL → body; raises an ImporterError when the page fails

APIS: tuple[JsonApi, ...] = (
    jsonld.API,
    greenhouse.API,
    lever.API,
    ashby.API,
    workable.API,
    smartrecruiters.API,
    recruitee.API,
    remotive.API,
    remoteok.API,
    arbeitnow.API,
    himalayas.API,
    workingnomads.API,
    usajobs.API,
    adzuna.API,
    jobicy_json.API,
)
BY_FORMAT: dict[FeedFormat, JsonApi] = {api.format: api for api in APIS}


def detect(document: Any, host: str) -> JsonApi:
    """The API whose answer ``document`` is.

    :raises NotAFeed: no API's answer looks like it (the message says what the document holds).
    """
    candidates = [api for api in APIS if api.matches(document)]
    served = [api for api in candidates if api.serves(host)]
    if served or candidates:
        return (served or candidates)[0]
    for api in APIS:  # nothing to recognise (no jobs, no envelope): the host may still tell
        if api.serves(host) and api.items(document) is not None:
            return api
    raise NotAFeed(describe(document))


def describe(document: Any) -> str:
    """What a JSON document that is no known job API holds, for the refusal."""
    return f"parse: {_what(document)}: give the feed a field mapping"


def _what(document: Any) -> str:
    if isinstance(document, dict):
        keys = ", ".join(list(map(str, document))[:12]) or "none"
        return f"JSON, but no list of jobs found (top-level keys: {keys})"
    if isinstance(document, list):
        return f"a JSON array of {len(document)} elements, not a known job format"
    return f"JSON, but no list of jobs found (the document is a {type(document).__name__})"


def parse(
    document: Any,
    *,
    url: str,
    api: JsonApi,
    load_page: PageLoader | None = None,
    max_pages: int = 1,
) -> Iterator[RawItem]:
    """Yield the jobs of ``document`` (loaded with :func:`load_json`) and of the pages after it (see
    the module docstring).

    :raises FeedParseError: ``document`` is not ``api``'s answer.
    :raises FeedPageError: a further page is not ``api``'s answer, or could not be read.
    """
    position, page_no, page_url, seen = 0, 1, url, {url}
    while True:
        jobs = _jobs_of(api, document, page_no)
        for job in jobs:
            position += 1
            yield _build(api, job, position, Page(page_url, document))
        following = api.next_page(document, page_url, len(jobs)) if jobs else None
        if following is None or following in seen or load_page is None:
            return
        if page_no >= max_pages:
            log.info("parse: %s: stopped after %d pages (the feed's page cap)", url, page_no)
            return
        page_no, page_url = page_no + 1, following
        seen.add(following)
        document = _load_page(load_page, page_url, page_no, position)


def _jobs_of(api: JsonApi, document: Any, page_no: int) -> list[Any]:
    jobs = api.items(document)
    if jobs is None:
        if page_no == 1:
            raise FeedParseError(f"parse: the document is not a {api.format.value} answer: {_what(document)}")
        raise FeedPageError(f"parse: page {page_no} is not a {api.format.value} answer: {_what(document)}")
    return jobs


def _build(api: JsonApi, job: Any, position: int, page: Page) -> RawItem:
    if not isinstance(job, dict):
        return RawItem(position=position)  # fails alone in normalize: it has no title
    try:
        return api.build(job, position, page)
    except (TypeError, ValueError, AttributeError, KeyError):  # a job shaped unlike its API's
        log.info("parse: %s: job #%d is not shaped like a %s job", page.url, position, api.format.value)
        return RawItem(position=position)


def _load_page(load_page: PageLoader, url: str, page_no: int, read: int) -> Any:
    try:
        return load_json(load_page(url))
    except (ImporterError, FeedError) as exc:
        raise FeedPageError(
            f"parse: page {page_no} ({url}) failed: {exc}; the {read} items before it were read"
        ) from exc

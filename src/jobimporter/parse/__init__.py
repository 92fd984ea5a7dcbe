"""The parse stage: one body in, :class:`RawItem` objects out, as they are read.

This package is a small dispatcher (miniflux's ``ParseFeed``): :func:`open_feed` peeks at the head
of the stream, lets :mod:`.detect` tell XML, JSON and HTML apart and name the format unless the
caller fixed one, and hands the *same* stream (head included) to that format's parser:

- XML, streamed over the hardened lxml loop in :mod:`.xml`: :mod:`.rss` (RSS 0.9x/2.0, RSS 1.0/RDF),
  :mod:`.atom`, :mod:`.jobxml` (Indeed-style job XML and its variants), :mod:`.personio`;
- JSON, read whole: :mod:`.jsondoc` picks the job API (Greenhouse, Lever, Ashby, Workable,
  SmartRecruiters, Recruitee, Remotive, Remote OK, Arbeitnow, Himalayas, Working Nomads, USAJOBS,
  Adzuna, jobicy, schema.org JobPosting) by content, and follows its pages;
- an HTML page: its JobPosting JSON-LD (:mod:`.jsonld`), else it is refused as a page;
- a feed's own field mapping (:mod:`.mapped`), for any other XML or JSON.

Then the board's conventions (:mod:`.profiles`, chosen by host unless the feed names one) are
applied to each item. Nothing is cleaned or resolved here; :mod:`jobimporter.normalize` does that.

Errors (all :class:`~jobimporter.errors.FeedError`): :class:`NotAFeed` for HTML pages, empty and
unknown bodies; :class:`FeedParseError` for malformed or forbidden XML/JSON; :class:`FeedPageError`
for a further page that failed. A parse error may come after some items were yielded: those items
are valid and the caller keeps them.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from jobimporter.errors import NotAFeed
from jobimporter.mapping import FieldMapping
from jobimporter.models import FeedFormat, RawItem
from jobimporter.parse import atom, jobxml, jsondoc, jsonld, mapped, personio, profiles, rss
from jobimporter.parse.detect import (
    HEAD_SIZE,
    Sniffed,
    check_prolog,
    decode_head,
    detect_format,
    detect_xml,
    html_message,
    job_item_name,
    scan_prolog,
    sniff,
)
from jobimporter.parse.jsondoc import PageLoader
from jobimporter.parse.profiles import Profile

__all__ = ["OpenedFeed", "PageLoader", "detect_format", "open_feed", "parse_feed"]

logger = logging.getLogger(__name__)

_XML_FORMATS = frozenset({FeedFormat.RSS, FeedFormat.ATOM, FeedFormat.JOB_XML, FeedFormat.PERSONIO_XML})


@dataclass(frozen=True, slots=True)
class OpenedFeed:
    """A body whose format is known: the format, the board profile applied, and the items to come."""

    format: FeedFormat
    profile: Profile | None
    items: Iterator[RawItem]


def parse_feed(
    stream: BinaryIO,
    *,
    format: FeedFormat = FeedFormat.AUTO,
    url: str = "",
    mapping: FieldMapping | None = None,
    profile: str = "auto",
    load_page: PageLoader | None = None,
    max_pages: int = 1,
) -> Iterator[RawItem]:
    """Yield the items of a feed body as they are read; memory stays flat for XML of any size.

    Lazy: nothing is read, and nothing raised, before the first item is asked for (see
    :func:`open_feed` for the arguments and errors).
    """
    opened = open_feed(
        stream,
        format=format,
        url=url,
        mapping=mapping,
        profile=profile,
        load_page=load_page,
        max_pages=max_pages,
    )
    yield from opened.items


def open_feed(
    stream: BinaryIO,
    *,
    format: FeedFormat = FeedFormat.AUTO,
    url: str = "",
    mapping: FieldMapping | None = None,
    profile: str = "auto",
    load_page: PageLoader | None = None,
    max_pages: int = 1,
) -> OpenedFeed:
    """Tell the format (``AUTO``: from the content, then ``url``'s host) and start reading.

    ``mapping`` (the feed's own) wins over any format. ``profile``: ``"auto"`` (by host), ``"none"``
    or a profile's name. ``load_page``/``max_pages``: how a paged JSON API's further pages are read.
    ``position`` counts items from 1.

    :raises NotAFeed: the body is an HTML page without postings, empty, or of an unknown format.
    :raises FeedParseError: malformed XML/JSON, or a DTD that declares entities. Raised where the
        document breaks (for XML, while items are read): items yielded before it stay valid.
    :raises FeedPageError: a further page failed (while items are read).
    """
    head = _read_head(stream)
    body = _prepend(head, stream)
    host = profiles.host_of(url)
    chosen = profiles.choose(profile, url)
    if mapping is not None:
        fmt, items = FeedFormat.MAPPED, mapped.parse(body, mapping)
    else:
        fmt, items = _dispatch(head, body, format, url, host, load_page, max_pages)
    logger.debug("parse: %s is %s, profile %s", url, fmt, chosen.name if chosen else "none")
    return OpenedFeed(fmt, chosen, profiles.apply(chosen, items))


def _dispatch(
    head: bytes,
    body: BinaryIO,
    format: FeedFormat,
    url: str,
    host: str,
    load_page: PageLoader | None,
    max_pages: int,
) -> tuple[FeedFormat, Iterator[RawItem]]:
    if format in _XML_FORMATS:
        check_prolog(scan_prolog(decode_head(head).lstrip()))
        return format, _xml(format, head, body)
    if format is FeedFormat.JSONLD:
        return format, _html_or_json(body.read(), url)
    if format is FeedFormat.MAPPED:
        raise NotAFeed("parse: the format is 'mapped' but the feed has no field mapping")
    if format is not FeedFormat.AUTO:
        api = jsondoc.BY_FORMAT[format]
        document = jsondoc.load_json(body.read())
        return format, jsondoc.parse(document, url=url, api=api, load_page=load_page, max_pages=max_pages)
    kind = sniff(head)
    if kind is Sniffed.XML:
        detected = detect_xml(head)
        return detected, _xml(detected, head, body)
    whole = body.read()
    if kind is Sniffed.HTML:
        return FeedFormat.JSONLD, _page(whole, url, head)
    document = jsondoc.load_json(whole)
    api = jsondoc.detect(document, host)
    return api.format, jsondoc.parse(document, url=url, api=api, load_page=load_page, max_pages=max_pages)


def _xml(format: FeedFormat, head: bytes, body: BinaryIO) -> Iterator[RawItem]:
    if format is FeedFormat.RSS:
        return rss.parse(body)
    if format is FeedFormat.ATOM:
        return atom.parse(body)
    if format is FeedFormat.PERSONIO_XML:
        return personio.parse(body)
    return jobxml.parse(body, job_item_name(decode_head(head)) or "job")


def _page(whole: bytes, url: str, head: bytes) -> Iterator[RawItem]:
    items = jsonld.parse_page(whole, url or None)
    if items is None:
        raise NotAFeed(html_message(decode_head(head)))
    return items


def _html_or_json(whole: bytes, url: str) -> Iterator[RawItem]:
    if sniff(whole[:HEAD_SIZE]) is Sniffed.JSON:
        return jsondoc.parse(jsondoc.load_json(whole), url=url, api=jsonld.API)
    return _page(whole, url, whole[:HEAD_SIZE])


def _read_head(stream: BinaryIO) -> bytes:
    """Up to :data:`HEAD_SIZE` bytes; loops because a stream may return short reads."""
    chunks: list[bytes] = []
    size = 0
    while size < HEAD_SIZE:
        chunk = stream.read(HEAD_SIZE - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class _Prepended(io.RawIOBase):
    """``head`` followed by the rest of ``stream``: the peeked bytes are read again, not lost."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _prepend(head: bytes, stream: BinaryIO) -> BinaryIO:
    return io.BufferedReader(_Prepended(head, stream), buffer_size=64 * 1024)

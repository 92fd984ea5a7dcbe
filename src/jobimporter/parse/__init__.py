"""The parse stage: one body in, :class:`RawItem` objects out, as they are read.

This package is a small dispatcher (miniflux's ``ParseFeed``): :func:`parse_feed` peeks at the
head of the stream, lets :mod:`.detect` name the format unless the caller fixed one, and hands the
*same* stream (head included) to that format's ``parse()``:

- :mod:`.rss` (RSS 0.9x/2.0, RSS 1.0/RDF) and :mod:`.atom`, both over the hardened lxml loop
  in :mod:`.xml`;
- :mod:`.jobicy_json` for the jobicy API.

Nothing is cleaned or resolved here; :mod:`jobimporter.normalize` does that.

Errors (all :class:`~jobimporter.errors.FeedError`): :class:`NotAFeed` for HTML pages, empty and
unknown bodies; :class:`FeedParseError` for malformed or forbidden XML/JSON. A parse error may
come after some items were yielded: those items are valid and the caller keeps them.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import BinaryIO

from jobimporter.models import FeedFormat, RawItem
from jobimporter.parse import atom, jobicy_json, rss
from jobimporter.parse.detect import HEAD_SIZE, check_prolog, decode_head, detect_format, scan_prolog

__all__ = ["detect_format", "parse_feed"]

logger = logging.getLogger(__name__)

_PARSERS: dict[FeedFormat, Callable[[BinaryIO], Iterator[RawItem]]] = {
    FeedFormat.RSS: rss.parse,
    FeedFormat.ATOM: atom.parse,
    FeedFormat.JOBICY_JSON: jobicy_json.parse,
}


def parse_feed(stream: BinaryIO, *, format: FeedFormat = FeedFormat.AUTO) -> Iterator[RawItem]:
    """Yield the items of a feed body as they are read; memory stays flat for XML of any size.

    ``format=AUTO`` detects the format from the first bytes. ``position`` counts items from 1.

    :raises NotAFeed: the body is an HTML page, empty, or of an unknown format (AUTO only).
    :raises FeedParseError: malformed XML/JSON, or a DTD that declares entities. Raised where the
        document breaks: items yielded before it are complete and stay valid.
    """
    head = _read_head(stream)
    if format is FeedFormat.AUTO:
        format = detect_format(head)
        logger.debug("parse: detected format %s", format)
    elif format in (FeedFormat.RSS, FeedFormat.ATOM):
        check_prolog(scan_prolog(decode_head(head).lstrip()))
    yield from _PARSERS[format](_prepend(head, stream))


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

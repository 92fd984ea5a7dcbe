"""Preview one feed before importing it: fetch it, tell its format and board profile, and show the
first records as they would be stored, what is empty, the source fields no field took (kept in
``extra``), and the items that would fail with their reasons. Nothing is written anywhere.

Used by ``jobimporter preview`` (rendered by :func:`render_text`, 80 columns) and by
``POST /api/feeds/preview`` (the :class:`Preview` as JSON). Only the first page of a paged API is
read (``more_pages`` says whether more would follow); up to ``scan`` items are checked for failures.
"""

from __future__ import annotations

import asyncio
import itertools
import textwrap
from typing import Any, BinaryIO, cast

import httpx
from pydantic import BaseModel, Field

from jobimporter.config import Settings
from jobimporter.errors import ConfigError, FeedError, FetchError, ItemError
from jobimporter.fetch import FetchLimits, FetchResult, fetch_feed, make_client
from jobimporter.models import FeedSource, ItemFailure, JobRecord, RawItem
from jobimporter.normalize import identify, normalize
from jobimporter.parse import open_feed
from jobimporter.runtime import fetch_limits
from jobimporter.sources import load_sources, publisher_host

# What a person checks first; the rest of JobRecord follows in its own order. Identity and hashes
# are the store's business, the sanitized HTML is shown as its text.
_FIRST = ("title", "company", "url", "apply_url", "locations", "workplace", "employment_types", "job_types")
_HIDDEN = frozenset({"key", "content_hash", "raw_hash", "description_html", "extra"})
_TEXT_CUT = 300
_DERIVED = frozenset({"salary_text"})  # kept beside the fields read from it, not left unmapped


class PreviewFailure(BaseModel):
    item: str
    reason: str


class Preview(BaseModel):
    """What importing the feed would do (module docstring); ``error`` when it cannot be read at all."""

    name: str
    url: str
    http_status: int | None = None
    bytes: int | None = None
    format: str | None = None
    profile: str | None = None
    items_read: int = 0
    records: list[dict[str, Any]] = Field(default_factory=list)
    empty_fields: list[list[str]] = Field(default_factory=list)  # per record shown
    unmapped: list[str] = Field(default_factory=list)  # source fields no field took, kept in extra
    failures: list[PreviewFailure] = Field(default_factory=list)
    more_pages: bool = False
    error: str | None = None


async def preview_feed(
    source: FeedSource, client: httpx.AsyncClient, limits: FetchLimits, *, limit: int = 5, scan: int = 1000
) -> Preview:
    """Fetch ``source`` once and read up to ``scan`` items; never raises for the feed's own faults."""
    preview = Preview(name=source.name, url=source.url)
    try:
        result = await fetch_feed(client, source.url, limits=limits)
    except FetchError as exc:
        return preview.model_copy(update={"error": str(exc)})
    with result:
        preview = preview.model_copy(update={"http_status": result.status, "bytes": result.bytes})
        return await asyncio.to_thread(_read, preview, source, result, limit, scan)


def _read(preview: Preview, source: FeedSource, result: FetchResult, limit: int, scan: int) -> Preview:
    asked: list[str] = []
    try:
        opened = open_feed(
            cast(BinaryIO, result.body),
            format=source.format,
            url=result.effective_url,
            mapping=source.mapping,
            profile=source.profile,
            load_page=lambda url: _note_page(asked, url),
            max_pages=2,
        )
    except FeedError as exc:
        return preview.model_copy(update={"error": str(exc)})
    found = _Collector(publisher_host(source.url), result.effective_url, limit)
    error = found.take(itertools.islice(opened.items, scan))
    return preview.model_copy(
        update={
            "format": opened.format.value,
            "profile": opened.profile.name if opened.profile else None,
            "items_read": found.read,
            "records": [_shown(record) for record in found.records],
            "empty_fields": [_empty(record) for record in found.records],
            "unmapped": sorted(found.unmapped),
            "failures": [PreviewFailure(item=f.external_id, reason=f.reason) for f in found.failures],
            "more_pages": bool(asked),
            "error": None if error is not None and asked and "page 2" in error else error,
        }
    )


def _note_page(asked: list[str], url: str) -> bytes:
    """The preview reads the first page only: note that another would follow, and stop there."""
    asked.append(url)
    raise FetchError(f"preview: pages after the first are not read ({url})")


class _Collector:
    """Normalizes items as an import would (identity, duplicates, normalize) and keeps what to show."""

    def __init__(self, source: str, base_url: str, limit: int) -> None:
        self.source, self.base_url, self.limit = source, base_url, limit
        self.read = 0
        self.records: list[JobRecord] = []
        self.failures: list[ItemFailure] = []
        self.unmapped: set[str] = set()
        self._seen: set[str] = set()

    def take(self, items: Any) -> str | None:
        """Consume ``items``; the feed error that stopped them, if any."""
        try:
            for raw in items:
                self.read += 1
                self._one(raw)
        except FeedError as exc:
            return str(exc)
        return None

    def _one(self, raw: RawItem) -> None:
        self.unmapped.update(key for key in raw.extra if key not in _DERIVED)
        label = (raw.guid or raw.link or f"item #{raw.position}").strip()[:500]
        try:
            identity = identify(raw, source=self.source, base_url=self.base_url)
            if identity.key in self._seen:
                raise ItemError("duplicate: an earlier item in this feed has the same id")
            self._seen.add(identity.key)
            record = normalize(raw, source=self.source, base_url=self.base_url, identity=identity)
        except ItemError as exc:
            self.failures.append(ItemFailure(label, str(exc)))
            return
        if len(self.records) < self.limit:
            self.records.append(record)


def _shown(record: JobRecord) -> dict[str, Any]:
    values = record.model_dump(mode="json")
    ordered = [*_FIRST, *(name for name in values if name not in _FIRST)]
    shown = {name: values[name] for name in ordered if name not in _HIDDEN}
    shown["description_text"] = _cut(record.description_text)
    shown["extra"] = values["extra"]
    return shown


def _empty(record: JobRecord) -> list[str]:
    return [name for name, value in _shown(record).items() if value in (None, "", [], {})]


def _cut(text: str) -> str:
    return text if len(text) <= _TEXT_CUT else text[: _TEXT_CUT - 1].rstrip() + "…"


# ---------------------------------------------------------------- the terminal form


def render_text(preview: Preview, width: int = 80) -> str:
    """The preview for a terminal ``width`` columns wide."""
    lines = [f"feed      {preview.name}", f"url       {preview.url}"]
    if preview.http_status is not None:
        lines.append(f"fetched   HTTP {preview.http_status}, {preview.bytes or 0:,} bytes")
    if preview.format is not None:
        lines.append(f"format    {preview.format}    profile  {preview.profile or 'none'}")
        pages = " (first page only; more follow)" if preview.more_pages else ""
        lines.append(f"items     {preview.items_read} read{pages}, {len(preview.failures)} would fail")
    if preview.error:
        lines += _wrapped("error     ", preview.error, width)
    for number, (record, empty) in enumerate(zip(preview.records, preview.empty_fields, strict=True), 1):
        lines += ["", f"record {number} of {preview.items_read}"]
        lines += [line for name, value in record.items() for line in _field(name, value, width)]
        if empty:
            lines += _wrapped("  empty: ", ", ".join(empty), width)
    if preview.unmapped:
        lines += ["", "source fields no field took (kept in extra):"]
        lines += _wrapped("  ", ", ".join(preview.unmapped), width)
    if preview.failures:
        lines += ["", "items that would fail:"]
        for failure in preview.failures:
            lines += _wrapped("  ", f"{failure.item}: {failure.reason}", width)
    return "\n".join(lines) + "\n"


def _field(name: str, value: Any, width: int) -> list[str]:
    if value in (None, "", [], {}):
        text = "—"
    elif isinstance(value, list):
        text = "; ".join(map(str, value))
    elif isinstance(value, dict):
        text = ", ".join(f"{k}={v}" for k, v in value.items())
    else:
        text = str(value)
    return _wrapped(f"  {name:<17} ", text, width)


def _wrapped(head: str, text: str, width: int) -> list[str]:
    return textwrap.wrap(
        " ".join(text.split()) or "—",
        width=width,
        initial_indent=head,
        subsequent_indent=" " * len(head),
        break_long_words=True,
        break_on_hyphens=False,
    )


# ---------------------------------------------------------------- from a sources file


async def preview_from_sources(settings: Settings, feed_name: str | None, *, limit: int = 5) -> Preview:
    """Preview the feed named ``feed_name`` (the first one when None) of ``settings.sources``.

    :raises ConfigError: no sources file, a bad one, or no feed of that name in it.
    """
    if settings.sources is None:
        raise ConfigError("preview: give a sources file (--sources or JOBIMPORTER_SOURCES)")
    feeds = load_sources(settings.sources)
    chosen = next((f for f in feeds if feed_name in (None, f.name)), None)
    if chosen is None:
        names = ", ".join(repr(f.name) for f in feeds)
        raise ConfigError(f"preview: no feed named {feed_name!r} in {settings.sources} (feeds: {names})")
    limits = fetch_limits(settings)
    async with make_client(limits) as client:
        return await preview_feed(chosen, client, limits, limit=limit)

"""The batch job: normalize the raw items the feed job queued, bulk-upsert them, report the outcome.

Normalizing (cleaning, sanitizing, hashing) is most of a changed item's cost, so it happens here,
in whichever worker process takes the batch, not in the one feed job that read the feed: a big
feed's items are normalized by every worker process there is. An item that fails to normalize fails
alone, with its reason, counted in its batch.

The store records each batch's result under its key in the same transaction as the upsert, so a
batch delivered twice (a retry after a lost acknowledgement, a stalled job picked up again) is
written and counted once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bullmq.custom_errors import UnrecoverableError
from pydantic import ValidationError

from jobimporter.context import ImportContext
from jobimporter.errors import StoreError
from jobimporter.events import BatchProcessed
from jobimporter.models import BatchKey, ItemFailure, JobRecord, RawItem, UpsertResult, utcnow
from jobimporter.normalize import NORMALIZER_VERSION, Identity, normalize_each, raw_hash

log = logging.getLogger(__name__)


async def process_batch_job(ctx: ImportContext, job: Any, token: str) -> dict[str, Any]:
    data = job.data
    key = BatchKey(str(data["entry_id"]), int(data["batch_no"]))
    records, failures = await asyncio.get_running_loop().run_in_executor(_normalizer(), records_of, data)
    known = [(str(k), str(external_id)) for k, external_id in data.get("known") or []]
    try:
        result = await write_batch(
            ctx, str(data["run_id"]), key, str(data["feed_id"]), records, failures, known
        )
    except StoreError as exc:
        if exc.transient:
            raise  # BullMQ retries with backoff
        raise UnrecoverableError(str(exc)) from exc
    # The result is committed under the batch key, so the items are no longer needed: drop them from
    # Redis now rather than keeping ~250 KB per completed job until it expires. A redelivery after
    # this point finds the batch recorded and returns its result without needing them.
    if data.get("items"):
        await job.updateData({k: v for k, v in data.items() if k not in ("items", "known")})
    return {
        "new": result.new,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "failed": result.failed,
    }


async def write_batch(
    ctx: ImportContext,
    run_id: str,
    key: BatchKey,
    feed_id: str,
    records: Sequence[JobRecord],
    failures: Sequence[ItemFailure],
    known: Sequence[tuple[str, str]],
) -> UpsertResult:
    """Upsert one batch (recorded once under ``key``, however often it is written) and announce it.

    :raises StoreError: the batch was not written; ``transient`` says whether trying again may help.
    """
    result = await ctx.store.upsert_batch(
        key, feed_id, records, failures, now=utcnow(), seen_refresh_s=ctx.seen_refresh_s, known=known
    )
    await ctx.events.publish(
        BatchProcessed(
            run_id=run_id,
            entry_id=key.entry_id,
            batch_no=key.batch_no,
            new=result.new,
            updated=result.updated,
            unchanged=result.unchanged,
            failed=result.failed,
        )
    )
    return result


class ParsePriority:
    """Whether a feed job of this process is parsing right now (``with PARSING:`` around each slice).

    Every worker process's batches wait for the one feed job that parses a feed, and normalizing
    runs in the same process under the same GIL, so while a feed is parsed the normalizing thread
    hands the GIL over between items (``yield_to_parsing``): the parse thread runs nearly unhindered,
    and the batches this process holds meanwhile wait, while other processes normalize at full
    speed. Without it a feed job's process normalizes as much as any other and the feed, which all
    of them wait for, is read at half speed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parsing = 0

    def __enter__(self) -> None:
        with self._lock:
            self._parsing += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._parsing -= 1

    def yield_to_parsing(self) -> None:
        if self._parsing:
            time.sleep(_YIELD_S)  # long enough for a waiting parse thread to take the GIL


PARSING = ParsePriority()
# A normalizing thread's pause between items while a feed is parsed: a parse thread that waits for the
# GIL takes it (a sleep of 0 is often over before it wakes) and keeps it ~5 ms (the switch interval).
_YIELD_S = 0.001


@functools.cache
def _normalizer() -> ThreadPoolExecutor:
    """The process's one normalizing thread: off the event loop, which goes on serving the process's
    other jobs meanwhile, and one, so its batches normalize one at a time. Normalizing is pure Python
    under one GIL: more threads would not add speed, only starve a feed job's parse thread in the same
    process, which every worker process's batches wait for."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="normalize")


def records_of(data: dict[str, Any]) -> tuple[list[JobRecord], list[ItemFailure]]:
    """The batch's records, and a failure with its reason for each item that is not one.

    A batch queued by an earlier version carries records already normalized (no ``normalizer`` in
    its data: a dead letter retried after an upgrade); they are validated as records.
    """
    items = data.get("items") or []
    if "normalizer" not in data:
        return validate_items(items)
    return normalize_items(items, str(data["source"]), str(data["base_url"]), str(data["normalizer"]))


def normalize_items(
    items: list[Any], source: str, base_url: str, version: str
) -> tuple[list[JobRecord], list[ItemFailure]]:
    """Normalize ``[external_id, key, raw_hash, raw item row]`` entries, as the feed job queued them.

    A raw hash from a feed job of another normalizer version (a rolling upgrade) is worked out
    again here, so the stored one always says which normalizer made the record.
    """
    records: list[JobRecord] = []
    failures: list[ItemFailure] = []
    for position, entry in enumerate(items, start=1):
        PARSING.yield_to_parsing()
        try:
            pair = _decoded(entry, base_url, version)
        except TypeError as exc:  # not what a feed job queues: this item fails, not its batch
            failures.append(ItemFailure(_entry_label(entry, position), f"invalid: batch item: {exc}"))
            continue
        (result,) = normalize_each([pair], source=source, base_url=base_url)
        if isinstance(result, str):
            failures.append(ItemFailure(pair[1].external_id, result, key=pair[1].key))  # still listed
        else:
            records.append(result)
    return records, failures


def _decoded(entry: Any, base_url: str, version: str) -> tuple[RawItem, Identity]:
    if not isinstance(entry, list) or len(entry) != 4 or not all(isinstance(v, str) for v in entry[:3]):
        raise TypeError("not an [external_id, key, raw_hash, item] entry")
    external_id, key, digest, row = entry
    raw = RawItem.from_row(row)
    if version != NORMALIZER_VERSION:
        digest = raw_hash(raw, base_url)
    return raw, Identity(external_id, key, digest)


def _entry_label(entry: Any, position: int) -> str:
    if isinstance(entry, list) and entry and isinstance(entry[0], str):
        return entry[0][:500]
    return f"batch item #{position}"


def validate_items(items: list[Any]) -> tuple[list[JobRecord], list[ItemFailure]]:
    """Records that crossed Redis already normalized (queued by an earlier version); an invalid one
    fails alone."""
    records: list[JobRecord] = []
    failures: list[ItemFailure] = []
    for position, item in enumerate(items, start=1):
        try:
            records.append(JobRecord.model_validate(item))
        except ValidationError as exc:
            label = item.get("external_id") if isinstance(item, dict) else None
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            failures.append(ItemFailure(str(label or f"batch item #{position}"), f"invalid: {problems}"))
    return records, failures

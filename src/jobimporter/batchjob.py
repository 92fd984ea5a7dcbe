"""The batch job: validate the items that crossed Redis, bulk-upsert them, report the outcome.

The store records each batch's result under its key in the same transaction as the upsert, so a
batch delivered twice (a retry after a lost acknowledgement, a stalled job picked up again) is
written and counted once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bullmq.custom_errors import UnrecoverableError
from pydantic import ValidationError

from jobimporter.context import ImportContext
from jobimporter.errors import StoreError
from jobimporter.events import BatchProcessed
from jobimporter.models import BatchKey, ItemFailure, JobRecord, UpsertResult, utcnow

log = logging.getLogger(__name__)


async def process_batch_job(ctx: ImportContext, job: Any, token: str) -> dict[str, Any]:
    data = job.data
    key = BatchKey(str(data["entry_id"]), int(data["batch_no"]))
    records, failures = validate_items(data.get("items") or [])
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
    # Redis now rather than keeping ~300 KB per completed job until it expires. A redelivery after
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


def validate_items(items: list[Any]) -> tuple[list[JobRecord], list[ItemFailure]]:
    """Check each item again on arrival (it crossed Redis as JSON); an invalid one fails alone."""
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

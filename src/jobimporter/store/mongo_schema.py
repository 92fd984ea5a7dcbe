"""The MongoDB store's collections, their indexes, and the schema migrations run at start.

Collections (named as the design documents name them where they fit):

- ``jobs``: one document per job, ``_id`` = ``JobRecord.key``, the record's fields as they are plus
  ``first_seen``, ``last_seen``, ``last_changed``, its feed links embedded (SQL's ``job_feeds``):
  ``feed_ids`` (every feed it was seen in) and ``live_feed_ids`` (those that still list it; the
  others' links are dead), and its lifecycle: ``status``, ``expired_at``, ``expiry_reason``,
  ``unlisted_at``;
- ``import_logs``: one document per feed per run (an ``ImportEntry``), carrying its run's id,
  ``trigger`` and ``run_started_at``, so history lists filter and sort without a join, and
  ``failure_kind`` and ``links_checked_at`` (the entry has unlinked what its feed dropped);
- ``runs``: one per run, with ``feed_ids`` of its entries; ``feeds``: the configured feeds (with
  ``paused_at``, ``paused_reason`` and ``resumed_at`` once their health paused them);
- ``batches``: the recorded result of each batch, ``_id`` = ``<entry id>/<batch no>`` (the
  exactly-once claim), with ``job_keys`` (the keys it listed) until its entry has used them;
- ``changes``: the change log, ``_id`` = the cursor; ``counters``: the ``changes`` document holding
  the last cursor handed out (``mongo_changes`` says why it orders commits);
- ``webhooks`` and ``deliveries``: the endpoints and each event sent to one, with every attempt;
- ``jobimporter_schema``: the ``version`` document (the Alembic history's equivalent) and the
  migration lock.

``migrate`` brings a database to ``SCHEMA_VERSION`` one step at a time under a lease lock, so several
processes starting at once migrate it once; each step is idempotent, so one interrupted half-way is
simply run again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from jobimporter.errors import StoreError
from jobimporter.models import utcnow
from jobimporter.store.mongo_errors import NAMESPACE_EXISTS

logger = logging.getLogger(__name__)

Document = dict[str, Any]

JOBS = "jobs"
IMPORT_LOGS = "import_logs"
RUNS = "runs"
FEEDS = "feeds"
BATCHES = "batches"
CHANGES = "changes"
COUNTERS = "counters"
WEBHOOKS = "webhooks"
DELIVERIES = "deliveries"
SCHEMA = "jobimporter_schema"

# The indexes of version 1 (``_id`` aside): frozen, as its migration step is.
_V1_INDEXES: dict[str, list[IndexModel]] = {
    JOBS: [
        IndexModel([("source", ASCENDING), ("external_id", ASCENDING)], unique=True),
        IndexModel([("last_changed", DESCENDING), ("_id", ASCENDING)]),
        IndexModel([("published_at", DESCENDING), ("_id", ASCENDING)]),
        IndexModel([("feed_ids", ASCENDING)]),
    ],
    IMPORT_LOGS: [
        IndexModel([("run_id", ASCENDING), ("position", ASCENDING)]),
        IndexModel([("run_started_at", DESCENDING), ("run_id", DESCENDING), ("position", ASCENDING)]),
        IndexModel([("feed_id", ASCENDING), ("run_started_at", DESCENDING)]),
        IndexModel([("status", ASCENDING)]),
    ],
    RUNS: [
        IndexModel([("started_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("trigger", ASCENDING), ("started_at", DESCENDING)]),
        IndexModel([("feed_ids", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("finished_at", ASCENDING)]),
    ],
    FEEDS: [
        IndexModel([("url", ASCENDING)], unique=True),
        IndexModel([("name", ASCENDING), ("url", ASCENDING)]),
    ],
    BATCHES: [IndexModel([("entry_id", ASCENDING), ("batch_no", ASCENDING)])],
}

# What version 2 (the job lifecycle, the change log, webhooks) adds: the expiry sweep's and the
# retention purge's lookups, the feeds' live links, the entries a feed's health counts, a job's
# changes, the endpoints by URL and the deliveries as they are listed.
_V2_INDEXES: dict[str, list[IndexModel]] = {
    JOBS: [
        IndexModel([("live_feed_ids", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("expires_at", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("unlisted_at", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("expired_at", ASCENDING)]),
    ],
    IMPORT_LOGS: [
        IndexModel([("feed_id", ASCENDING), ("status", ASCENDING), ("finished_at", DESCENDING)]),
        IndexModel([("feed_id", ASCENDING), ("failure_kind", ASCENDING), ("finished_at", DESCENDING)]),
    ],
    CHANGES: [IndexModel([("job_key", ASCENDING), ("_id", ASCENDING)])],
    COUNTERS: [],
    WEBHOOKS: [
        IndexModel([("url", ASCENDING)], unique=True),
        IndexModel([("name", ASCENDING), ("url", ASCENDING)]),
    ],
    DELIVERIES: [
        IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("webhook_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("status", ASCENDING), ("created_at", DESCENDING)]),
    ],
}

# The indexes each collection needs now (``_id`` aside): what the queries filter and sort on. Each
# version's step creates its own; a later version that changes them does so in a step of its own.
INDEXES: dict[str, list[IndexModel]] = {
    name: [*_V1_INDEXES.get(name, []), *_V2_INDEXES.get(name, [])] for name in {**_V1_INDEXES, **_V2_INDEXES}
}
CHANGE_COUNTER = "changes"  # the ``counters`` document of the change log

_VERSION_ID = "version"
_LOCK_ID = "migration_lock"
_LOCK_LEASE = timedelta(seconds=60)  # a process that died holding the lock holds it no longer
_LOCK_POLL_S = 0.2


async def _create(db: AsyncDatabase[Document], indexes: dict[str, list[IndexModel]], *extra: str) -> None:
    """The collections (created up front: transactions then never create one) and their indexes.
    Both are no-ops when they exist already."""
    existing = set(await db.list_collection_names())
    for name in (*indexes, *extra):
        if name not in existing:
            try:
                await db.create_collection(name, check_exists=False)
            except OperationFailure as exc:  # another process created it since we looked
                if exc.code != NAMESPACE_EXISTS:
                    raise
    for name, wanted in indexes.items():
        if wanted:
            await db[name].create_indexes(wanted)


async def _create_collections_and_indexes(db: AsyncDatabase[Document]) -> None:
    """Version 1: every collection of the import and its history, with their indexes."""
    await _create(db, _V1_INDEXES, SCHEMA)


async def _add_lifecycle_changes_and_webhooks(db: AsyncDatabase[Document]) -> None:
    """Version 2: the job lifecycle, the change log and webhooks. Stored jobs are active, every feed
    they were seen in still lists them (as SQL's migration 0005 leaves their links live), and the
    entries stored before count as having unlinked already: their batches did not record the keys
    they listed, so closing one again must not take its feed's jobs for dropped."""
    await _create(db, _V2_INDEXES)
    await db[COUNTERS].update_one({"_id": CHANGE_COUNTER}, {"$setOnInsert": {"seq": 0}}, upsert=True)
    lifecycle = {"status": "active", "expired_at": None, "expiry_reason": None, "unlisted_at": None}
    await db[JOBS].update_many({"status": {"$exists": False}}, {"$set": lifecycle})
    await db[JOBS].update_many(
        {"live_feed_ids": {"$exists": False}}, [{"$set": {"live_feed_ids": {"$ifNull": ["$feed_ids", []]}}}]
    )
    await db[IMPORT_LOGS].update_many(
        {"links_checked_at": {"$exists": False}}, {"$set": {"links_checked_at": utcnow()}}
    )


# Step n brings the database from version n - 1 to n. Append, never edit a released step.
MIGRATIONS: tuple[Callable[[AsyncDatabase[Document]], Awaitable[None]], ...] = (
    _create_collections_and_indexes,
    _add_lifecycle_changes_and_webhooks,
)
SCHEMA_VERSION = len(MIGRATIONS)


async def schema_version(db: AsyncDatabase[Document]) -> int:
    """The version the database's schema is at (0: never migrated)."""
    doc = await db[SCHEMA].find_one({"_id": _VERSION_ID})
    return int(doc["version"]) if doc else 0


async def migrate(db: AsyncDatabase[Document]) -> int:
    """Bring the database to ``SCHEMA_VERSION``, one process at a time; returns that version."""
    if await schema_version(db) == SCHEMA_VERSION:
        return SCHEMA_VERSION  # the usual start: nothing to do, no lock taken
    holder = f"{socket.gethostname()}:{os.getpid()}:{id(db)}"
    await _lock(db, holder)
    try:
        version = await schema_version(db)
        _refuse_newer(version)
        for number in range(version + 1, SCHEMA_VERSION + 1):
            await MIGRATIONS[number - 1](db)
            await db[SCHEMA].update_one(
                {"_id": _VERSION_ID}, {"$set": {"version": number, "migrated_at": utcnow()}}, upsert=True
            )
            logger.info("store: MongoDB schema migrated to version %d", number)
    finally:
        await db[SCHEMA].update_one({"_id": _LOCK_ID, "holder": holder}, {"$set": {"holder": None}})
    return SCHEMA_VERSION


def _refuse_newer(version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store: the MongoDB database is at schema version {version}, newer than this "
            f"jobimporter knows ({SCHEMA_VERSION}); upgrade jobimporter"
        )


async def _lock(db: AsyncDatabase[Document], holder: str) -> None:
    """Take the migration lock: a document naming its holder until its lease runs out."""
    while True:
        now = utcnow()
        free = {"_id": _LOCK_ID, "$or": [{"holder": None}, {"expires_at": {"$lt": now}}]}
        try:
            await db[SCHEMA].update_one(
                free, {"$set": {"holder": holder, "expires_at": now + _LOCK_LEASE}}, upsert=True
            )
            return
        except DuplicateKeyError:  # the lock document exists and another process holds it
            logger.debug("store: waiting for another process's MongoDB migration")
            await asyncio.sleep(_LOCK_POLL_S)

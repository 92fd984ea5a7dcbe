"""The MongoDB store's collections, their indexes, and the schema migrations run at start.

Collections (named as the design documents name them where they fit):

- ``jobs``: one document per job, ``_id`` = ``JobRecord.key``, the record's fields as they are plus
  ``first_seen``, ``last_seen``, ``last_changed`` and ``feed_ids`` (the feeds it was seen in, embedded:
  the store's ``job_feeds``);
- ``import_logs``: one document per feed per run (an ``ImportEntry``), carrying its run's id,
  ``trigger`` and ``run_started_at``, so history lists filter and sort without a join;
- ``runs``: one per run, with ``feed_ids`` of its entries; ``feeds``: the configured feeds;
- ``batches``: the recorded result of each batch, ``_id`` = ``<entry id>/<batch no>`` (the
  exactly-once claim);
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
SCHEMA = "jobimporter_schema"

# The indexes each collection needs (``_id`` aside): what the queries filter and sort on. Version 1
# creates them; a later version that changes them does so in a step of its own.
INDEXES: dict[str, list[IndexModel]] = {
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

_VERSION_ID = "version"
_LOCK_ID = "migration_lock"
_LOCK_LEASE = timedelta(seconds=60)  # a process that died holding the lock holds it no longer
_LOCK_POLL_S = 0.2


async def _create_collections_and_indexes(db: AsyncDatabase[Document]) -> None:
    """Version 1: every collection (created up front: transactions then never create one) and its
    indexes. Both are no-ops when they exist already."""
    existing = set(await db.list_collection_names())
    for name in (*INDEXES, SCHEMA):
        if name not in existing:
            try:
                await db.create_collection(name, check_exists=False)
            except OperationFailure as exc:  # another process created it since we looked
                if exc.code != NAMESPACE_EXISTS:
                    raise
    for name, indexes in INDEXES.items():
        await db[name].create_indexes(indexes)


# Step n brings the database from version n - 1 to n. Append, never edit a released step.
MIGRATIONS: tuple[Callable[[AsyncDatabase[Document]], Awaitable[None]], ...] = (
    _create_collections_and_indexes,
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

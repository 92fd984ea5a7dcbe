"""The job lifecycle and feed health, as the import sees them: how a closing import entry tells the
store what happened (``entry_lifecycle``, ``failure_of``), and the sweep that expires jobs when
their time comes (``Sweeper``).

The rules themselves are the store's contract (``JobStore.finalize_entry``, ``expire_due_jobs``):

- a job is ``active`` while some feed it belongs to still lists it; a complete import of a feed
  (read to its end, every batch written) unlinks the jobs it no longer lists, and a job left without
  any feed waits ``expire_after_s`` (``JOBIMPORTER_EXPIRE_AFTER_S``, a day; 0: no wait), then
  expires; a source's own end date expires a job at that time; a job listed again is active again;
- an import that failed, or was cut short, unlinks nothing;
- ``pause_after`` (``JOBIMPORTER_PAUSE_AFTER_FAILURES``, 5) imports in a row that fail for good
  (404, 410, 403, not a feed, too large, a document with no readable item) pause the feed; transient
  failures (timeouts, connections, 429, 5xx, the database away) never count.

The sweep runs in every worker process every ``interval_s`` (``JOBIMPORTER_EXPIRY_INTERVAL_S``):
the store expires each due job once however many sweep at a time, and records the exact time it
expired (its end date, or the end of its grace period), whenever the sweep comes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from jobimporter.errors import FetchError, ImporterError
from jobimporter.models import FailureKind, utcnow
from jobimporter.store.base import EntryLifecycle

if TYPE_CHECKING:
    from jobimporter.context import ImportContext

log = logging.getLogger(__name__)

_EXPIRED_PER_CALL = 1000
_PURGE_EVERY_S = 600.0


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """The lifecycle settings an import and the sweep need (filled from ``Settings``)."""

    expire_after_s: float = 86_400.0
    pause_after: int = 5
    retention_days: int = 0  # expired jobs are deleted this many days after they expired (0: kept)
    interval_s: float = 10.0  # how often the sweep looks for due jobs


def entry_lifecycle(
    ctx: ImportContext, *, complete: bool = False, failure: FailureKind | None = None
) -> EntryLifecycle:
    """What closing an import's entry asks of the store: ``complete`` when the whole feed was read and
    written, ``failure`` when it failed."""
    policy = ctx.lifecycle
    return EntryLifecycle(
        complete=complete,
        expire_after_s=policy.expire_after_s,
        failure=failure,
        pause_after=policy.pause_after,
    )


def failure_of(exc: FetchError) -> FailureKind:
    """A fetch error as the feed's health counts it."""
    return FailureKind.TRANSIENT if exc.transient else FailureKind.PERMANENT


def parse_failure(parse_error: str | None, batches: int) -> FailureKind | None:
    """A parse error before any item (not a feed, a broken document) fails for good; one after some
    items were read (a page of a paged API, a break mid-document) does not count either way."""
    if parse_error is None:
        return None
    return FailureKind.PERMANENT if batches == 0 else None


class Sweeper:
    """Expires the jobs that are due and purges old expired ones; ``run()`` until cancelled."""

    def __init__(self, ctx: ImportContext) -> None:
        self.ctx = ctx
        self._purged_at: float | None = None

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except ImporterError as exc:  # the database away: the next sweep catches up
                log.warning("lifecycle: sweep failed: %s", exc)
            await asyncio.sleep(self.ctx.lifecycle.interval_s)

    async def sweep(self) -> int:
        """Expire every due job (in rounds of at most 1,000); then purge, at most every 10 minutes."""
        policy = self.ctx.lifecycle
        expired = 0
        while True:
            done = await self.ctx.store.expire_due_jobs(
                utcnow(), expire_after_s=policy.expire_after_s, limit=_EXPIRED_PER_CALL
            )
            expired += done
            if done < _EXPIRED_PER_CALL:
                break
        if expired:
            log.info("lifecycle: %d jobs expired", expired)
        await self._purge()
        return expired

    async def _purge(self) -> None:
        days = self.ctx.lifecycle.retention_days
        now = asyncio.get_running_loop().time()
        if days <= 0 or (self._purged_at is not None and now - self._purged_at < _PURGE_EVERY_S):
            return
        self._purged_at = now
        purged = await self.ctx.store.purge_expired(utcnow() - timedelta(days=days))
        if purged:
            log.info("lifecycle: %d jobs expired more than %d days ago deleted", purged, days)

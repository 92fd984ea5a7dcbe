"""``jobimporter import``: one run of the given feeds in this process, start to finish.

- Feeds whose previous import is still under way (a cron run, or the run of an import that was
  killed: its jobs are still queued) are not skipped: the import says which run it waits for, lets
  that run finish first (its own workers help), then imports them.
- While the run goes, a live table on a terminal; whenever nothing has moved for
  ``STALL_REPORT_S``, a few lines on stderr naming the feeds still open and what each waits for.
- SIGINT or SIGTERM stop it without losing anything: the workers give back their jobs, the run is
  left running, and the next import (or any worker) finishes it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from jobimporter.config import Settings
from jobimporter.context import ImportContext
from jobimporter.events import BatchProcessed, EntryChanged, Event
from jobimporter.models import EntryStatus, Feed, ImportEntry, ImportRun, Trigger, duration_text, utcnow
from jobimporter.report import progress, terminal_width
from jobimporter.runs import busy_runs, start_run, wait_for_run
from jobimporter.runtime import Runtime
from jobimporter.sources import load_sources
from jobimporter.store.base import JobStore
from jobimporter.watchdog import why_open

log = logging.getLogger(__name__)
T = TypeVar("T")

STALL_REPORT_S = 30.0  # nothing moved for this long: say what the run waits for


class Interrupted(Exception):
    """The import was stopped by a signal; ``run_id`` is the run it left running (if one started)."""

    def __init__(self, signum: int, run_id: str | None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum, self.run_id = signum, run_id


def run_until_signalled(main: Coroutine[Any, Any, T], state: dict[str, Any]) -> T:
    """``asyncio.run(main)``, but SIGINT and SIGTERM cancel it and raise ``Interrupted``."""

    async def guarded() -> T:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, _interrupt, task, state, signum)
        try:
            return await main
        except asyncio.CancelledError:
            if "signal" in state:
                raise Interrupted(state["signal"], state.get("run_id")) from None
            raise

    return asyncio.run(guarded())


def _interrupt(task: asyncio.Task[Any], state: dict[str, Any], signum: int) -> None:
    if "signal" not in state:
        state["signal"] = signum
        task.cancel()


async def import_once(settings: Settings, *, live: bool, state: dict[str, Any]) -> ImportRun:
    """Import the sources file's feeds (or the stored ones) once and return the finished run."""
    sources = load_sources(settings.sources) if settings.sources else None  # before any server starts
    async with Runtime(settings, workers=True) as runtime:
        try:
            ctx = runtime.ctx
            if sources is not None:  # exactly the file's feeds
                feeds = [f for f in await ctx.store.sync_feeds(sources) if f.enabled]
            else:  # the stored feeds, as the dashboard left them; the built-in list seeds an empty db
                feeds = await _stored_feeds(ctx.store)
            await _wait_for_busy(ctx, feeds)
            after = await ctx.events.last_id()
            run = await start_run(ctx, feeds, Trigger.CLI)
            state["run_id"] = run.run_id
            return await _follow(ctx, run, after, live=live)
        except asyncio.CancelledError:
            runtime.stop_quickly()  # give the jobs back now rather than after the job time limit
            raise


async def _stored_feeds(store: JobStore) -> list[Feed]:
    if not await store.list_feeds():
        await store.sync_feeds(load_sources(None))
    return await store.list_feeds(enabled_only=True)


async def _wait_for_busy(ctx: ImportContext, feeds: list[Feed]) -> None:
    """Let runs still importing some of ``feeds`` finish first, saying so."""
    busy = await busy_runs(ctx, [f.id for f in feeds])
    for run in {r.run_id: r for r in busy.values()}.values():
        mine = sum(1 for r in busy.values() if r.run_id == run.run_id)
        ago = duration_text((utcnow() - run.started_at).total_seconds())
        _say(
            f"waiting for run {run.run_id} (started {ago} ago) to finish first: it is still "
            f"importing {mine} of these feeds"
        )
        after = await ctx.events.last_id()
        await wait_for_run(ctx, run.run_id, after, on_idle=_StallReporter(ctx).report)


async def _follow(ctx: ImportContext, run: ImportRun, after: str, *, live: bool) -> ImportRun:
    reporter = _StallReporter(ctx)
    if not live:
        return await wait_for_run(ctx, run.run_id, after, reporter.moved, on_idle=reporter.report)
    view = _LiveView(run)
    console = Console(stderr=True)
    with Live(view.render(), console=console, refresh_per_second=8, transient=True) as screen:

        def on_event(event: Event) -> None:
            reporter.moved(event)
            view.apply(event)
            screen.update(view.render())

        return await wait_for_run(ctx, run.run_id, after, on_event, on_idle=reporter.report)


class _StallReporter:
    """Says what a run waits for once nothing has moved for ``STALL_REPORT_S`` (and again each time
    that much more passes in silence)."""

    def __init__(self, ctx: ImportContext) -> None:
        self.ctx = ctx
        self.last_move = self.last_report = time.monotonic()

    def moved(self, event: Event) -> None:
        self.last_move = time.monotonic()

    async def report(self, run: ImportRun) -> None:
        now = time.monotonic()
        if now - max(self.last_move, self.last_report) < STALL_REPORT_S:
            return
        self.last_report = now
        waiting = [e for e in run.feeds if not e.status.is_final]
        quiet = duration_text(now - self.last_move)
        lines = [f"run {run.run_id}: nothing moved for {quiet}; waiting for {len(waiting)} feeds:"]
        lines += [f"  {e.name}: {await why_open(self.ctx, e)}" for e in waiting[:10]]
        if len(waiting) > 10:
            lines.append(f"  … and {len(waiting) - 10} more")
        _say("\n".join(lines))


class _LiveView:
    """Each feed's status and counts so far, fed by events."""

    def __init__(self, run: ImportRun) -> None:
        self.entries: dict[str, ImportEntry] = {e.id: e for e in run.feeds}

    def apply(self, event: Event) -> None:
        entry = self.entries.get(getattr(event, "entry_id", ""))
        if entry is None:
            return
        if isinstance(event, EntryChanged):
            changes: dict[str, Any] = {"status": EntryStatus(event.status)}
            if changes["status"].is_final:
                changes.update(new=event.new, updated=event.updated, unchanged=event.unchanged)
                changes["failed"] = event.failed
            self.entries[entry.id] = entry.model_copy(update=changes)
        elif isinstance(event, BatchProcessed):
            counts = {
                k: getattr(entry, k) + getattr(event, k) for k in ("new", "updated", "unchanged", "failed")
            }
            self.entries[entry.id] = entry.model_copy(update=counts)

    def render(self) -> Text:
        return Text(progress(list(self.entries.values()), terminal_width()))


def _say(message: str) -> None:
    """A line for the person running the command, on stderr (stdout may carry the JSON)."""
    typer.echo(message, err=True)

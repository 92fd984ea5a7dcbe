"""Reading the change log the way a job board syncs from it: page after page by cursor
(``JobStore.list_changes``), following new changes as they come, and printing them for a person.

The log's promise (the store's contract): cursors increase and changes become visible in cursor
order, so a reader that keeps the last cursor it handled and asks for what comes after it misses
nothing and gets nothing twice, even across its own restarts.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Mapping
from typing import Any

from jobimporter.models import ChangeKind, JobChange
from jobimporter.store.base import JobStore

_KIND_WIDTH = max(len(kind.value) for kind in ChangeKind)


async def pages(store: JobStore, after: int, *, limit: int = 100) -> AsyncIterator[list[JobChange]]:
    """The pages of changes after ``after`` that are there now, oldest first."""
    while page := await store.list_changes(after=after, limit=limit):
        yield page
        after = page[-1].cursor
        if len(page) < limit:
            return


async def follow(
    store: JobStore, after: int, *, limit: int = 100, poll_s: float = 1.0
) -> AsyncIterator[list[JobChange]]:
    """Every page of changes after ``after``, then each new one as it is appended (asking again every
    ``poll_s`` while nothing new is there); runs until cancelled."""
    while True:
        async for page in pages(store, after, limit=limit):
            yield page
            after = page[-1].cursor
        await asyncio.sleep(poll_s)


def change_json(change: JobChange) -> dict[str, Any]:
    """A change as ``changes --json`` prints it and ``GET /api/changes`` returns it."""
    return change.model_dump(mode="json")


async def titles(store: JobStore, page: list[JobChange]) -> dict[str, str]:
    """The current title of each job in ``page`` (purged jobs have none)."""
    found: dict[str, str] = {}
    for key in dict.fromkeys(change.job_key for change in page):
        try:
            found[key] = (await store.get_job(key))["record"].title
        except LookupError:
            continue
    return found


def change_lines(change: JobChange, titles: Mapping[str, str], width: int) -> list[str]:
    """``#12  2026-12-01 21:32:20  updated      Senior Engineer (title, salary_min)``, wrapped to ``width``."""
    what = titles.get(change.job_key, f"job {change.job_key} (deleted)")
    detail = ", ".join(change.fields) if change.fields else change.reason
    text = f"{what} ({detail})" if detail else what
    head = f"#{change.cursor}  {change.at:%Y-%m-%d %H:%M:%S}  {change.kind.value:<{_KIND_WIDTH}}  "
    indent = " " * min(len(head), width // 2)
    return textwrap.wrap(
        text, width, initial_indent=head, subsequent_indent=indent, break_on_hyphens=False
    ) or [head.rstrip()]

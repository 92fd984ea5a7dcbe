"""``/api/jobs``: job search (text, feed, type, category, location, employment type, workplace, status,
posted date), one job, and its changes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, cast, get_args

from fastapi import APIRouter

from jobimporter.api.deps import PagingDep, StoreDep
from jobimporter.api.schemas import JobDetail, JobOut, ListPage
from jobimporter.models import EmploymentType, JobChange, JobStatus, Workplace
from jobimporter.store.base import JobQuery, JobSort

router = APIRouter(prefix="/api/jobs", tags=["jobs"])

JobSortParam = Literal[
    "last_changed", "-last_changed", "published_at", "-published_at", "first_seen", "-first_seen",
    "last_seen", "-last_seen", "title", "-title",
]  # fmt: skip
assert {s.lstrip("-") for s in get_args(JobSortParam)} == set(get_args(JobSort))


@router.get("", response_model=ListPage[JobOut])
async def search_jobs(
    store: StoreDep,
    paging: PagingDep,
    q: str | None = None,
    feed_id: str | None = None,
    job_type: str | None = None,
    category: str | None = None,
    location: str | None = None,
    employment_type: EmploymentType | None = None,
    workplace: Workplace | None = None,
    status: Literal["active", "expired", "all"] = "active",
    since: datetime | None = None,
    until: datetime | None = None,
    sort: JobSortParam = "-last_changed",
) -> ListPage[JobOut]:
    """``q``: case-insensitive text in title, company or description; ``job_type``/``category``/
    ``location``/``employment_type``: exact element of the job's list; ``workplace``: remote, hybrid or
    onsite; ``status``: active (the default), expired or all; ``since <= posted < until`` (published,
    else first seen)."""
    query = JobQuery(
        status=None if status == "all" else JobStatus(status),
        q=q.strip() or None if q else None,
        feed_id=feed_id,
        job_type=job_type,
        category=category,
        location=location,
        employment_type=employment_type,
        workplace=workplace,
        since=since,
        until=until,
        sort=cast(JobSort, sort.lstrip("-")),
        descending=sort.startswith("-"),
    )
    found = await store.list_jobs(limit=paging.page_size, offset=paging.offset, query=query)
    return ListPage[JobOut](
        items=[JobOut.of(job) for job in found],
        total=await store.count_jobs(query=query),
        page=paging.page,
        page_size=paging.page_size,
    )


@router.get("/{key}/changes", response_model=list[JobChange])
async def job_changes(key: str, store: StoreDep) -> list[JobChange]:
    """The job's changes, oldest first (at most the first 1,000); 404 for a job not stored."""
    await store.get_job(key)
    return await store.list_changes(job_key=key, limit=1000)


@router.get("/{key}", response_model=JobDetail)
async def get_job(key: str, store: StoreDep) -> JobDetail:
    return JobDetail.of(await store.get_job(key))

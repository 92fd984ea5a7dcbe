"""``/api/failed``: the dead letters (jobs that failed for good): list, retry one or all, discard."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status

from jobimporter.api.deps import UNPROCESSABLE, AdminDep, DeadLettersDep, PagingDep
from jobimporter.api.schemas import ListPage, Retried
from jobimporter.deadletters import DeadLetter, DeadLetters

router = APIRouter(prefix="/api/failed", tags=["failed"])


def _check_queue(letters: DeadLetters, queue: str | None) -> None:
    if queue is not None and queue not in letters.queue_names():
        names = ", ".join(letters.queue_names())
        raise HTTPException(UNPROCESSABLE, f"queue must be one of: {names}")


@router.get("", response_model=ListPage[DeadLetter])
async def list_failed(
    letters: DeadLettersDep, paging: PagingDep, queue: str | None = None
) -> ListPage[DeadLetter]:
    """Queue by queue (feeds, batches, schedule), newest failure first within each."""
    _check_queue(letters, queue)
    found = await letters.letters(queue, offset=paging.offset, limit=paging.page_size)
    return ListPage[DeadLetter](
        items=found,
        total=await letters.count(queue),
        page=paging.page,
        page_size=paging.page_size,
    )


@router.post("/retry", status_code=status.HTTP_202_ACCEPTED, response_model=Retried)
async def retry_all(letters: DeadLettersDep, _: AdminDep, queue: str | None = None) -> Retried:
    """Retry every dead letter (of ``queue`` when given)."""
    _check_queue(letters, queue)
    return Retried(retried=await letters.retry_all(queue))


@router.get("/{letter_id}", response_model=DeadLetter)
async def get_failed(letter_id: str, letters: DeadLettersDep) -> DeadLetter:
    return await letters.get(letter_id)


@router.post("/{letter_id}/retry", status_code=status.HTTP_202_ACCEPTED, response_model=Retried)
async def retry_one(letter_id: str, letters: DeadLettersDep, _: AdminDep) -> Retried:
    """Retry one dead letter; a feed job's import entry is reopened first so the retry counts."""
    return Retried(retried=await letters.retry(letter_id))


@router.delete("/{letter_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def discard(letter_id: str, letters: DeadLettersDep, _: AdminDep) -> Response:
    """Remove a dead letter; the history is left as it is."""
    await letters.discard(letter_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

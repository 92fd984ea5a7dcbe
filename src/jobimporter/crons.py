"""Cron expressions, in one place: 5 fields, or 6 with seconds first (BullMQ's convention, e.g.
``*/10 * * * * *``), always read in UTC."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from croniter import croniter


def _with_seconds(expression: str) -> bool:
    return len(expression.split()) == 6


def valid_cron(expression: str) -> str:
    """``expression`` stripped, or ``ValueError`` when it is not a cron expression."""
    expression = " ".join(expression.split())
    if not expression or not croniter.is_valid(expression, second_at_beginning=_with_seconds(expression)):
        raise ValueError(f"not a cron expression: {expression!r}")
    return expression


def next_slot(expression: str, after: datetime) -> datetime:
    """The first slot of ``expression`` strictly after ``after`` (timezone-aware)."""
    slots = croniter(expression, after, second_at_beginning=_with_seconds(expression))
    slot: datetime = slots.get_next(datetime)
    return slot


def first_slot(expressions: Iterable[str], after: datetime) -> datetime:
    """The earliest slot of any of ``expressions`` after ``after``."""
    return min(next_slot(expression, after) for expression in expressions)


def fires_at(expression: str, slot: datetime) -> bool:
    """Whether ``slot`` is one of ``expression``'s slots. (croniter ignores seconds for a 5-field
    expression, so ``0 * * * *`` would otherwise match every second of its minute.)"""
    if not _with_seconds(expression) and (slot.second or slot.microsecond):
        return False
    return bool(croniter.match(expression, slot, second_at_beginning=_with_seconds(expression)))

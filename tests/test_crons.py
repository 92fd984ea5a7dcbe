"""Cron expressions: validation, the next slot, and whether a slot is one of an expression's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobimporter.crons import fires_at, first_slot, next_slot, valid_cron
from jobimporter.models import Feed
from jobimporter.scheduler import due_feeds

T = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)


def at(minute: int, second: int = 0) -> datetime:
    return T.replace(minute=minute, second=second)


@pytest.mark.parametrize("text", ["", "hourly", "61 * * * *", "* * * *", "* * * * * * * *"])
def test_a_bad_expression_is_refused_with_its_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a cron expression"):
        valid_cron(text)


def test_a_good_expression_comes_back_with_single_spaces() -> None:
    assert valid_cron("  0   6 * * *  ") == "0 6 * * *"
    assert valid_cron("*/10 * * * * *") == "*/10 * * * * *"  # seconds first, as BullMQ writes them


def test_slots_of_five_and_six_field_expressions() -> None:
    assert next_slot("*/15 * * * *", at(0)) == at(15)  # strictly after
    assert next_slot("*/10 * * * * *", at(0, 5)) == at(0, 10)
    assert first_slot(["0 * * * *", "*/20 * * * *", "50 * * * *"], at(5)) == at(20)


def test_a_five_field_expression_fires_only_at_second_zero() -> None:
    assert fires_at("0 * * * *", at(0))
    assert not fires_at("0 * * * *", at(0, 2))  # croniter alone would say yes
    assert not fires_at("*/15 * * * *", at(16))
    assert fires_at("*/2 * * * * *", at(7, 4)) and not fires_at("*/2 * * * * *", at(7, 5))


def test_the_feeds_due_at_a_slot_are_those_whose_own_or_the_default_cron_fires() -> None:
    def feed(name: str, cron: str | None) -> Feed:
        return Feed(id=f"feed_{name}", name=name, url=f"https://{name}.example/", cron=cron)

    hourly, quarter, six = feed("hourly", None), feed("quarter", "*/15 * * * *"), feed("six", "0 6 * * *")
    feeds = [hourly, quarter, six]
    assert due_feeds(feeds, at(0), "0 * * * *") == [hourly, quarter]
    assert due_feeds(feeds, at(15), "0 * * * *") == [quarter]
    assert due_feeds(feeds, at(7), "0 * * * *") == []
    assert due_feeds(feeds, T.replace(hour=6), "0 * * * *") == feeds

"""Prometheus metrics, collected **at scrape time** from the store and the queues (nothing is counted
in this process, so every API process reports the same figures, and a restart loses nothing).

``GET /metrics`` awaits ``ImporterMetrics.refresh()`` (a few aggregate queries and the BullMQ counts),
then prometheus-client renders the snapshot through the collector. Families:

- ``jobimporter_up{component="database"|"redis"}``: 1 when that part answered this scrape; a part that
  did not leaves its families out instead of failing the scrape;
- ``jobimporter_runs_total{trigger,status}``: finished runs (counter); ``jobimporter_runs_running``;
- ``jobimporter_items_total{feed_id,outcome}``: items of finished entries by outcome (new, updated,
  unchanged, failed);
- ``jobimporter_feed_imports_total{feed_id,status}``: finished entries by status;
  ``jobimporter_feed_fetch_errors_total{feed_id}``: failed ones;
- ``jobimporter_feed_median_fetch_seconds{feed_id}`` and ``jobimporter_feed_success_ratio{feed_id}``:
  over each feed's newest 20 finished entries (``JobStore.feed_health``);
- ``jobimporter_queue_jobs{queue,state}``: BullMQ jobs by state;
- the standard ``process_*`` and ``python_info`` families.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from jobimporter.errors import QueueError, StoreError
from jobimporter.models import EntryStatus, RunStatus
from jobimporter.queue import Queues
from jobimporter.store.base import FeedHealth, HistoryTotals, JobStore

log = logging.getLogger(__name__)

OUTCOMES = ("new", "updated", "unchanged", "failed")


@dataclass(slots=True)
class _Snapshot:
    totals: HistoryTotals | None = None
    health: dict[str, FeedHealth] = field(default_factory=dict)
    queues: dict[str, dict[str, int]] | None = None


class ImporterMetrics(Collector):
    """A collector over the latest snapshot, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self._snapshot = _Snapshot()
        self.registry = CollectorRegistry()
        self.registry.register(self)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    async def render(self, store: JobStore, queues: Queues) -> bytes:
        """Refresh the snapshot and render the Prometheus text format."""
        await self.refresh(store, queues)
        return generate_latest(self.registry)

    async def refresh(self, store: JobStore, queues: Queues) -> None:
        snapshot = _Snapshot()
        try:
            snapshot.totals = await store.history_totals()
            snapshot.health = await store.feed_health()
        except StoreError as exc:
            log.warning("metrics: database figures left out: %s", exc)
            snapshot.totals = None
        try:
            snapshot.queues = await queues.counts()
        except (RedisError, QueueError) as exc:
            log.warning("metrics: queue figures left out: %s", exc)
        self._snapshot = snapshot

    def describe(self) -> Iterable[Metric]:
        return []  # names are known only from data; nothing to check at registration

    def collect(self) -> Iterable[Metric]:
        snapshot = self._snapshot
        up = GaugeMetricFamily(
            "jobimporter_up", "Whether the part answered this scrape.", labels=["component"]
        )
        up.add_metric(["database"], 0 if snapshot.totals is None else 1)
        up.add_metric(["redis"], 0 if snapshot.queues is None else 1)
        yield up
        if snapshot.totals is not None:
            yield from _history(snapshot.totals)
            yield from _health(snapshot.health)
        if snapshot.queues is not None:
            yield _queue_depth(snapshot.queues)


def _history(totals: HistoryTotals) -> Iterator[Metric]:
    runs = CounterMetricFamily("jobimporter_runs", "Finished import runs.", labels=["trigger", "status"])
    running = GaugeMetricFamily("jobimporter_runs_running", "Import runs still running.")
    open_runs = 0
    for tally in totals["runs"]:
        if tally["status"] is RunStatus.RUNNING:
            open_runs += tally["runs"]
        else:
            runs.add_metric([tally["trigger"].value, tally["status"].value], tally["runs"])
    running.add_metric([], open_runs)
    yield runs
    yield running
    yield from _entries(totals)


def _entries(totals: HistoryTotals) -> Iterator[Metric]:
    items = CounterMetricFamily(
        "jobimporter_items", "Items of finished feed imports by outcome.", labels=["feed_id", "outcome"]
    )
    imports = CounterMetricFamily(
        "jobimporter_feed_imports", "Finished feed imports by status.", labels=["feed_id", "status"]
    )
    errors = CounterMetricFamily(
        "jobimporter_feed_fetch_errors", "Feed imports that failed.", labels=["feed_id"]
    )
    for tally in totals["entries"]:
        if not tally["status"].is_final:
            continue
        feed_id = tally["feed_id"]
        imports.add_metric([feed_id, tally["status"].value], tally["entries"])
        if tally["status"] is EntryStatus.FAILED:
            errors.add_metric([feed_id], tally["entries"])
        for outcome in OUTCOMES:
            items.add_metric([feed_id, outcome], tally[outcome])  # type: ignore[literal-required]
    yield from (items, imports, errors)


def _health(health: dict[str, FeedHealth]) -> Iterator[Metric]:
    median = GaugeMetricFamily(
        "jobimporter_feed_median_fetch_seconds",
        "Median download time over the feed's newest 20 finished imports.",
        labels=["feed_id"],
    )
    ratio = GaugeMetricFamily(
        "jobimporter_feed_success_ratio",
        "Share of completed or not-modified imports among the feed's newest 20 finished ones.",
        labels=["feed_id"],
    )
    for feed_id, h in sorted(health.items()):
        if h["median_fetch_s"] is not None:
            median.add_metric([feed_id], h["median_fetch_s"])
        if h["success_rate"] is not None:
            ratio.add_metric([feed_id], h["success_rate"])
    yield median
    yield ratio


def _queue_depth(queues: dict[str, dict[str, int]]) -> Metric:
    depth = GaugeMetricFamily("jobimporter_queue_jobs", "BullMQ jobs by state.", labels=["queue", "state"])
    for queue, states in sorted(queues.items()):
        for state, count in sorted(states.items()):
            depth.add_metric([queue, state], count)
    return depth

"""Demo traffic's sender: puts the plan of infra.traffic on an EventBridge bus, in time order.

Apart from the pure, seeded plan (infra.traffic) that it walks: see that module's docstring for
how Lambda events get `meta.incoming.id` and how `speed` scales the waiting.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from infra.instrument import event_detail
from infra.traffic import (
    BATCH_SIZE,
    DEFAULT_ACCOUNT,
    RETRIES,
    SLACK_SECONDS,
    STATUS_SOURCE,
    JobPlan,
    PlannedEvent,
    TrafficError,
    TrafficStats,
    events_in_order,
    iter_jobs,
)  # fmt: skip

logger = logging.getLogger(__name__)


class _Sender:
    """Puts planned events in batches, building Lambda events once their trigger has an id."""

    def __init__(
        self,
        *,
        client: Any,
        bus_name: str,
        account: str,
        region: str,
        status_events: bool,
        stats: TrafficStats,
        on_progress: Callable[[int, int], None] | None,
    ) -> None:
        self.client, self.bus_name = client, bus_name
        self.account, self.region = account, region
        self.status_events, self.stats, self.on_progress = status_events, stats, on_progress
        self.batch: list[tuple[PlannedEvent, dict[str, Any]]] = []
        self.sent: dict[int, dict[str, dict[str, Any]]] = {}  # job -> key -> envelope as sent
        self.remaining: dict[int, int] = {}
        self.last_error: dict[str, Any] = {}

    def admit(self, plan: JobPlan) -> None:
        self.sent[plan.index] = {}
        self.remaining[plan.index] = len(plan.events)
        self.stats.jobs_started += 1

    def add(self, event: PlannedEvent) -> None:
        if event.source == STATUS_SOURCE and not self.status_events:
            self._settle(event)
            return
        if event.trigger and event.trigger not in self.sent[event.job]:
            self.flush()  # the trigger is in this batch: its id is not known yet
        self.batch.append((event, self._entry(event)))
        if len(self.batch) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        pending, self.batch = self.batch, []
        for attempt in range(1, RETRIES + 1):
            if not pending:
                break
            pending = self._put(pending)
            if pending:
                time.sleep(0.2 * attempt)
        if pending:
            raise TrafficError(
                f"EventBridge refused {len(pending)} events {RETRIES} times, last with "
                f"{self.last_error.get('ErrorCode')}: {self.last_error.get('ErrorMessage')}"
            )
        if self.on_progress:
            self.on_progress(self.stats.events_sent, self.stats.jobs_done)

    def _entry(self, event: PlannedEvent) -> dict[str, Any]:
        detail = event.detail
        if event.fn:
            incoming = self.sent[event.job][event.trigger]
            detail = event_detail(
                incoming, event.detail_type, event.detail, source=event.source, fn=event.fn,
                clock=event.time.timestamp,
            )  # fmt: skip
        return {
            "Time": event.time,
            "Source": event.source,
            "DetailType": event.detail_type,
            "Detail": json.dumps(detail),
            "Resources": list(event.resources),
            "EventBusName": self.bus_name,
        }

    def _put(self, batch: list[tuple[PlannedEvent, dict]]) -> list[tuple[PlannedEvent, dict]]:
        """Put one batch; returns the entries to try again."""
        response = self.client.put_events(Entries=[entry for _, entry in batch])
        retry = []
        for (event, entry), result in zip(batch, response["Entries"], strict=True):
            if "EventId" in result:
                self._record(event, entry, result["EventId"])
            elif event.source == STATUS_SOURCE:
                self._reject_status(event, result)
            else:
                logger.warning("put %s failed: %s", event.detail_type, result)
                self.last_error = result
                retry.append((event, entry))
        return retry

    def _record(self, event: PlannedEvent, entry: dict[str, Any], event_id: str) -> None:
        self.sent[event.job][event.key] = {
            "version": "0",
            "id": event_id,
            "detail-type": event.detail_type,
            "source": event.source,
            "account": self.account,
            "time": event.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": list(event.resources),
            "detail": json.loads(entry["Detail"]),
        }
        self.stats.events_sent += 1
        self._settle(event)

    def _reject_status(self, event: PlannedEvent, result: dict[str, Any]) -> None:
        if not self.stats.status_rejected:
            logger.warning(
                "EventBridge refuses %s events (%s); on real AWS Step Functions sends them itself",
                STATUS_SOURCE,
                result.get("ErrorCode"),
            )
        self.stats.status_rejected += 1
        self._settle(event)

    def _settle(self, event: PlannedEvent) -> None:
        """Count the event as handled; forget a job once all its events are."""
        if event.terminal:
            self.stats.jobs_done += 1
            if event.detail.get("status") == "FAILED":
                self.stats.jobs_failed += 1
        self.remaining[event.job] -= 1
        if not self.remaining[event.job]:
            del self.remaining[event.job], self.sent[event.job]


class _Pacer:
    """Maps simulated offsets to real time: `speed` times faster; 0 or infinite: no waiting."""

    def __init__(self, speed: float, stop_event: threading.Event | None) -> None:
        self.scale = 0.0 if speed <= 0 or speed == float("inf") else 1.0 / speed
        self.stop_event = stop_event
        self.origin = time.monotonic()

    def delay(self, offset: float) -> float:
        return self.origin + offset * self.scale - time.monotonic()

    def wait(self, seconds: float) -> bool:
        """Sleep; False when asked to stop meanwhile."""
        if self.stop_event is not None:
            return not self.stop_event.wait(seconds)
        time.sleep(seconds)
        return True

    def stopped(self) -> bool:
        return self.stop_event is not None and self.stop_event.is_set()


def run_traffic(
    *,
    client: Any,
    bus_name: str = "default",
    jobs: int,
    concurrency: int = 1,
    fail_rate: float = 0.0,
    speed: float = 1.0,
    seed: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    stop_event: threading.Event | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str | None = None,
    start: datetime | None = None,
    status_events: bool = True,
) -> TrafficStats:
    """Put the demo workflow's traffic on `bus_name` with `client` (a boto3 events client).

    `jobs=0` runs until `stop_event` is set. `on_progress(events_sent, jobs_done)` is called after
    every batch. `seed=None` picks one (returned in the stats): reusing a seed reuses execution
    names, so the same seed sent twice to one store lands in the same jobs.
    """
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    stats = TrafficStats(seed=seed)
    region = region or client.meta.region_name
    sender = _Sender(
        client=client,
        bus_name=bus_name,
        account=account,
        region=region,
        status_events=status_events,
        stats=stats,
        on_progress=on_progress,
    )
    plans = iter_jobs(
        seed=seed,
        fail_rate=fail_rate,
        start=_utc(start or datetime.now(UTC)),
        jobs=jobs or None,
        concurrency=concurrency,
        account=account,
        region=region,
    )
    _send_all(_admitting(plans, sender), sender, _Pacer(speed, stop_event))
    return stats


def _utc(moment: datetime) -> datetime:
    """An aware UTC datetime (a naive one is taken as UTC already)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _admitting(plans: Iterator[JobPlan], sender: _Sender) -> Iterator[JobPlan]:
    for plan in plans:
        sender.admit(plan)
        yield plan


def _send_all(plans: Iterator[JobPlan], sender: _Sender, pacer: _Pacer) -> None:
    try:
        for event in events_in_order(plans):
            if pacer.stopped():
                break
            delay = pacer.delay(event.offset)
            if delay > SLACK_SECONDS:
                sender.flush()
                if not pacer.wait(delay):
                    break
            sender.add(event)
    finally:
        sender.flush()

"""Worker health: each consume_events process's heartbeat, and what the pages make of it.

The worker's loop only notes, in memory, when it polled and how many messages it got
(`Heartbeat.polled`: no I/O on the ingest path).  A thread of the worker writes that to the
process's WorkerHeartbeat row every EDOBS_HEARTBEAT_SECONDS, and every BACKLOG_SECONDS asks
SQS for ApproximateNumberOfMessages.  A worker that stops cleanly deletes its row.

Health (GET /api/health), in this order:
- `down`: no worker polled within `stale_after` (three long-poll waits, at least three
  heartbeats): none running, or each stuck;
- `degraded`: the backlog grew over the last minute (BACKLOG_GROWTH more messages, never
  shrinking in between, over at least three samples): the workers do not keep up;
- `ok`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection

from events.domain.envelope import iso
from events.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

BACKLOG_SECONDS = 10.0
BACKLOG_WINDOW = 60  # seconds of samples that say whether the backlog grows
BACKLOG_GROWTH = 10  # messages
SAMPLES_KEPT = 12
FORGET_AFTER = timedelta(hours=1)  # a crashed worker's row is deleted after this


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """What the worker's loop did last (set by it), written by HeartbeatThread."""

    def __init__(self, *, poll_seconds: int) -> None:
        self.poll_seconds = poll_seconds
        self.started_at = datetime.now(UTC)
        self.last_poll_at: datetime | None = None
        self.last_batch_at: datetime | None = None
        self.last_batch_size = 0

    def polled(self, received: int) -> None:
        now = datetime.now(UTC)
        self.last_poll_at = now
        if received:
            self.last_batch_at, self.last_batch_size = now, received

    def start(self, *, client, url: str) -> HeartbeatThread | None:
        """The writer thread, or None when EDOBS_HEARTBEAT_SECONDS is 0."""
        if settings.EDOBS_HEARTBEAT_SECONDS <= 0:
            return None
        thread = HeartbeatThread(self, client=client, url=url)
        thread.start()
        return thread


class HeartbeatThread(threading.Thread):
    def __init__(self, beat: Heartbeat, *, client, url: str) -> None:
        super().__init__(name="edobs-heartbeat", daemon=True)
        self.beat, self.client, self.url = beat, client, url
        self.worker = worker_id()
        self.stopping = threading.Event()
        self.samples: list[list[int]] = []
        self.backlog_at: datetime | None = None
        self.next_sample = 0.0

    def run(self) -> None:
        try:
            self._forget_dead()
            while not self.stopping.is_set():
                self._sample_backlog()
                self._write()
                self.stopping.wait(settings.EDOBS_HEARTBEAT_SECONDS)
            self._guard("delete", WorkerHeartbeat.objects.filter(worker=self.worker).delete)
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)

    def _sample_backlog(self) -> None:
        if time.monotonic() < self.next_sample:
            return
        self.next_sample = time.monotonic() + BACKLOG_SECONDS
        attributes = self._guard("sample the backlog", self._queue_attributes)
        if attributes is None:
            return
        self.backlog_at = datetime.now(UTC)
        sample = [int(self.backlog_at.timestamp()), int(attributes["ApproximateNumberOfMessages"])]
        self.samples = [*self.samples, sample][-SAMPLES_KEPT:]

    def _queue_attributes(self) -> dict:
        return self.client.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]

    def _write(self) -> None:
        beat = self.beat
        values = {
            "started_at": beat.started_at, "seen_at": datetime.now(UTC),
            "last_poll_at": beat.last_poll_at, "last_batch_at": beat.last_batch_at,
            "last_batch_size": beat.last_batch_size, "poll_seconds": beat.poll_seconds,
            "backlog": self.samples[-1][1] if self.samples else None,
            "backlog_at": self.backlog_at, "backlog_samples": self.samples,
        }  # fmt: skip
        self._guard(
            "write the heartbeat",
            lambda: WorkerHeartbeat.objects.update_or_create(worker=self.worker, defaults=values),
        )

    def _forget_dead(self) -> None:
        old = WorkerHeartbeat.objects.filter(seen_at__lt=datetime.now(UTC) - FORGET_AFTER)
        self._guard("forget dead workers", old.delete)

    def _guard(self, what: str, action):
        """A heartbeat that fails is logged and tried again next time, never fatal."""
        try:
            return action()
        except Exception as exc:
            logger.warning("could not %s: %s", what, exc)
            connection.close()  # a broken connection is reopened next time
            return None


# ---- reading (GET /api/health) -----------------------------------------------------------------


def stale_after(poll_seconds: int) -> timedelta:
    """How long a working worker can go without polling: three long-polls or heartbeats."""
    return timedelta(seconds=max(3 * poll_seconds, 3 * settings.EDOBS_HEARTBEAT_SECONDS, 10))


def worker_alive(row: WorkerHeartbeat, now: datetime) -> bool:
    polled = row.last_poll_at or row.started_at
    return now - polled <= stale_after(row.poll_seconds) and now - row.seen_at <= stale_after(0)


def backlog_growing(samples: list[list[int]], now: datetime) -> bool:
    """Whether the backlog grew by BACKLOG_GROWTH over the last minute without shrinking."""
    recent = [n for at, n in samples if now.timestamp() - at <= BACKLOG_WINDOW]
    if len(recent) < 3:
        return False
    steady = all(later >= earlier for earlier, later in zip(recent, recent[1:], strict=False))
    return steady and recent[-1] - recent[0] >= BACKLOG_GROWTH


def health_report(now: datetime | None = None) -> dict:
    now = now or datetime.now(UTC)
    rows = list(WorkerHeartbeat.objects.order_by("worker"))
    alive = [row for row in rows if worker_alive(row, now)]
    sampled = [row for row in alive if row.backlog_at is not None]
    newest = max(sampled, key=lambda row: row.backlog_at, default=None)
    growing = newest is not None and backlog_growing(newest.backlog_samples, now)
    status = "down" if not alive else "degraded" if growing else "ok"
    return {
        "status": status,
        "workers": [_worker(row, row in alive) for row in rows],
        "backlog": newest.backlog if newest else None,
        "backlog_growing": growing,
        "checked_at": iso(now),
    }


def newest_heartbeat_age(now: datetime | None = None) -> float | None:
    """Seconds since any worker last wrote its heartbeat (None: no worker ever did, or all were
    forgotten). Read when /metrics is scraped, so a dead worker shows as a growing age."""
    newest = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    if newest is None:
        return None
    return max(0.0, ((now or datetime.now(UTC)) - newest).total_seconds())


def _worker(row: WorkerHeartbeat, alive: bool) -> dict:
    return {
        "worker": row.worker, "alive": alive, "started_at": iso(row.started_at),
        "last_poll_at": iso(row.last_poll_at), "last_batch_at": iso(row.last_batch_at),
        "last_batch_size": row.last_batch_size, "poll_seconds": row.poll_seconds,
        "backlog": row.backlog, "backlog_at": iso(row.backlog_at), "seen_at": iso(row.seen_at),
    }  # fmt: skip

"""The ingest loop: long-poll SQS, store, delete what is stored or quarantined, repeat.

Used by `manage.py consume_events` and, in the single-process demo, by a thread of the server.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from django.db import close_old_connections

from events.aws import queue_url, sqs_client
from events.ingest.health import Heartbeat
from events.ingest.services import InboundMessage, delivery_failure_record, event_ingest
from events.stores import StoreUnavailable, get_store

logger = logging.getLogger(__name__)

BATCH_SIZE = 10  # SQS's maximum for ReceiveMessage and DeleteMessageBatch
DELETE_ATTEMPTS = 5
MAX_BACKOFF_SECONDS = 30.0
DB_CHECK_SECONDS = 5.0  # how often a healthy worker drops expired database connections
DELETES_AHEAD = 4  # stored batches whose delete may still be on its way before receiving waits


@dataclass
class Totals:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0  # duplicates with other content, kept as EventConflict rows
    quarantined: int = 0
    store_failures: int = 0
    delete_failures: int = 0
    publish_failures: int = 0
    errors: int = 0  # unexpected exceptions the loop survived (logged with their traceback)
    started: float = field(default_factory=time.monotonic)

    def add(self, counts: Counter) -> None:
        self.stored += counts["stored"]
        self.duplicates += counts["duplicate"]
        self.conflicts += counts["conflict"]
        self.quarantined += counts["quarantined"]

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> str:
        rate = self.received / self.seconds if self.seconds > 0 else 0.0
        return (
            f"received={self.received} stored={self.stored} duplicates={self.duplicates} "
            f"quarantined={self.quarantined} conflicts={self.conflicts} "
            f"store_failures={self.store_failures} "
            f"publish_failures={self.publish_failures} delete_failures={self.delete_failures} "
            f"errors={self.errors} seconds={self.seconds:.1f} ({rate:.0f} messages/s)"
        )


class Worker:
    def __init__(
        self, *, client=None, url: str | None = None, wait_seconds: int = 20,
        stop: threading.Event | None = None, progress_every: float = 10.0,
    ) -> None:  # fmt: skip
        self.client = client or sqs_client()
        self.url = url or queue_url(self.client)
        self.wait_seconds = wait_seconds
        self.stop = stop or threading.Event()
        self.totals = Totals()
        self.progress_every = progress_every
        self._backoff = 0.0
        self._last_progress = time.monotonic()
        self._next_db_check = 0.0
        self._deleter = Deleter(self.delete)
        self.heartbeat = Heartbeat(poll_seconds=wait_seconds)  # written off the loop's path

    def run(self, *, once: bool = False) -> Totals:
        """Poll until stopped; with `once`, until a receive finds the queue empty."""
        logger.info("consuming %s", self.url)
        beat = None if once else self.heartbeat.start(client=self.client, url=self.url)
        try:
            while not self.stop.is_set():
                try:
                    if self._backoff and not self._store_ready():
                        continue
                    handled = self.poll(wait_seconds=1 if once else self.wait_seconds)
                except Exception as exc:  # never die of one batch (or one failed receive)
                    self._on_error(exc)
                    continue
                if once and handled == 0 and self._backoff == 0:
                    break
                self._log_progress()
        finally:
            self.close()
            if beat is not None:
                beat.stop()
        return self.totals

    def close(self) -> None:
        """Wait for the deletes still on their way (callers of poll() call this at the end)."""
        self._deleter.close()

    def _store_ready(self) -> bool:
        """After a store failure, ask the store (if it can tell) before taking more messages.

        Receiving while the store is down would only raise every message's receive count
        until a long outage pushed good events into the dead-letter queue.
        """
        ping = getattr(get_store(), "ping", None)
        if ping is None:
            return True
        self._refresh_connections()
        try:
            ping()
        except StoreUnavailable as exc:
            self._back_off(exc)
            return False
        return True

    def poll(self, *, wait_seconds: int) -> int:
        """One receive-store-delete round; returns how many messages it received."""
        messages = self._receive(wait_seconds)
        if messages:
            self._handle(messages)
        return len(messages)

    def _receive(self, wait_seconds: int) -> list[dict]:
        response = self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=BATCH_SIZE,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        )
        messages = response.get("Messages", [])
        self.totals.received += len(messages)
        self.heartbeat.polled(len(messages))
        return messages

    def _handle(self, messages: list[dict]) -> None:
        self._refresh_connections()
        inbound = [InboundMessage.from_sqs(message) for message in messages]
        try:
            report = event_ingest(messages=inbound)
        except StoreUnavailable as exc:
            delivery_failure_record(messages=inbound, error=exc)
            self._back_off(exc)
            return
        except Exception as exc:  # a bug, or a failure no one foresaw: the batch is redelivered
            delivery_failure_record(messages=inbound, error=exc)
            self._on_error(exc)
            return
        self._backoff = 0.0
        self.totals.add(report.counts)
        self.totals.publish_failures += report.publish_failures
        self._deleter.submit(messages)

    def _refresh_connections(self) -> None:
        """Drop broken or expired connections: right after a store failure, else every few s.

        Not every batch: with CONN_MAX_AGE=0 (SQLite) that reopened the database each time.
        """
        now = time.monotonic()
        if self._backoff or now >= self._next_db_check:
            self._next_db_check = now + DB_CHECK_SECONDS
            close_old_connections()

    def _back_off(self, exc: Exception) -> None:
        """Leave the batch for redelivery and wait longer each time the store fails."""
        self.totals.store_failures += 1
        self._backoff = min(MAX_BACKOFF_SECONDS, max(0.5, self._backoff * 2))
        logger.error("store unavailable (%s); retrying in %.1fs", exc, self._backoff)
        self.stop.wait(self._backoff)

    def _on_error(self, exc: Exception) -> None:
        """An unexpected failure: log it with its traceback and back off as for an outage."""
        self.totals.errors += 1
        self._backoff = min(MAX_BACKOFF_SECONDS, max(0.5, self._backoff * 2))
        logger.error("handling a batch failed; retrying in %.1fs", self._backoff, exc_info=exc)
        self.stop.wait(self._backoff)

    def delete(self, messages: list[dict]) -> None:
        """Delete a batch, retrying the entries SQS reports as failed."""
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(messages)
        ]
        for attempt in range(DELETE_ATTEMPTS):
            failed = self._delete_entries(entries)
            if not failed:
                return
            entries = [entry for entry in entries if entry["Id"] in failed]
            time.sleep(0.1 * 2**attempt)
        self.totals.delete_failures += len(entries)
        logger.error("could not delete %d messages; they will be redelivered", len(entries))

    def _delete_entries(self, entries: list[dict]) -> set[str]:
        try:
            response = self.client.delete_message_batch(QueueUrl=self.url, Entries=entries)
        except Exception as exc:  # network or throttling: retry the whole batch
            logger.warning("DeleteMessageBatch failed: %s", exc)
            return {entry["Id"] for entry in entries}
        return {failure["Id"] for failure in response.get("Failed", [])}

    def _log_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress >= self.progress_every:
            self._last_progress = now
            logger.info("progress: %s", self.totals.summary())


class Deleter:
    """Deletes stored batches from SQS in a thread, so the next receive need not wait for it.

    Only batches whose events are stored (or quarantined) are handed over, so the rule holds:
    a delete still on its way when the process dies means a redelivery, which stores nothing
    twice.  With a real queue's round trip this takes one SQS call of two off the batch's path.
    """

    def __init__(self, delete) -> None:
        self.delete = delete
        self.pending: queue.Queue[list[dict] | None] = queue.Queue(maxsize=DELETES_AHEAD)
        self.thread: threading.Thread | None = None

    def submit(self, messages: list[dict]) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="edobs-delete", daemon=True)
            self.thread.start()
        self.pending.put(messages)

    def _run(self) -> None:
        while (messages := self.pending.get()) is not None:
            try:
                self.delete(messages)
            except Exception:  # never let the thread die: submit() would block on a full queue
                logger.exception(
                    "deleting %d messages failed; they will be redelivered", len(messages)
                )

    def close(self) -> None:
        if self.thread is not None:
            self.pending.put(None)
            self.thread.join()
            self.thread = None

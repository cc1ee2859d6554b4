"""The DynamoDB store's writes: ingest in transactions, job summaries by optimistic concurrency.

A mixin of events.stores.dynamodb.store.DynamoStore, apart from its reads so that each module stays
readable at once; the item layout is described in events.stores.dynamodb.store's docstring.
"""

from __future__ import annotations

import json
import logging
import random
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from events.domain.envelope import NormalisedEvent, iso, iso_ms
from events.domain.summary import JobSummary, apply_events
from events.stores.base import Outcome, StoreRefused, StoreUnavailable
from events.stores.dynamodb.codec import (
    cancelled_for_data,
    chunks_by_size,
    client_failure,
    client_message,
    cut_text,
    duplicate_events,
    event_key,
    fit,
    key_of,
    latest_json,
    load,
    marker_pk,
    ms_of,
    put_request,
    serialize,
    summary_from,
)

logger = logging.getLogger(__name__)

ATTEMPTS = 8


class DynamoWrites:
    """Needs of its host: `table`, `clock`, `shards`, `_call`, `_ttl` and `_live`."""

    def ingest(self, events: Sequence[NormalisedEvent]) -> list[Outcome]:
        unique = list({event_key(event): event for event in reversed(events)}.values())[::-1]
        stored: set[tuple[str, str]] = set()
        try:
            for chunk in chunks_by_size(unique, self._item):
                stored |= self._ingest_chunk(chunk)
        except UnicodeError as exc:  # a lone surrogate: no UTF-8, so no DynamoDB string
            raise StoreRefused(str(exc)) from exc
        except ClientError as exc:
            raise client_failure(exc) from exc
        outcomes: list[Outcome] = []
        seen: set[tuple[str, str]] = set()
        for event in events:
            new = event_key(event) in stored and event_key(event) not in seen
            outcomes.append("stored" if new else "duplicate")
            seen.add(event_key(event))
        return outcomes

    def _ingest_chunk(self, items: list[tuple[NormalisedEvent, dict]]) -> set[tuple[str, str]]:
        pending = items
        for attempt in range(ATTEMPTS):
            if not pending:
                return set()
            summaries = self._read_summaries({e.job for e, _ in pending if e.job})
            actions, owners = self._transaction(pending, summaries)
            try:
                self._call("transact_write_items", TransactItems=actions)
                return {event_key(event) for event, _ in pending}
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                if cancelled_for_data(exc):
                    raise StoreRefused(client_message(exc)) from exc
                duplicates = duplicate_events(exc, owners)
            pending = [(e, item) for e, item in pending if event_key(e) not in duplicates]
            if not duplicates:  # a summary moved under us, or a conflict: re-read, back off
                _sleep(attempt)
        raise StoreUnavailable(f"ingest gave up after {ATTEMPTS} contended attempts")

    def _item(self, event: NormalisedEvent, arrival_us: int) -> dict[str, Any]:
        raw, truncated = fit(event.raw)
        sk = f"{event.at_ms:013d}#{arrival_us:016d}#{event.id}"
        # The time index stays on the envelope's time: windows are in envelope time on every
        # store (the ORM filters its `time` column).
        by_time = f"{ms_of(event.time):013d}#{arrival_us:016d}#{event.id}"
        hour = event.time.astimezone(UTC).strftime("%Y-%m-%dT%H")
        arrival_hour = event.received_at.astimezone(UTC).strftime("%Y-%m-%dT%H")
        execution = event.correlation.execution
        return {
            "pk": f"EVENT#{event.job or '-nojob#' + hour}",
            "sk": sk,
            "id": event.id,
            "job": event.job,
            "sm": execution.state_machine if execution else None,
            "account": event.account,
            "source": event.source,
            "detail_type": event.detail_type,
            "region": event.region,
            "time": iso(event.time),
            "at": iso_ms(event.at),
            "at_source": event.at_source,
            "received": iso(event.received_at),
            "raw": raw,
            "truncated": truncated,
            "ttl": self._ttl(event.received_at),
            "gsi2pk": f"TIME#{arrival_hour}",
            "gsi2sk": by_time,
        }

    def _transaction(self, pending, summaries) -> tuple[list[dict], list[tuple | None]]:
        """The TransactWriteItems actions, and which event (account, id) owns each marker."""
        actions: list[dict] = []
        owners: list[tuple | None] = []
        for event, item in pending:
            marker = {"pk": marker_pk(event.account, event.id), "sk": "ID", "ref": item["sk"],
                      "item": item["pk"], "ttl": item["ttl"]}  # fmt: skip
            actions.append(put_request(self.table, marker, "attribute_not_exists(pk)"))
            actions.append(put_request(self.table, item))
            owners += [event_key(event), None]
        by_job: dict[str, list[NormalisedEvent]] = defaultdict(list)
        for event, _ in pending:
            if event.job:
                by_job[event.job].append(event)
        for job_id, job_events in by_job.items():
            current, version = summaries.get(job_id, (None, 0))
            arrived = max(event.received_at for event in job_events)
            summary = apply_events(current, job_events)
            item = self._summary_item(summary, version + 1, arrived)
            values = {":v": serialize(version)}
            condition = "attribute_not_exists(pk)" if version == 0 else "version = :v"
            actions.append(put_request(self.table, item, condition, values if version else None))
            owners.append(None)
            if summary.parent and summary.parent != (current.parent if current else None):
                actions.append(put_request(self.table, self._child_link(summary, item["ttl"])))
                owners.append(None)
        return actions, owners

    def _child_link(self, summary: JobSummary, ttl: int) -> dict[str, Any]:
        """The item that finds a job from its parent (no index of the table has `parent`):
        written once, when the job's parent first becomes known."""
        return {"pk": f"CHILDREN#{summary.parent}", "sk": summary.id, "ttl": ttl}

    def _read_summaries(self, job_ids: set[str]) -> dict[str, tuple[JobSummary | None, int]]:
        """{job id: (summary or None when expired, version)} read consistently."""
        found: dict[str, tuple[JobSummary | None, int]] = {}
        keys = [key_of(f"JOB#{job_id}", "JOB") for job_id in sorted(job_ids)]
        for start in range(0, len(keys), 100):
            for item in self._batch_get(keys[start : start + 100]):
                live = self._live(item)
                found[item["id"]] = (summary_from(item) if live else None, int(item["version"]))
        return found

    def _batch_get(self, keys: list[dict]) -> Iterator[dict]:
        request = {self.table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(ATTEMPTS):
            response = self._call("batch_get_item", RequestItems=request)
            yield from (load(item) for item in response["Responses"].get(self.table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return
            _sleep(attempt)
        raise StoreUnavailable("batch_get_item kept returning UnprocessedKeys")

    def _batch_write(self, requests: list[dict]) -> None:
        """BatchWriteItem in chunks of 25, retrying UnprocessedItems with backoff."""
        for start in range(0, len(requests), 25):
            pending = {self.table: requests[start : start + 25]}
            for attempt in range(ATTEMPTS):
                pending = self._call("batch_write_item", RequestItems=pending).get(
                    "UnprocessedItems"
                )
                if not pending:
                    break
                _sleep(attempt)
            else:
                raise StoreUnavailable("batch_write_item kept returning UnprocessedItems")

    def _summary_item(self, summary: JobSummary, version: int, arrived: datetime) -> dict[str, Any]:
        assert summary.last_event_at is not None
        order = f"{ms_of(summary.last_event_at):013d}#{summary.id}"
        return {
            "pk": f"JOB#{summary.id}",
            "sk": "JOB",
            "version": version,
            "id": summary.id,
            "state_machine": summary.state_machine,
            "name": summary.name,
            "account": summary.account,
            "region": summary.region,
            "execution_arn": summary.execution_arn,
            "status": summary.status or "",
            "status_at": iso(summary.status_at),
            "started_at": iso(summary.started_at),
            "stopped_at": iso(summary.stopped_at),
            "error": cut_text(summary.error),
            "cause": cut_text(summary.cause),
            "first_event_at": iso(summary.first_event_at),
            "last_event_at": iso(summary.last_event_at),
            "event_count": summary.event_count,
            "parent": summary.parent,
            "attempts": json.dumps(list(summary.attempts)),
            "latest": latest_json(summary.latest),
            "ttl": self._ttl(arrived),
            "gsi1pk": f"JOBS#{zlib.crc32(summary.id.encode()) % self.shards}",
            "gsi1sk": order,
            "gsi3pk": f"NAME#{summary.name}",
            "gsi3sk": order,
        }


def _sleep(attempt: int) -> None:
    """Full-jitter exponential backoff: 25 ms, 50 ms, ... capped at 1 s."""
    time.sleep(random.uniform(0, min(1.0, 0.025 * 2**attempt)))

"""The DynamoDB store (DESIGN section 4): one table, keys `pk`/`sk`, TTL `ttl`.

Items (the indexes are described in infra/table.py):
- event `pk=EVENT#<job id>` (or `EVENT#-nojob#<yyyy-mm-ddThh>` for events without a job; the job id
  holds the account and region),
  `sk=<event at ms, 13 digits>#<arrival µs, 16 digits>#<event id>`: events sharing a millisecond
  never overwrite each other and read back in `at` (best clock, events.clock), then arrival
  order; `at` and `at_source` are kept as attributes, the envelope's `time` too. The envelope is
  kept as a JSON string `raw`; one that would pass the 400 KB item limit is stored with its detail
  cut down to what correlation needs plus `{"_truncated": true, "_bytes": N}` and `truncated=true`.
- marker `pk=ID#<account>#<event id>`, `sk=ID`: the idempotency key (envelope ids are unique per
  account only). A batch is written in one
  TransactWriteItems: each marker conditioned on `attribute_not_exists(pk)`, each event item, and
  each job summary conditioned on its `version`. Either all of it lands or none: a cancelled
  transaction names the markers that already existed (duplicates, whatever their time) and the
  summaries that moved; those are dropped or re-read and the rest is retried.
  A marker names its event item (`item` = pk, `ref` = sk) for GET /api/events/<id>.
- job summary `pk=JOB#<job id>`, `sk=JOB`, computed with events.summary.apply_events (optimistic
  concurrency on `version`), so out-of-order arrival cannot move status or times backwards.
Every item carries `ttl` = arrival + EDOBS_RETENTION_HOURS (a summary: its latest arrival), as
DESIGN section 4 asks: an archive replay keeps the original `time`, and must not vanish on
arrival. Reads filter out items whose ttl has passed, since DynamoDB deletes them late. The time
index (gsi2) buckets events by arrival hour and sorts them by event time within a bucket, so a
window by event time reads the retention's arrival buckets, about 25 queries.
"""

from __future__ import annotations

import heapq
import json
import logging
import random
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.conf import settings

from ..architecture import infer_architecture
from ..clock import ms
from ..envelope import NormalisedEvent, iso, iso_ms, stored_event
from ..fleet import duration_ms, duration_within
from ..summary import JobSummary, LatestEvent, apply_events
from .base import (
    Accounts,
    JobFilter,
    Outcome,
    Page,
    StoreRefused,
    StoreUnavailable,
    Window,
    clamp_limit,
    decode_cursor,
    encode_cursor,
    filtered_page,
)

logger = logging.getLogger(__name__)

SHARDS = 8
MAX_ITEM_BYTES = 400 * 1024
ITEM_HEADROOM = 8 * 1024  # attribute names and the other attributes of an event item
TRANSACTION_BYTES = 3 * 1024 * 1024  # TransactWriteItems takes 4 MB at most
SUMMARY_TEXT_MAX = 32 * 1024
LATEST_DETAIL_MAX = 64 * 1024
# What a truncated detail keeps (if small): what correlation and the timeline read.
KEEP_WHEN_TRUNCATED = (
    "execution", "executionArn", "executionContext", "meta", "status", "startDate", "stopDate",
    "name", "stateMachineArn", "stateName", "error",
)  # fmt: skip
ENVELOPE_KEYS = ("version", "id", "detail-type", "source", "account", "time", "region")
TRANSIENT = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "ResourceNotFoundException",
    "LimitExceededException",
}  # fmt: skip
# Client errors that refuse the request's data (an item, a key too large): retrying cannot
# help. Every other client error that is not TRANSIENT (access denied, a missing table, a
# misconfigured client) is treated as an outage: the worker backs off instead of quarantining.
REFUSED = {"ValidationException", "SerializationException"}
REFUSED_REASONS = {"ValidationError"}  # a cancelled transaction's per-item reason
ATTEMPTS = 8
SCAN_PAGE = 100  # items per query page when a search reads the time index lazily
PURGE_LOOKBACK = timedelta(days=7)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class DynamoStore:
    def __init__(
        self,
        *,
        client=None,
        table_name: str | None = None,
        retention_hours: int | None = None,
        clock: Callable[[], datetime] | None = None,
        shards: int = SHARDS,
    ):
        self._client = client
        self.table = table_name or settings.EDOBS_TABLE_NAME
        hours = settings.EDOBS_RETENTION_HOURS if retention_hours is None else retention_hours
        self.retention = timedelta(hours=hours)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.shards = shards

    @property
    def client(self):
        """Made on first use, never at import, so moto and settings come first."""
        if self._client is None:
            from ..aws import dynamodb_client

            self._client = dynamodb_client()
        return self._client

    # ---- writes ------------------------------------------------------------------------------

    def ingest(self, events: Sequence[NormalisedEvent]) -> list[Outcome]:
        unique = list({_event_key(event): event for event in reversed(events)}.values())[::-1]
        stored: set[tuple[str, str]] = set()
        try:
            for chunk in _chunks_by_size(unique, self._item):
                stored |= self._ingest_chunk(chunk)
        except UnicodeError as exc:  # a lone surrogate: no UTF-8, so no DynamoDB string
            raise StoreRefused(str(exc)) from exc
        except ClientError as exc:
            raise _client_failure(exc) from exc
        outcomes: list[Outcome] = []
        seen: set[tuple[str, str]] = set()
        for event in events:
            new = _event_key(event) in stored and _event_key(event) not in seen
            outcomes.append("stored" if new else "duplicate")
            seen.add(_event_key(event))
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
                return {_event_key(event) for event, _ in pending}
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                if _cancelled_for_data(exc):
                    raise StoreRefused(_client_message(exc)) from exc
                duplicates = _duplicates(exc, owners)
            pending = [(e, item) for e, item in pending if _event_key(e) not in duplicates]
            if not duplicates:  # a summary moved under us, or a conflict: re-read, back off
                _sleep(attempt)
        raise StoreUnavailable(f"ingest gave up after {ATTEMPTS} contended attempts")

    def _item(self, event: NormalisedEvent, arrival_us: int) -> dict[str, Any]:
        raw, truncated = _fit(event.raw)
        sk = f"{event.at_ms:013d}#{arrival_us:016d}#{event.id}"
        # The time index stays on the envelope's time: windows are in envelope time on every
        # store (the ORM filters its `time` column).
        by_time = f"{_ms(event.time):013d}#{arrival_us:016d}#{event.id}"
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
            marker = {"pk": _marker(event.account, event.id), "sk": "ID", "ref": item["sk"],
                      "item": item["pk"], "ttl": item["ttl"]}  # fmt: skip
            actions.append(_put(self.table, marker, "attribute_not_exists(pk)"))
            actions.append(_put(self.table, item))
            owners += [_event_key(event), None]
        by_job: dict[str, list[NormalisedEvent]] = defaultdict(list)
        for event, _ in pending:
            if event.job:
                by_job[event.job].append(event)
        for job_id, job_events in by_job.items():
            current, version = summaries.get(job_id, (None, 0))
            arrived = max(event.received_at for event in job_events)
            summary = apply_events(current, job_events)
            item = self._summary_item(summary, version + 1, arrived)
            values = {":v": _serializer.serialize(version)}
            condition = "attribute_not_exists(pk)" if version == 0 else "version = :v"
            actions.append(_put(self.table, item, condition, values if version else None))
            owners.append(None)
            if summary.parent and summary.parent != (current.parent if current else None):
                actions.append(_put(self.table, self._child_link(summary, item["ttl"])))
                owners.append(None)
        return actions, owners

    def _child_link(self, summary: JobSummary, ttl: int) -> dict[str, Any]:
        """The item that finds a job from its parent (no index of the table has `parent`):
        written once, when the job's parent first becomes known."""
        return {"pk": f"CHILDREN#{summary.parent}", "sk": summary.id, "ttl": ttl}

    def _read_summaries(self, job_ids: set[str]) -> dict[str, tuple[JobSummary | None, int]]:
        """{job id: (summary or None when expired, version)} read consistently."""
        found: dict[str, tuple[JobSummary | None, int]] = {}
        keys = [_key(f"JOB#{job_id}", "JOB") for job_id in sorted(job_ids)]
        for start in range(0, len(keys), 100):
            for item in self._batch_get(keys[start : start + 100]):
                live = self._live(item)
                found[item["id"]] = (_summary(item) if live else None, int(item["version"]))
        return found

    def _batch_get(self, keys: list[dict]) -> Iterator[dict]:
        request = {self.table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(ATTEMPTS):
            response = self._call("batch_get_item", RequestItems=request)
            yield from (_load(item) for item in response["Responses"].get(self.table, []))
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
        order = f"{_ms(summary.last_event_at):013d}#{summary.id}"
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
            "error": _cut(summary.error),
            "cause": _cut(summary.cause),
            "first_event_at": iso(summary.first_event_at),
            "last_event_at": iso(summary.last_event_at),
            "event_count": summary.event_count,
            "parent": summary.parent,
            "attempts": json.dumps(list(summary.attempts)),
            "latest": _latest_json(summary.latest),
            "ttl": self._ttl(arrived),
            "gsi1pk": f"JOBS#{zlib.crc32(summary.id.encode()) % self.shards}",
            "gsi1sk": order,
            "gsi3pk": f"NAME#{summary.name}",
            "gsi3sk": order,
        }

    # ---- reads -------------------------------------------------------------------------------

    def latest_jobs(
        self, *, accounts: Accounts, limit: int, cursor: str | None, filters: JobFilter
    ) -> Page[JobSummary]:
        limit = clamp_limit(limit)
        if accounts == frozenset():
            return Page([])
        key, values = "gsi1pk = :pk", {}
        if cursor:
            key, values = "gsi1pk = :pk AND gsi1sk < :after", {":after": _job_position(cursor)}
        found: list[dict] = []
        keep = self._duration_check(filters)
        for shard in range(self.shards):
            found += self._query(
                index="gsi1", key=key, values={**values, ":pk": f"JOBS#{shard}"},
                scope=self._scope(accounts, filters), want=limit + 1, forward=False, keep=keep,
            )  # fmt: skip
        found.sort(key=lambda item: item["gsi1sk"], reverse=True)
        items = [_summary(item) for item in found[:limit]]
        more = len(found) > limit
        return Page(items, _job_cursor(items[-1]) if more else None)

    def _duration_check(self, filters: JobFilter) -> Callable[[dict], bool] | None:
        """Durations depend on now: checked on each summary while paging, not in DynamoDB."""
        if not filters.by_duration:
            return None
        now = self.clock()
        low, high = filters.min_duration_ms, filters.max_duration_ms
        return lambda item: duration_within(duration_ms(_summary(item), now), low, high)

    def job_cursor(self, job: JobSummary) -> str:
        return _job_cursor(job)

    def state_machine_jobs(
        self, state_machine: str, *, accounts: Accounts, since: datetime,
        until: datetime | None = None, statuses: tuple[str, ...] = (), limit: int = 10_000,
    ) -> list[JobSummary]:  # fmt: skip
        """Each shard of the latest-jobs index from `since` on, by state machine and status."""
        if accounts == frozenset():
            return []
        filters = JobFilter(state_machine=state_machine, statuses=statuses)
        found: list[dict] = []
        for shard in range(self.shards):
            found += self._query(
                index="gsi1", key="gsi1pk = :pk AND gsi1sk >= :from", forward=False,
                values={":pk": f"JOBS#{shard}", ":from": f"{_ms(since):013d}"},
                scope=self._scope(accounts, filters), want=limit,
                keep=None if until is None else lambda item: _time(item["first_event_at"]) < until,
            )  # fmt: skip
        found.sort(key=lambda item: item["gsi1sk"], reverse=True)
        return [_summary(item) for item in found[:limit]]

    def child_jobs(self, parent: str, *, accounts: Accounts, limit: int = 1000) -> list[JobSummary]:
        """The parent's link items (`_child_link`), then their jobs' summaries."""
        if accounts == frozenset():
            return []
        links = self._query(
            key="pk = :pk", values={":pk": f"CHILDREN#{parent}"}, scope=None, want=limit,
            consistent=True,
        )  # fmt: skip
        keys = [_key(f"JOB#{link['sk']}", "JOB") for link in links]
        found = []
        for start in range(0, len(keys), 100):
            found += [
                item for item in self._batch_get(keys[start : start + 100])
                if self._live(item) and _visible(item, accounts)
            ]  # fmt: skip
        found.sort(key=lambda item: item["gsi1sk"], reverse=True)
        return [_summary(item) for item in found[:limit]]

    def get_job(self, job_id: str, *, accounts: Accounts) -> JobSummary | None:
        key = _key(f"JOB#{job_id}", "JOB")
        response = self._call("get_item", TableName=self.table, Key=key, ConsistentRead=True)
        item = _load(response["Item"]) if "Item" in response else None
        if item is None or not self._live(item) or not _visible(item, accounts):
            return None
        return _summary(item)

    def find_job(
        self, *, name: str, state_machine: str | None, accounts: Accounts
    ) -> JobSummary | None:
        if accounts == frozenset():
            return None
        found = self._query(
            index="gsi3", key="gsi3pk = :pk", values={":pk": f"NAME#{name}"},
            scope=self._scope(accounts, JobFilter(state_machine=state_machine)), want=1,
            forward=False,
        )  # fmt: skip
        return _summary(found[0]) if found else None

    def job_events(
        self, job_id: str, *, accounts: Accounts, limit: int, cursor: str | None
    ) -> Page[NormalisedEvent]:
        limit = clamp_limit(limit)
        if accounts == frozenset():
            return Page([])
        key, values = "pk = :pk", {":pk": f"EVENT#{job_id}"}
        if cursor:
            key, values[":after"] = "pk = :pk AND sk > :after", _text_cursor(cursor)
        found = self._query(
            key=key, values=values, scope=self._scope(accounts), want=limit + 1, consistent=True
        )
        more = len(found) > limit
        next_cursor = encode_cursor("events", found[limit - 1]["sk"]) if more else None
        return Page([_event(item) for item in found[:limit]], next_cursor)

    def architecture(self, window: Window, *, accounts: Accounts) -> dict:
        """Computed from the window's events: this store keeps no rollups (docs/PERFORMANCE.md,
        "Architecture rollups")."""
        return infer_architecture(self.events_window(window, accounts=accounts))

    def events_window(self, window: Window, *, accounts: Accounts) -> list[NormalisedEvent]:
        """Events whose time is in the window, oldest (or newest) first.

        One query per arrival-hour bucket of the retention (what arrived earlier is gone), each
        a range on event time; the buckets' answers are merged.
        """
        if accounts == frozenset():
            return []
        since, until = window.since, window.until
        if since and until and until <= since:
            return []
        low = f"{_ms(since):013d}" if since else "0"
        high = f"{_ms(until) - 1:013d}#~" if until else "9999999999999#~"
        filters = JobFilter(state_machine=window.state_machine)
        found: list[dict] = []
        now = self.clock()
        for hour in _hours(now - self.retention - timedelta(hours=1), now + timedelta(hours=1)):
            found += self._query(
                index="gsi2", key="gsi2pk = :pk AND gsi2sk BETWEEN :from AND :to",
                values={":from": low, ":to": high, ":pk": f"TIME#{hour}"},
                scope=self._scope(accounts, filters), want=window.limit,
                forward=not window.newest_first,
            )  # fmt: skip
        found.sort(key=lambda item: item["gsi2sk"], reverse=window.newest_first)
        return [_event(item) for item in found[: window.limit]]

    def events_page(
        self, window: Window, *, accounts: Accounts, limit: int, cursor: str | None,
        keep: Callable[[NormalisedEvent], bool] | None = None, scan: int = 20_000,
    ) -> Page[NormalisedEvent]:  # fmt: skip
        """The time index's arrival-hour buckets read newest first and merged lazily by event
        time, so the order is exact however far the scan goes; every filter but the accounts
        is checked in Python (`keep`)."""
        limit = clamp_limit(limit)
        if accounts == frozenset():
            return Page([])
        before = _search_position(cursor) if cursor else None
        since, until = window.since, window.until
        if since and until and until <= since:
            return Page([])
        low = f"{_ms(since):013d}" if since else "0"
        high = before or (f"{_ms(until) - 1:013d}#~" if until else "9999999999999#~")
        now = self.clock()
        buckets = [
            self._scan_bucket(hour, low, high, before, self._scope(accounts))
            for hour in _hours(now - self.retention - timedelta(hours=1), now + timedelta(hours=1))
        ]
        merged = heapq.merge(*buckets, key=lambda item: item["gsi2sk"], reverse=True)
        return filtered_page(
            ((_event(item), item["gsi2sk"]) for item in merged), limit=limit, scan=scan,
            keep=lambda event: _in_window(event, window) and (keep is None or keep(event)),
            cursor_of=lambda position: encode_cursor("search", position),
        )  # fmt: skip

    def _scan_bucket(
        self, hour: str, low: str, high: str, before: str | None, scope: tuple
    ) -> Iterator[dict]:
        """One arrival-hour bucket of the time index, newest first, page by page on demand."""
        request: dict[str, Any] = {
            "index": "gsi2", "key": "gsi2pk = :pk AND gsi2sk BETWEEN :from AND :to",
            "values": {":from": low, ":to": high, ":pk": f"TIME#{hour}"}, "scope": scope,
            "forward": False,
        }  # fmt: skip
        for item in self._pages(**request):
            if before is None or item["gsi2sk"] < before:  # BETWEEN includes the cursor's own
                yield item

    def get_events(self, event_id: str, *, accounts: frozenset[str]) -> list[NormalisedEvent]:
        """Each account's idempotency marker points at the event item (`item`, `ref`)."""
        keys = [_key(_marker(account, event_id), "ID") for account in sorted(accounts)]
        markers = [m for start in range(0, len(keys), 100)
                   for m in self._batch_get(keys[start : start + 100])]  # fmt: skip
        found = []
        for marker in sorted(markers, key=lambda m: m["pk"]):
            item = self._marked_item(marker) if self._live(marker) else None
            if item is not None and self._live(item) and item["id"] == event_id:
                found.append(_event(item))
        return found

    def _marked_item(self, marker: dict) -> dict | None:
        if "item" in marker:
            key = _key(marker["item"], marker["ref"])
            response = self._call("get_item", TableName=self.table, Key=key, ConsistentRead=True)
            return _load(response["Item"]) if "Item" in response else None
        # A marker written before it named its item: look the sort key up by arrival hour.
        now = self.clock()
        for hour in _hours(now - self.retention - timedelta(hours=1), now + timedelta(hours=1)):
            found = self._query(
                index="gsi2", key="gsi2pk = :pk AND gsi2sk = :sk", scope=None,
                values={":pk": f"TIME#{hour}", ":sk": marker["ref"]},
            )  # fmt: skip
            if found:
                return found[0]
        return None

    def purge(self, *, before: datetime, batch_size: int = 1000) -> int:
        """Delete what TTL has not yet: events older than `before` and jobs with none left."""
        deleted = 0
        for hour in _hours(before - self.retention - PURGE_LOOKBACK, before + timedelta(hours=1)):
            query = {"index": "gsi2", "key": "gsi2pk = :pk", "scope": None}
            items = self._query(**query, values={":pk": f"TIME#{hour}"})
            items = [item for item in items if _time(item["received"]) < before]
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                self._batch_write([_delete(i["pk"], i["sk"]) for i in chunk])
                self._batch_write([_delete(_marker(i["account"], i["id"]), "ID") for i in chunk])
                deleted += len(chunk)
        cutoff = int((before + self.retention).timestamp())  # summaries' ttl is arrival-based
        for shard in range(self.shards):
            jobs = self._query(
                index="gsi1", key="gsi1pk = :pk", scope=None, values={":pk": f"JOBS#{shard}"}
            )
            stale = [job for job in jobs if int(job.get("ttl", 0)) < cutoff]
            self._batch_write([_delete(job["pk"], job["sk"]) for job in stale])
        return deleted

    # ---- helpers -----------------------------------------------------------------------------

    def _pages(
        self, *, key: str, values: dict, scope: tuple | None, index: str, forward: bool
    ) -> Iterator[dict]:
        """A query's items, one DynamoDB page read at a time as they are consumed."""
        request: dict[str, Any] = {"TableName": self.table, "ScanIndexForward": forward}
        request.update(IndexName=index, KeyConditionExpression=key, Limit=SCAN_PAGE)
        names, filter_values = {}, {}
        if scope:
            request["FilterExpression"], names, filter_values = scope
            request["ExpressionAttributeNames"] = names
        request["ExpressionAttributeValues"] = _dump({**values, **filter_values})
        while True:
            response = self._call("query", **request)
            yield from (_load(item) for item in response["Items"])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _query(
        self, *, key: str, values: dict, scope: tuple | None, index: str | None = None,
        want: int | None = None, forward: bool = True, consistent: bool = False,
        keep: Callable[[dict], bool] | None = None,
    ) -> list[dict]:  # fmt: skip
        """Every page of a query, to the end or until `want` items passed the filter (and
        `keep`, a check DynamoDB cannot make, in Python)."""
        request: dict[str, Any] = {"TableName": self.table, "ScanIndexForward": forward}
        if index:
            request["IndexName"] = index
        elif consistent:
            request["ConsistentRead"] = True
        names, filter_values = {}, {}
        if scope:
            request["FilterExpression"], names, filter_values = scope
            request["ExpressionAttributeNames"] = names
        request["KeyConditionExpression"] = key
        request["ExpressionAttributeValues"] = _dump({**values, **filter_values})
        if want:
            request["Limit"] = max(want, 25)
        found: list[dict] = []
        while True:
            response = self._call("query", **request)
            loaded = (_load(item) for item in response["Items"])
            found += [item for item in loaded if keep is None or keep(item)]
            if "LastEvaluatedKey" not in response or (want and len(found) >= want):
                return found[:want] if want else found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _scope(self, accounts: Accounts, filters: JobFilter | None = None) -> tuple:
        """(FilterExpression, names, values): live items of these accounts matching filters."""
        clauses, names = ["#ttl > :now"], {"#ttl": "ttl"}
        values: dict[str, Any] = {":now": int(self.clock().timestamp())}
        if accounts is not None:
            keys = [f":a{i}" for i in range(len(accounts))]
            clauses.append(f"#account IN ({', '.join(keys)})")
            names["#account"] = "account"
            values.update(zip(keys, sorted(accounts), strict=True))
        if filters and (statuses := filters.wanted_statuses()):
            keys = [f":s{i}" for i in range(len(statuses))]
            clauses.append(f"#status IN ({', '.join(keys)})")
            names["#status"] = "status"
            values.update(zip(keys, statuses, strict=True))
        if filters and filters.state_machine:
            # Job summaries name it `state_machine`, event items `sm`.
            clauses.append("(#sm = :sm OR #state_machine = :sm)")
            names.update({"#sm": "sm", "#state_machine": "state_machine"})
            values[":sm"] = filters.state_machine
        return " AND ".join(clauses), names, values

    def _call(self, operation: str, **kwargs) -> dict:
        """One DynamoDB call; throttling, 5xx and connection failures become StoreUnavailable."""
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if code in TRANSIENT or status >= 500:
                logger.warning("DynamoDB %s failed: %s", operation, code)
                raise StoreUnavailable(f"DynamoDB {operation}: {code}") from exc
            raise
        except (BotoConnectionError, HTTPClientError) as exc:
            logger.warning("DynamoDB %s unreachable: %s", operation, exc)
            raise StoreUnavailable(f"DynamoDB {operation}: {exc}") from exc

    def _ttl(self, at: datetime) -> int:
        return int((at + self.retention).timestamp())

    def _live(self, item: dict) -> bool:
        return int(item.get("ttl", 0)) > int(self.clock().timestamp())


# ---- item encoding (pure) ----------------------------------------------------------------------


def _ms(value: datetime) -> int:
    return ms(value)  # exactly: a float product can lose the last millisecond


def _event_key(event: NormalisedEvent) -> tuple[str, str]:
    """What makes an event unique: envelope ids are unique per account only."""
    return event.account, event.id


def _marker(account: str, event_id: str) -> str:
    return f"ID#{account}#{event_id}"


def _dump(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in item.items() if value is not None}


def _load(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _delete(pk: str, sk: str) -> dict[str, Any]:
    return {"DeleteRequest": {"Key": _key(pk, sk)}}


def _put(table: str, item: dict, condition: str | None = None, values: dict | None = None) -> dict:
    put: dict[str, Any] = {"TableName": table, "Item": _dump(item)}
    if condition:
        put["ConditionExpression"] = condition
    if values:
        put["ExpressionAttributeValues"] = values
    return {"Put": put}


def _duplicates(exc: ClientError, owners: list[tuple | None]) -> set[tuple]:
    """Events (account, id) whose marker already existed, from a cancelled transaction."""
    reasons = exc.response.get("CancellationReasons") or []
    return {
        owners[index]
        for index, reason in enumerate(reasons)
        if index < len(owners) and owners[index] and reason.get("Code") == "ConditionalCheckFailed"
    }


def _cancelled_for_data(exc: ClientError) -> bool:
    reasons = exc.response.get("CancellationReasons") or []
    return any(reason.get("Code") in REFUSED_REASONS for reason in reasons)


def _client_failure(exc: ClientError) -> StoreRefused | StoreUnavailable:
    """What a client error that _call let through means for the batch."""
    code = exc.response.get("Error", {}).get("Code", "")
    if code in REFUSED:
        return StoreRefused(_client_message(exc))
    logger.error("DynamoDB refused the request (%s): treated as an outage", code)
    return StoreUnavailable(_client_message(exc))


def _client_message(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    reasons = exc.response.get("CancellationReasons") or []
    found = "; ".join(r.get("Message") or "" for r in reasons if r.get("Code") in REFUSED_REASONS)
    return f"DynamoDB {error.get('Code', '')}: {found or error.get('Message', '')}"


def _chunks_by_size(events: list[NormalisedEvent], make_item) -> Iterator[list[tuple]]:
    """(event, item) chunks that fit in one transaction (4 MB, 100 actions)."""
    chunk: list[tuple] = []
    size = 0
    last_arrival = 0
    for event in events:
        # Arrival order within a batch is the list order, even if received_at ties.
        last_arrival = max(int(event.received_at.timestamp() * 1_000_000), last_arrival + 1)
        item = make_item(event, last_arrival)
        item_size = len(item["raw"]) + 2048
        # 25 events: a marker and an item each, a summary and a parent link per job: 100 actions.
        if chunk and (size + item_size > TRANSACTION_BYTES or len(chunk) >= 25):
            yield chunk
            chunk, size = [], 0
        chunk.append((event, item))
        size += item_size
    if chunk:
        yield chunk


def _fit(raw: dict[str, Any]) -> tuple[str, bool]:
    """The envelope as JSON, cut down (and flagged) if it would not fit in one item."""
    text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
    size = len(text.encode())
    if size <= MAX_ITEM_BYTES - ITEM_HEADROOM:
        return text, False
    detail = raw.get("detail") if isinstance(raw.get("detail"), dict) else {}
    kept = {key: detail.get(key) for key in KEEP_WHEN_TRUNCATED if _small(detail.get(key))}
    kept = {key: value for key, value in kept.items() if value is not None}
    envelope = {key: raw[key] for key in ENVELOPE_KEYS if key in raw and _small(raw[key])}
    resources = raw.get("resources") if _small(raw.get("resources")) else []
    envelope.update(resources=resources, detail={**kept, "_truncated": True, "_bytes": size})
    logger.warning("event %s is %d bytes: stored with its detail truncated", raw.get("id"), size)
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False), True


def _small(value: Any, limit: int = 8192) -> bool:
    return len(json.dumps(value, ensure_ascii=False).encode()) <= limit


def _cut(text: str | None) -> str | None:
    return text[:SUMMARY_TEXT_MAX] if text else None


def _latest_json(latest: LatestEvent | None) -> str | None:
    if latest is None:
        return None
    detail = latest.detail if _small(latest.detail, LATEST_DETAIL_MAX) else {"_truncated": True}
    return json.dumps(
        {"id": latest.id, "source": latest.source, "detail_type": latest.detail_type,
         "account": latest.account, "time": iso(latest.time), "detail": detail},
        ensure_ascii=False,
    )  # fmt: skip


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _int(value: Any) -> int:
    return int(value) if isinstance(value, Decimal | int) else 0


def _summary(item: dict[str, Any]) -> JobSummary:
    latest = json.loads(item["latest"]) if item.get("latest") else None
    return JobSummary(
        id=item["id"],
        state_machine=item["state_machine"],
        name=item["name"],
        account=item["account"],
        region=item["region"],
        execution_arn=item.get("execution_arn") or None,
        status=item.get("status") or None,
        status_at=_time(item.get("status_at")),
        started_at=_time(item.get("started_at")),
        stopped_at=_time(item.get("stopped_at")),
        error=item.get("error") or None,
        cause=item.get("cause") or None,
        first_event_at=_time(item.get("first_event_at")),
        last_event_at=_time(item.get("last_event_at")),
        event_count=_int(item.get("event_count")),
        parent=item.get("parent") or None,
        attempts=tuple(json.loads(item.get("attempts") or "[]")),
        latest=LatestEvent(**{**latest, "time": _time(latest["time"])}) if latest else None,
    )


def _event(item: dict[str, Any]) -> NormalisedEvent:
    return stored_event(
        json.loads(item["raw"]), id=item["id"], source=item["source"],
        detail_type=item["detail_type"], account=item["account"], region=item["region"],
        time=_time(item["time"]), received_at=_time(item["received"]),
        at=_time(item.get("at")), at_source=item.get("at_source"),
    )  # fmt: skip


def _visible(item: dict[str, Any], accounts: Accounts) -> bool:
    return accounts is None or item.get("account") in accounts


def _job_cursor(job: JobSummary) -> str:
    assert job.last_event_at is not None
    return encode_cursor("jobs", _ms(job.last_event_at), job.id)


def _text_cursor(cursor: str) -> str:
    [sk] = decode_cursor(cursor, "events", str)
    return sk


def _search_position(cursor: str) -> str:
    [position] = decode_cursor(cursor, "search", str)
    return position


def _in_window(event: NormalisedEvent, window: Window) -> bool:
    """The equality filters of a window, which event items do not all carry as attributes."""
    wanted = {
        "source": window.source, "detail_type": window.detail_type, "account": window.account,
        "job": window.job, "fn": window.fn,
    }  # fmt: skip
    if window.state_machine:
        execution = event.correlation.execution
        if execution is None or execution.state_machine != window.state_machine:
            return False
    return all(not value or getattr(event, name) == value for name, value in wanted.items())


def _job_position(cursor: str) -> str:
    ms, job_id = decode_cursor(cursor, "jobs", int, str)
    return f"{ms:013d}#{job_id}"


def _hours(since: datetime, until: datetime) -> Iterator[str]:
    """The hour buckets (`yyyy-mm-ddThh`, UTC) that [since, until) touches, oldest first."""
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while hour < until:
        yield hour.strftime("%Y-%m-%dT%H")
        hour += timedelta(hours=1)


def _sleep(attempt: int) -> None:
    """Full-jitter exponential backoff: 25 ms, 50 ms, ... capped at 1 s."""
    time.sleep(random.uniform(0, min(1.0, 0.025 * 2**attempt)))

"""The DynamoDB store (DESIGN section 4): one table, keys `pk`/`sk`, TTL `ttl`.

Items (the indexes are described in infra/table.py):
- event `pk=EVENT#<job id>` (or `EVENT#-nojob#<yyyy-mm-ddThh>` for events without a job; the job id
  holds the account and region),
  `sk=<event at ms, 13 digits>#<arrival µs, 16 digits>#<event id>`: events sharing a millisecond
  never overwrite each other and read back in `at` (best clock, events.domain.clock), then arrival
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
- job summary `pk=JOB#<job id>`, `sk=JOB`, computed with events.domain.summary.apply_events
  (optimistic
  concurrency on `version`), so out-of-order arrival cannot move status or times backwards.
Every item carries `ttl` = arrival + EDOBS_RETENTION_HOURS (a summary: its latest arrival), as
DESIGN section 4 asks: an archive replay keeps the original `time`, and must not vanish on
arrival. Reads filter out items whose ttl has passed, since DynamoDB deletes them late. The time
index (gsi2) buckets events by arrival hour and sorts them by event time within a bucket, so a
window by event time reads the retention's arrival buckets, about 25 queries.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.conf import settings

from events.domain.architecture import infer_architecture
from events.domain.envelope import NormalisedEvent
from events.domain.fleet import duration_ms, duration_within
from events.domain.summary import JobSummary
from events.stores.base import (
    Accounts,
    JobFilter,
    Page,
    StoreUnavailable,
    Window,
    clamp_limit,
    encode_cursor,
    filtered_page,
)
from events.stores.dynamodb.codec import (
    cursor_of_job,
    delete_request,
    dump,
    event_from,
    hour_buckets,
    in_window,
    job_position,
    key_of,
    load,
    marker_pk,
    ms_of,
    search_position,
    summary_from,
    text_cursor,
    time_of,
    visible,
)
from events.stores.dynamodb.writes import DynamoWrites

logger = logging.getLogger(__name__)

SHARDS = 8
TRANSIENT = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "ResourceNotFoundException",
    "LimitExceededException",
}  # fmt: skip
SCAN_PAGE = 100  # items per query page when a search reads the time index lazily
PURGE_LOOKBACK = timedelta(days=7)


class DynamoStore(DynamoWrites):
    """The store (events.stores.base.Store) on one DynamoDB table; its writes are DynamoWrites."""

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
            from events.aws import dynamodb_client

            self._client = dynamodb_client()
        return self._client

    # ---- reads -------------------------------------------------------------------------------

    def latest_jobs(
        self, *, accounts: Accounts, limit: int, cursor: str | None, filters: JobFilter
    ) -> Page[JobSummary]:
        limit = clamp_limit(limit)
        if accounts == frozenset():
            return Page([])
        key, values = "gsi1pk = :pk", {}
        if cursor:
            key, values = "gsi1pk = :pk AND gsi1sk < :after", {":after": job_position(cursor)}
        found: list[dict] = []
        keep = self._duration_check(filters)
        for shard in range(self.shards):
            found += self._query(
                index="gsi1", key=key, values={**values, ":pk": f"JOBS#{shard}"},
                scope=self._scope(accounts, filters), want=limit + 1, forward=False, keep=keep,
            )  # fmt: skip
        found.sort(key=lambda item: item["gsi1sk"], reverse=True)
        items = [summary_from(item) for item in found[:limit]]
        more = len(found) > limit
        return Page(items, cursor_of_job(items[-1]) if more else None)

    def _duration_check(self, filters: JobFilter) -> Callable[[dict], bool] | None:
        """Durations depend on now: checked on each summary while paging, not in DynamoDB."""
        if not filters.by_duration:
            return None
        now = self.clock()
        low, high = filters.min_duration_ms, filters.max_duration_ms
        return lambda item: duration_within(duration_ms(summary_from(item), now), low, high)

    def job_cursor(self, job: JobSummary) -> str:
        return cursor_of_job(job)

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
                values={":pk": f"JOBS#{shard}", ":from": f"{ms_of(since):013d}"},
                scope=self._scope(accounts, filters), want=limit,
                keep=None if until is None else lambda i: time_of(i["first_event_at"]) < until,
            )  # fmt: skip
        found.sort(key=lambda item: item["gsi1sk"], reverse=True)
        return [summary_from(item) for item in found[:limit]]

    def child_jobs(self, parent: str, *, accounts: Accounts, limit: int = 1000) -> list[JobSummary]:
        """The parent's link items (`_child_link`), then their jobs' summaries."""
        if accounts == frozenset():
            return []
        links = self._query(
            key="pk = :pk", values={":pk": f"CHILDREN#{parent}"}, scope=None, want=limit,
            consistent=True,
        )  # fmt: skip
        keys = [key_of(f"JOB#{link['sk']}", "JOB") for link in links]
        found = []
        for start in range(0, len(keys), 100):
            found += [
                item for item in self._batch_get(keys[start : start + 100])
                if self._live(item) and visible(item, accounts)
            ]  # fmt: skip
        found.sort(key=lambda item: item["gsi1sk"], reverse=True)
        return [summary_from(item) for item in found[:limit]]

    def get_job(self, job_id: str, *, accounts: Accounts) -> JobSummary | None:
        key = key_of(f"JOB#{job_id}", "JOB")
        response = self._call("get_item", TableName=self.table, Key=key, ConsistentRead=True)
        item = load(response["Item"]) if "Item" in response else None
        if item is None or not self._live(item) or not visible(item, accounts):
            return None
        return summary_from(item)

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
        return summary_from(found[0]) if found else None

    def job_events(
        self, job_id: str, *, accounts: Accounts, limit: int, cursor: str | None
    ) -> Page[NormalisedEvent]:
        limit = clamp_limit(limit)
        if accounts == frozenset():
            return Page([])
        key, values = "pk = :pk", {":pk": f"EVENT#{job_id}"}
        if cursor:
            key, values[":after"] = "pk = :pk AND sk > :after", text_cursor(cursor)
        found = self._query(
            key=key, values=values, scope=self._scope(accounts), want=limit + 1, consistent=True
        )
        more = len(found) > limit
        next_cursor = encode_cursor("events", found[limit - 1]["sk"]) if more else None
        return Page([event_from(item) for item in found[:limit]], next_cursor)

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
        low = f"{ms_of(since):013d}" if since else "0"
        high = f"{ms_of(until) - 1:013d}#~" if until else "9999999999999#~"
        filters = JobFilter(state_machine=window.state_machine)
        found: list[dict] = []
        now = self.clock()
        for hour in self._arrival_hours(now):
            found += self._query(
                index="gsi2", key="gsi2pk = :pk AND gsi2sk BETWEEN :from AND :to",
                values={":from": low, ":to": high, ":pk": f"TIME#{hour}"},
                scope=self._scope(accounts, filters), want=window.limit,
                forward=not window.newest_first,
            )  # fmt: skip
        found.sort(key=lambda item: item["gsi2sk"], reverse=window.newest_first)
        return [event_from(item) for item in found[: window.limit]]

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
        before = search_position(cursor) if cursor else None
        since, until = window.since, window.until
        if since and until and until <= since:
            return Page([])
        low = f"{ms_of(since):013d}" if since else "0"
        high = before or (f"{ms_of(until) - 1:013d}#~" if until else "9999999999999#~")
        now = self.clock()
        buckets = [
            self._scan_bucket(hour, low, high, before, self._scope(accounts))
            for hour in self._arrival_hours(now)
        ]
        merged = heapq.merge(*buckets, key=lambda item: item["gsi2sk"], reverse=True)
        return filtered_page(
            ((event_from(item), item["gsi2sk"]) for item in merged), limit=limit, scan=scan,
            keep=lambda event: in_window(event, window) and (keep is None or keep(event)),
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
        keys = [key_of(marker_pk(account, event_id), "ID") for account in sorted(accounts)]
        markers = [m for start in range(0, len(keys), 100)
                   for m in self._batch_get(keys[start : start + 100])]  # fmt: skip
        found = []
        for marker in sorted(markers, key=lambda m: m["pk"]):
            item = self._marked_item(marker) if self._live(marker) else None
            if item is not None and self._live(item) and item["id"] == event_id:
                found.append(event_from(item))
        return found

    def _marked_item(self, marker: dict) -> dict | None:
        if "item" in marker:
            key = key_of(marker["item"], marker["ref"])
            response = self._call("get_item", TableName=self.table, Key=key, ConsistentRead=True)
            return load(response["Item"]) if "Item" in response else None
        # A marker written before it named its item: look the sort key up by arrival hour.
        now = self.clock()
        for hour in self._arrival_hours(now):
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
        oldest = before - self.retention - PURGE_LOOKBACK
        for hour in hour_buckets(oldest, before + timedelta(hours=1)):
            query = {"index": "gsi2", "key": "gsi2pk = :pk", "scope": None}
            items = self._query(**query, values={":pk": f"TIME#{hour}"})
            items = [item for item in items if time_of(item["received"]) < before]
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                self._batch_write([delete_request(i["pk"], i["sk"]) for i in chunk])
                markers = [marker_pk(i["account"], i["id"]) for i in chunk]
                self._batch_write([delete_request(marker, "ID") for marker in markers])
                deleted += len(chunk)
        cutoff = int((before + self.retention).timestamp())  # summaries' ttl is arrival-based
        for shard in range(self.shards):
            jobs = self._query(
                index="gsi1", key="gsi1pk = :pk", scope=None, values={":pk": f"JOBS#{shard}"}
            )
            stale = [job for job in jobs if int(job.get("ttl", 0)) < cutoff]
            self._batch_write([delete_request(job["pk"], job["sk"]) for job in stale])
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
        request["ExpressionAttributeValues"] = dump({**values, **filter_values})
        while True:
            response = self._call("query", **request)
            yield from (load(item) for item in response["Items"])
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
        request["ExpressionAttributeValues"] = dump({**values, **filter_values})
        if want:
            request["Limit"] = max(want, 25)
        found: list[dict] = []
        while True:
            response = self._call("query", **request)
            loaded = (load(item) for item in response["Items"])
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

    def _arrival_hours(self, now: datetime) -> Iterator[str]:
        """The arrival-hour buckets the retention may still hold, an hour's margin each side."""
        return hour_buckets(now - self.retention - timedelta(hours=1), now + timedelta(hours=1))

    def _ttl(self, at: datetime) -> int:
        return int((at + self.retention).timestamp())

    def _live(self, item: dict) -> bool:
        return int(item.get("ttl", 0)) > int(self.clock().timestamp())

"""How the DynamoDB store (events.stores.dynamodb.store) encodes its items, keys and cursors.

Pure apart from logging: item encoding and decoding, the envelope cut down to fit one item, the
requests of a transaction and what a cancelled one means, page positions. Apart from the store's
class so that each stays under the size one reads at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from events.domain.clock import ms
from events.domain.envelope import NormalisedEvent, iso, stored_event
from events.domain.summary import JobSummary, LatestEvent
from events.stores.base import (
    Accounts,
    StoreRefused,
    StoreUnavailable,
    Window,
    decode_cursor,
    encode_cursor,
)

logger = logging.getLogger(__name__)

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
# Client errors that refuse the request's data (an item, a key too large): retrying cannot
# help. Every other client error that is not TRANSIENT (access denied, a missing table, a
# misconfigured client) is treated as an outage: the worker backs off instead of quarantining.
REFUSED = {"ValidationException", "SerializationException"}
REFUSED_REASONS = {"ValidationError"}  # a cancelled transaction's per-item reason
# REFUSED: a client error TRANSIENT (events.stores.dynamodb.store) does not cover is an outage.
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def serialize(value: Any) -> dict[str, Any]:
    """One attribute value in DynamoDB's wire format."""
    return _serializer.serialize(value)



def ms_of(value: datetime) -> int:
    return ms(value)  # exactly: a float product can lose the last millisecond


def event_key(event: NormalisedEvent) -> tuple[str, str]:
    """What makes an event unique: envelope ids are unique per account only."""
    return event.account, event.id


def marker_pk(account: str, event_id: str) -> str:
    return f"ID#{account}#{event_id}"


def dump(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in item.items() if value is not None}


def load(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def key_of(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def delete_request(pk: str, sk: str) -> dict[str, Any]:
    return {"DeleteRequest": {"Key": key_of(pk, sk)}}


def put_request(
    table: str, item: dict, condition: str | None = None, values: dict | None = None
) -> dict:
    put: dict[str, Any] = {"TableName": table, "Item": dump(item)}
    if condition:
        put["ConditionExpression"] = condition
    if values:
        put["ExpressionAttributeValues"] = values
    return {"Put": put}


def duplicate_events(exc: ClientError, owners: list[tuple | None]) -> set[tuple]:
    """Events (account, id) whose marker already existed, from a cancelled transaction."""
    reasons = exc.response.get("CancellationReasons") or []
    return {
        owners[index]
        for index, reason in enumerate(reasons)
        if index < len(owners) and owners[index] and reason.get("Code") == "ConditionalCheckFailed"
    }


def cancelled_for_data(exc: ClientError) -> bool:
    reasons = exc.response.get("CancellationReasons") or []
    return any(reason.get("Code") in REFUSED_REASONS for reason in reasons)


def client_failure(exc: ClientError) -> StoreRefused | StoreUnavailable:
    """What a client error that _call let through means for the batch."""
    code = exc.response.get("Error", {}).get("Code", "")
    if code in REFUSED:
        return StoreRefused(client_message(exc))
    logger.error("DynamoDB refused the request (%s): treated as an outage", code)
    return StoreUnavailable(client_message(exc))


def client_message(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    reasons = exc.response.get("CancellationReasons") or []
    found = "; ".join(r.get("Message") or "" for r in reasons if r.get("Code") in REFUSED_REASONS)
    return f"DynamoDB {error.get('Code', '')}: {found or error.get('Message', '')}"


def chunks_by_size(events: list[NormalisedEvent], make_item) -> Iterator[list[tuple]]:
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


def fit(raw: dict[str, Any]) -> tuple[str, bool]:
    """The envelope as JSON, cut down (and flagged) if it would not fit in one item."""
    text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
    size = len(text.encode())
    if size <= MAX_ITEM_BYTES - ITEM_HEADROOM:
        return text, False
    detail = raw.get("detail") if isinstance(raw.get("detail"), dict) else {}
    kept = {key: detail.get(key) for key in KEEP_WHEN_TRUNCATED if small(detail.get(key))}
    kept = {key: value for key, value in kept.items() if value is not None}
    envelope = {key: raw[key] for key in ENVELOPE_KEYS if key in raw and small(raw[key])}
    resources = raw.get("resources") if small(raw.get("resources")) else []
    envelope.update(resources=resources, detail={**kept, "_truncated": True, "_bytes": size})
    logger.warning("event %s is %d bytes: stored with its detail truncated", raw.get("id"), size)
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False), True


def small(value: Any, limit: int = 8192) -> bool:
    return len(json.dumps(value, ensure_ascii=False).encode()) <= limit


def cut_text(text: str | None) -> str | None:
    return text[:SUMMARY_TEXT_MAX] if text else None


def latest_json(latest: LatestEvent | None) -> str | None:
    if latest is None:
        return None
    detail = latest.detail if small(latest.detail, LATEST_DETAIL_MAX) else {"_truncated": True}
    return json.dumps(
        {"id": latest.id, "source": latest.source, "detail_type": latest.detail_type,
         "account": latest.account, "time": iso(latest.time), "detail": detail},
        ensure_ascii=False,
    )  # fmt: skip


def time_of(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def as_int(value: Any) -> int:
    return int(value) if isinstance(value, Decimal | int) else 0


def summary_from(item: dict[str, Any]) -> JobSummary:
    latest = json.loads(item["latest"]) if item.get("latest") else None
    return JobSummary(
        id=item["id"],
        state_machine=item["state_machine"],
        name=item["name"],
        account=item["account"],
        region=item["region"],
        execution_arn=item.get("execution_arn") or None,
        status=item.get("status") or None,
        status_at=time_of(item.get("status_at")),
        started_at=time_of(item.get("started_at")),
        stopped_at=time_of(item.get("stopped_at")),
        error=item.get("error") or None,
        cause=item.get("cause") or None,
        first_event_at=time_of(item.get("first_event_at")),
        last_event_at=time_of(item.get("last_event_at")),
        event_count=as_int(item.get("event_count")),
        parent=item.get("parent") or None,
        attempts=tuple(json.loads(item.get("attempts") or "[]")),
        latest=LatestEvent(**{**latest, "time": time_of(latest["time"])}) if latest else None,
    )


def event_from(item: dict[str, Any]) -> NormalisedEvent:
    return stored_event(
        json.loads(item["raw"]), id=item["id"], source=item["source"],
        detail_type=item["detail_type"], account=item["account"], region=item["region"],
        time=time_of(item["time"]), received_at=time_of(item["received"]),
        at=time_of(item.get("at")), at_source=item.get("at_source"),
    )  # fmt: skip


def visible(item: dict[str, Any], accounts: Accounts) -> bool:
    return accounts is None or item.get("account") in accounts


def cursor_of_job(job: JobSummary) -> str:
    assert job.last_event_at is not None
    return encode_cursor("jobs", ms_of(job.last_event_at), job.id)


def text_cursor(cursor: str) -> str:
    [sk] = decode_cursor(cursor, "events", str)
    return sk


def search_position(cursor: str) -> str:
    [position] = decode_cursor(cursor, "search", str)
    return position


def in_window(event: NormalisedEvent, window: Window) -> bool:
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


def job_position(cursor: str) -> str:
    ms, job_id = decode_cursor(cursor, "jobs", int, str)
    return f"{ms:013d}#{job_id}"


def hour_buckets(since: datetime, until: datetime) -> Iterator[str]:
    """The hour buckets (`yyyy-mm-ddThh`, UTC) that [since, until) touches, oldest first."""
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while hour < until:
        yield hour.strftime("%Y-%m-%dT%H")
        hour += timedelta(hours=1)

"""Writes: ingest a batch of SQS messages, quarantine what is malformed, publish what is new."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from django.conf import settings
from django.db import DatabaseError, transaction

from .envelope import MalformedEvent, NormalisedEvent, parse_envelope
from .models import Event, Job, RejectedMessage
from .stores import StoreUnavailable, get_store

logger = logging.getLogger(__name__)

MessageOutcome = Literal["stored", "duplicate", "quarantined"]


@dataclass(frozen=True)
class InboundMessage:
    body: str
    message_id: str = ""
    receive_count: int = 1
    sent_at: int | None = None  # SQS SentTimestamp (epoch ms): when EventBridge delivered it


@dataclass
class IngestReport:
    outcomes: list[MessageOutcome] = field(default_factory=list)
    new_events: list[NormalisedEvent] = field(default_factory=list)
    publish_failures: int = 0

    @property
    def counts(self) -> Counter:
        return Counter(self.outcomes)


def event_ingest(*, messages: Sequence[InboundMessage]) -> IngestReport:
    """Store the valid envelopes, quarantine the rest; one outcome per message, in order.

    Raises StoreUnavailable (nothing may be deleted then) when storage fails.
    """
    parsed: dict[int, NormalisedEvent] = {}
    rejected: list[tuple[int, str]] = []
    for index, message in enumerate(messages):
        try:
            event = parse_envelope(
                message.body, default_account=settings.EDOBS_ACCOUNT, delivered_at=message.sent_at
            )
            event_check_storable(event)
            parsed[index] = event
        except MalformedEvent as exc:
            rejected.append((index, str(exc)))
    stored = get_store().ingest(list(parsed.values())) if parsed else []
    message_quarantine(messages=messages, rejected=rejected)
    report = IngestReport(outcomes=["quarantined"] * len(messages))
    for (index, event), outcome in zip(parsed.items(), stored, strict=True):
        report.outcomes[index] = outcome
        if outcome == "stored":
            report.new_events.append(event)
    report.publish_failures = _publish(report.new_events)
    return report


def event_check_storable(event: NormalisedEvent) -> None:
    """MalformedEvent for a valid-looking envelope that a database would refuse.

    PostgreSQL rejects NUL characters in text and JSON, and values longer than their column;
    such an event would fail its whole batch every time, until SQS moved all ten messages to
    the dead-letter queue. Quarantining it alone keeps the other nine.
    """
    if _has_nul(event.raw):
        raise MalformedEvent("contains a NUL character (\\u0000), which cannot be stored")
    execution = event.correlation.execution
    values = {
        (Event, "source"): event.source,
        (Event, "detail_type"): event.detail_type,
        (Event, "account"): event.account,
        (Event, "region"): event.region,
        (Job, "id"): event.job or "",
        (Job, "state_machine"): execution.state_machine if execution else "",
        (Job, "name"): execution.name if execution else "",
    }
    for (model, name), value in values.items():
        limit = model._meta.get_field(name).max_length
        if len(value) > limit:
            raise MalformedEvent(f"{model.__name__.lower()} {name} is longer than {limit}")


def _has_nul(value) -> bool:
    """Whether any string (key or value) holds a NUL; iterative, like the depth check."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def message_quarantine(
    *, messages: Sequence[InboundMessage], rejected: list[tuple[int, str]]
) -> None:
    """Keep the rejected bodies, once per SQS message id.

    A worker killed after this commit and before its delete gets the same message again; the
    second quarantine is then a no-op (messages without an id are always kept).
    """
    if not rejected:
        return
    try:
        with transaction.atomic():
            rows = _rejected_rows(messages, rejected)
            known = set(
                RejectedMessage.objects.filter(
                    message_id__in=[row.message_id for row in rows if row.message_id]
                ).values_list("message_id", flat=True)
            )
            # A racing worker's row, committed after our read, is skipped by the constraint.
            RejectedMessage.objects.bulk_create(_unseen(rows, known), ignore_conflicts=True)
    except DatabaseError as exc:
        raise StoreUnavailable(f"quarantine failed: {exc}") from exc
    for index, reason in rejected:
        logger.warning("quarantined message %s: %s", messages[index].message_id, reason)


def _rejected_rows(messages: Sequence[InboundMessage], rejected: list[tuple[int, str]]):
    return [
        RejectedMessage(
            body=messages[index].body,
            reason=reason,
            message_id=messages[index].message_id,
            receive_count=messages[index].receive_count,
        )
        for index, reason in rejected
    ]


def _unseen(rows: list[RejectedMessage], known: set[str]) -> list[RejectedMessage]:
    """The rows whose message id is neither stored already nor earlier in this batch."""
    fresh = []
    for row in rows:
        if row.message_id:
            if row.message_id in known:
                continue
            known.add(row.message_id)
        fresh.append(row)
    return fresh


def _publish(events: list[NormalisedEvent]) -> int:
    """Hand new events to the live stream; a failure there never loses or delays storage."""
    if not events:
        return 0
    from .broadcast import publish_events

    try:
        return publish_events(events)
    except Exception:
        logger.exception("publishing %d new events failed; they are stored", len(events))
        return len(events)


DEAD_LETTER_REASON = "dead-letter queue"


def dead_letter_import(*, client, dlq_url: str, limit: int = 1000) -> int:
    """Move what sits in the dead-letter queue into RejectedMessage rows; returns how many.

    Each message becomes a row (once per SQS message id, reason "dead-letter queue") and is then
    deleted from the DLQ, so admin shows it and its "requeue" action can send it back. A message
    is deleted only after its row is committed: a failure leaves it in the DLQ.
    """
    imported = 0
    while imported < limit:
        response = client.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )  # fmt: skip
        messages = response.get("Messages", [])
        if not messages:
            break
        inbound = [_dead_letter(message) for message in messages]
        rejected = [(index, DEAD_LETTER_REASON) for index in range(len(inbound))]
        message_quarantine(messages=inbound, rejected=rejected)
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(messages)
        ]
        client.delete_message_batch(QueueUrl=dlq_url, Entries=entries)
        imported += len(messages)
    return imported


def _dead_letter(message: dict) -> InboundMessage:
    attributes = message.get("Attributes", {})
    return InboundMessage(
        body=message.get("Body", ""),
        message_id=message.get("MessageId", ""),
        receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
    )

"""Writes: ingest a batch of SQS messages, quarantine what is malformed, publish what is new."""

from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from events import metrics
from events.domain.causal_order import causal_batch
from events.domain.digest import json_digest
from events.domain.envelope import MalformedEvent, NormalisedEvent, parse_envelope
from events.live.broadcast import publish_events
from events.models import DeliveryFailure, Event, EventConflict, Job, RejectedMessage
from events.replay import send as replay
from events.stores import StoreRefused, StoreUnavailable, get_store
from events.stores.base import Outcome

logger = logging.getLogger(__name__)

MessageOutcome = Literal["stored", "duplicate", "conflict", "quarantined"]
MAX_REASON = 4000  # characters: an exception's text can quote a whole body
SURROGATE = re.compile("[\ud800-\udfff]")  # what json.loads leaves of an unpaired \udXXX escape


@dataclass(frozen=True)
class InboundMessage:
    body: str
    message_id: str = ""
    receive_count: int = 1
    sent_at: int | None = None  # SQS SentTimestamp (epoch ms): when EventBridge delivered it

    @classmethod
    def from_sqs(cls, message: dict) -> InboundMessage:
        """A message of ReceiveMessage's answer (the worker's queue or the dead-letter queue)."""
        attributes = message.get("Attributes", {})
        return cls(
            body=message.get("Body", ""),
            message_id=message.get("MessageId", ""),
            receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
            sent_at=_epoch_ms(attributes.get("SentTimestamp")),
        )


def _epoch_ms(value: str | None) -> int | None:
    """SentTimestamp as a number; anything else is no clock (events.domain.clock falls back)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 16:
        return int(value)
    return None


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

    Whatever a body holds, it costs only its own message: a parse that raises anything, or an
    event the store refuses, is quarantined with the reason and the rest of the batch goes on.
    Raises StoreUnavailable (nothing may be deleted then) when storage is down.
    """
    started = time.monotonic()
    parsed, rejected = _parse_all(messages)
    parsed = _causal(_attributed(parsed))
    stored = events_store(events=list(parsed.values()))
    report = IngestReport(outcomes=["quarantined"] * len(messages))
    duplicates: dict[int, NormalisedEvent] = {}
    for (index, event), outcome in zip(parsed.items(), stored, strict=True):
        if isinstance(outcome, StoreRefused):
            rejected.append((index, f"the store refused it: {outcome}"))
            continue
        report.outcomes[index] = outcome
        if outcome == "stored":
            report.new_events.append(event)
        else:
            duplicates[index] = event
    for index in conflicts_record(messages=messages, duplicates=duplicates):
        report.outcomes[index] = "conflict"
    message_quarantine(messages=messages, rejected=sorted(rejected))
    delivery_failures_clear(messages=messages)
    report.publish_failures = _publish(report.new_events)
    _measure(report.new_events, seconds=time.monotonic() - started)
    return report


def _measure(new_events: list[NormalisedEvent], *, seconds: float) -> None:
    """The batch's metrics: one increment per source label, one lag sample per new event."""
    metrics.count_ingested(event.source for event in new_events)
    for event in new_events:
        metrics.INGEST_LAG.observe(max(0.0, (event.received_at - event.at).total_seconds()))
    metrics.INGEST_BATCH.observe(seconds)


def _parse_all(
    messages: Sequence[InboundMessage],
) -> tuple[dict[int, NormalisedEvent], list[tuple[int, str]]]:
    """({index: event} of the storable messages, [(index, reason)] of the others)."""
    parsed: dict[int, NormalisedEvent] = {}
    rejected: list[tuple[int, str]] = []
    for index, message in enumerate(messages):
        try:
            parsed[index] = _parse(message)
        except MalformedEvent as exc:
            rejected.append((index, str(exc)))
        except Exception as exc:  # a body no check foresaw: it must not stop the worker
            logger.exception("parsing message %s raised; quarantining it", message.message_id)
            rejected.append((index, failure_reason(exc)))
    return parsed, rejected


def _causal(parsed: dict[int, NormalisedEvent]) -> dict[int, NormalisedEvent]:
    """The batch in the order it is stored and published: an answer after its trigger
    (events.domain.causal_order). The stores keep that arrival order, which the raw event
    search uses within one envelope second, and the live stream sends it as given."""
    index_of = {id(event): index for index, event in parsed.items()}
    return {index_of[id(event)]: event for event in causal_batch(list(parsed.values()))}


def _attributed(parsed: dict[int, NormalisedEvent]) -> dict[int, NormalisedEvent]:
    """The events, a recorded replay's under its original account (events.replay.send.attributed:
    one query, and only when the batch holds replayed events)."""
    try:
        events = replay.attributed(list(parsed.values()))
    except DatabaseError as exc:
        raise StoreUnavailable(f"reading replays failed: {exc}") from exc
    return dict(zip(parsed, events, strict=True))


def _parse(message: InboundMessage) -> NormalisedEvent:
    event = parse_envelope(
        message.body, default_account=settings.EDOBS_ACCOUNT, delivered_at=message.sent_at
    )
    event_check_storable(event)
    return event


def events_store(*, events: list[NormalisedEvent]) -> list[Outcome | StoreRefused]:
    """Store events; one outcome per event, or the store's refusal for each event it refused.

    A refusal does not say which event caused it, so the batch is split in halves until each
    refused event is alone: one bad event costs its neighbours a few more calls, never their
    place. Ingest is idempotent, so halves already stored are safe. StoreUnavailable (an
    outage) is raised at once.
    """
    if not events:
        return []
    try:
        return list(get_store().ingest(events))
    except StoreRefused as exc:
        if len(events) == 1:
            logger.warning("the store refused event %s: %s", events[0].id, exc)
            return [exc]
    middle = len(events) // 2
    return events_store(events=events[:middle]) + events_store(events=events[middle:])


def event_check_storable(event: NormalisedEvent) -> None:
    """MalformedEvent for a valid-looking envelope that a database would refuse.

    Python's json accepts NaN, Infinity and lone surrogates (`\\ud800`); PostgreSQL refuses
    them and NUL characters, no UTF-8 encoder takes a lone surrogate, and a NaN stored where
    the database lets it through (DynamoDB) would make every API answer that shows it invalid
    JSON. Values longer than their column are refused by PostgreSQL only. Such an event would
    fail its whole batch; these cheap checks quarantine it alone, with a clear reason, on every
    store alike. Whatever they miss, events_store finds by the store's own refusal.
    """
    problem = _unstorable_value(event.raw)
    if problem:
        raise MalformedEvent(problem)
    for (model, name), value in _column_values(event).items():
        limit = model._meta.get_field(name).max_length
        if len(value) > limit:
            raise MalformedEvent(f"{model.__name__.lower()} {name} is longer than {limit}")


def _column_values(event: NormalisedEvent) -> dict[tuple[type, str], str]:
    execution = event.correlation.execution
    return {
        (Event, "source"): event.source,
        (Event, "detail_type"): event.detail_type,
        (Event, "account"): event.account,
        (Event, "region"): event.region,
        (Job, "id"): event.job or "",
        (Job, "state_machine"): execution.state_machine if execution else "",
        (Job, "name"): execution.name if execution else "",
        (Job, "status"): (execution.status or "") if execution else "",
        (Job, "execution_arn"): (execution.arn or "") if execution else "",
    }


def _unstorable_value(value) -> str | None:
    """Why some string (key or value) or number cannot be stored, or None; iterative, like
    the depth check."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "contains a NUL character (\\u0000), which cannot be stored"
            if not item.isascii() and (found := SURROGATE.search(item)):
                return (
                    f"contains a lone surrogate (\\u{ord(found.group()):04x}), which is not "
                    "valid Unicode and cannot be stored"
                )
        elif isinstance(item, float) and not math.isfinite(item):
            name = "NaN" if math.isnan(item) else ("Infinity" if item > 0 else "-Infinity")
            return f"contains the number {name}, which is not JSON and cannot be stored"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


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
    metrics.count_quarantined(reason for _, reason in rejected)


def _rejected_rows(messages: Sequence[InboundMessage], rejected: list[tuple[int, str]]):
    return [
        RejectedMessage(
            body=storable_text(messages[index].body),
            reason=storable_text(reason)[:MAX_REASON],
            message_id=messages[index].message_id,
            receive_count=messages[index].receive_count,
        )
        for index, reason in rejected
    ]


def storable_text(text: str) -> str:
    """`text` as it is, or, if a database would refuse it (NUL, lone surrogates), with those
    characters escaped: a quarantine row must never fail for the very reason it is kept."""
    if "\x00" not in text and (text.isascii() or not SURROGATE.search(text)):
        return text
    escaped = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return escaped.replace("\x00", "\\x00")


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


def conflicts_record(
    *, messages: Sequence[InboundMessage], duplicates: dict[int, NormalisedEvent]
) -> list[int]:
    """Which duplicates (by message index) are conflicts: an event of that account and id is
    stored with another envelope. Each is kept as an EventConflict, once per content; the
    stored event is never touched. An exact redelivery stays a silent duplicate.

    Only duplicates pay for this (one read of the stored event each). A stored envelope that
    the store had to cut down (DynamoDB, over 400 KB: `_truncated`) cannot be compared and
    counts as the same."""
    try:
        found = {
            index: EventConflict(
                account=event.account, event_id=event.id, digest=digest, raw=event.raw,
                message_id=messages[index].message_id,
            )
            for index, event in duplicates.items()
            if (digest := json_digest(event.raw)) != _stored_digest(event, digest)
        }  # fmt: skip
        EventConflict.objects.bulk_create(found.values(), ignore_conflicts=True)
    except DatabaseError as exc:  # the batch is redelivered; ingest is idempotent
        raise StoreUnavailable(f"recording conflicts failed: {exc}") from exc
    for conflict in found.values():
        logger.warning(
            "event %s/%s: another envelope, kept as a conflict", conflict.account, conflict.event_id
        )
    return sorted(found)


def _stored_digest(event: NormalisedEvent, same: str) -> str:
    """The digest of the envelope stored for this event's account and id; `same` (no
    conflict) when none is found or the store cut it down so that it cannot be compared."""
    stored = get_store().get_events(event.id, accounts=frozenset({event.account}))
    detail = stored[0].raw.get("detail") if stored else None
    if not stored or (isinstance(detail, dict) and detail.get("_truncated") is True):
        return same
    return json_digest(stored[0].raw)


def _publish(events: list[NormalisedEvent]) -> int:
    """Hand new events to the live stream; a failure there never loses or delays storage."""
    if not events:
        return 0
    try:
        return publish_events(events)
    except Exception:
        logger.exception("publishing %d new events failed; they are stored", len(events))
        return len(events)


def delivery_failure_record(*, messages: Sequence[InboundMessage], error: Exception) -> None:
    """Remember why handling these messages failed (the batch stays in the queue), so that if
    they end in the dead-letter queue, dead_letter_import can tell the real reason.

    Best effort, and skipped when the database itself failed: there is nothing to write to
    then, and trying would only wait out its lock or connection timeout once more.
    """
    ids = [message.message_id for message in messages if message.message_id]
    if not ids or isinstance(error, DatabaseError) or isinstance(error.__cause__, DatabaseError):
        return
    now, reason = timezone.now(), storable_text(failure_reason(error))[:MAX_REASON]
    rows = [DeliveryFailure(message_id=id, reason=reason, failed_at=now) for id in ids]
    try:
        DeliveryFailure.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["message_id"],
            update_fields=["reason", "failed_at"],
        )  # fmt: skip
    except DatabaseError as exc:
        logger.warning("could not record why %d messages failed: %s", len(ids), exc)


def failure_reason(error: Exception) -> str:
    """An exception as a reason: its text, after what kind of failure it was."""
    if isinstance(error, StoreUnavailable):
        return f"store unavailable: {error}"
    return f"{type(error).__name__}: {error}"


def delivery_failures_clear(*, messages: Sequence[InboundMessage]) -> None:
    """Forget the failures of messages handled at last. Only a redelivered message can have
    one, so a first delivery (almost every message) costs no query."""
    ids = [m.message_id for m in messages if m.message_id and m.receive_count > 1]
    if not ids:
        return
    try:
        DeliveryFailure.objects.filter(message_id__in=ids).delete()
    except DatabaseError as exc:  # the batch is stored: a stale row only misleads an import
        logger.warning("could not clear the failures of %d messages: %s", len(ids), exc)


DEAD_LETTER_REASON = "dead-letter queue"


def dead_letter_import(*, client, dlq_url: str, limit: int = 1000) -> int:
    """Move what sits in the dead-letter queue into RejectedMessage rows; returns how many.

    Each message becomes a row (once per SQS message id) and is then deleted from the DLQ, so
    admin shows it and its "requeue" action can send it back. The reason is "dead-letter
    queue", followed by the last reason a worker failed to handle it when one was recorded
    (delivery_failure_record; SQS keeps the message id when it moves a message to the DLQ).
    A message is deleted only after its row is committed: a failure leaves it in the DLQ.
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
        inbound = [InboundMessage.from_sqs(message) for message in messages]
        _dead_letters_quarantine(inbound)
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(messages)
        ]
        client.delete_message_batch(QueueUrl=dlq_url, Entries=entries)
        imported += len(messages)
    return imported


def _dead_letters_quarantine(inbound: list[InboundMessage]) -> None:
    ids = [message.message_id for message in inbound if message.message_id]
    with transaction.atomic():
        failures = DeliveryFailure.objects.filter(message_id__in=ids)
        known = dict(failures.values_list("message_id", "reason"))
        rejected = [
            (index, _dead_letter_reason(known.get(message.message_id)))
            for index, message in enumerate(inbound)
        ]
        message_quarantine(messages=inbound, rejected=rejected)
        failures.delete()


def _dead_letter_reason(last_failure: str | None) -> str:
    if last_failure is None:
        return DEAD_LETTER_REASON
    return f"{DEAD_LETTER_REASON}; last failure: {last_failure}"


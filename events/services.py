"""Writes: ingest a batch of SQS messages, quarantine what is malformed, publish what is new."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from django.conf import settings
from django.db import DatabaseError

from .envelope import MalformedEvent, NormalisedEvent, parse_envelope
from .models import RejectedMessage
from .stores import StoreUnavailable, get_store

logger = logging.getLogger(__name__)

MessageOutcome = Literal["stored", "duplicate", "quarantined"]


@dataclass(frozen=True)
class InboundMessage:
    body: str
    message_id: str = ""
    receive_count: int = 1


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
            parsed[index] = parse_envelope(message.body, default_account=settings.EDOBS_ACCOUNT)
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


def message_quarantine(
    *, messages: Sequence[InboundMessage], rejected: list[tuple[int, str]]
) -> None:
    if not rejected:
        return
    try:
        RejectedMessage.objects.bulk_create(_rejected_rows(messages, rejected))
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

"""How the ORM store reads an event row back: as values, never as a model instance.

Every read of stored events (a job's events, a window, a search, the rollups' pairing and their
rebuild) goes through `read_events` or `event_from_values`: a Django model per row was 40% of
reading a long job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db.models import QuerySet

from events.domain.envelope import NormalisedEvent, stored_event

# The columns an event is made of, in the order event_from_values takes them.
EVENT_FIELDS = (
    "raw", "event_id", "source", "detail_type", "account", "region", "time", "received_at", "at",
    "at_source",
)  # fmt: skip
TIME, AT = EVENT_FIELDS.index("time"), EVENT_FIELDS.index("at")


def event_from_values(values: Sequence) -> NormalisedEvent:
    """The stored event of a row's EVENT_FIELDS."""
    raw, event_id, source, detail_type, account, region, time, received_at, at, at_source = values
    return stored_event(
        raw, id=event_id, source=source, detail_type=detail_type, account=account, region=region,
        time=time, received_at=received_at, at=at, at_source=at_source,
    )  # fmt: skip


def read_events(rows: QuerySet) -> list[tuple[NormalisedEvent, datetime, datetime, int]]:
    """(event, time, at, seq) of every row of `rows`, in its order: the keys its pages go on by."""
    return [
        (event_from_values(values[:-1]), values[TIME], values[AT], values[-1])
        for values in rows.values_list(*EVENT_FIELDS, "seq")
    ]

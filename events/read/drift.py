"""Schema drift read from the store: the samples of two windows, then events.domain.drift's pure
diff.

Apart from events.domain.drift so that the domain never reads a store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from events.domain import drift
from events.domain.drift import Sample, Windows, drift_counts_of, schema_detail_of, schema_list_of
from events.domain.schemas import infer_types
from events.stores import get_store
from events.stores.base import Accounts, Window


def read_types(
    accounts: Accounts, since: datetime, until: datetime, *, source: str | None = None,
    detail_type: str | None = None, with_schema: bool = False,
) -> Sample:  # fmt: skip
    """The inferred schemas of the events in [since, until) (envelope time) in these accounts.
    At most events.domain.drift.SAMPLE events, read through the module (a test may lower it):
    the newest, so that a change deployed minutes ago shows in a busy window; handed to the
    inference oldest first, so "the first event that showed it" is the first of those read."""
    if accounts == frozenset():
        return Sample({}, False)
    sample = drift.SAMPLE
    window = Window(
        since=since, until=until, source=source, detail_type=detail_type, limit=sample,
        newest_first=True,
    )  # fmt: skip
    events = get_store().events_window(window, accounts=accounts)[::-1]
    # Not every store pushes the type down (DynamoDB reads by time): checked here as well.
    wanted = [
        event for event in events
        if (source is None or event.source == source)
        and (detail_type is None or event.detail_type == detail_type)
    ]  # fmt: skip
    return Sample(infer_types(wanted, with_schema=with_schema), len(events) >= sample)


def _any_events(accounts: Accounts, since: datetime, until: datetime) -> bool:
    if accounts == frozenset():
        return False
    window = Window(since=since, until=until, limit=1)
    return bool(get_store().events_window(window, accounts=accounts))


def schema_list(accounts: Accounts, windows: Windows) -> dict[str, Any]:
    """Every event type seen in either window, busiest first."""
    now = read_types(accounts, windows.since, windows.until)
    then = read_types(accounts, windows.base_since, windows.base_until)
    return schema_list_of(now, then)


def schema_detail(
    accounts: Accounts, windows: Windows, *, source: str, detail_type: str
) -> dict[str, Any] | None:
    """One type's fields, drift and inferred JSON Schema; None when neither window has it."""
    scope = {"source": source, "detail_type": detail_type}
    now = read_types(accounts, windows.since, windows.until, **scope, with_schema=True)
    then = read_types(accounts, windows.base_since, windows.base_until, **scope)
    return schema_detail_of(
        now, then, **scope,
        base_has_events=lambda: _any_events(accounts, windows.base_since, windows.base_until),
    )  # fmt: skip


def drift_counts(
    accounts: Accounts, since: datetime, until: datetime, base_since: datetime | None = None,
    base_until: datetime | None = None,
) -> dict[str, int]:  # fmt: skip
    """{"event:<source>/<detail-type>": drifted fields} of the types seen in [since, until),
    the architecture's node ids (events.domain.architecture); types without drift are left out."""
    windows = Windows.make(since=since, until=until, base_since=base_since, base_until=base_until)
    return drift_counts_of(schema_list(accounts, windows))

"""A job's events in causal order, a page at a time (`GET /api/jobs/<job id>/events`).

The stores page a job's events by `at` (then arrival), but an answer whose producer's clock reads
earlier than its trigger's delivery would then come before it (DESIGN section 10, "Time"). The
causal order is known only over the whole job (events.domain.timeline.in_order pairs it), so a
page reads the job, orders it and cuts it. Its cursor is a key, not a position: the order time of
the last event it gave and how many events of that same order time it gave, so events that
arrive between two pages (later, or purged) move nothing already read. Its shape is the stores'
own job-events cursor's (`events`, a time, a count), so it is checked the same way.
"""

from __future__ import annotations

from datetime import datetime

from events.domain.envelope import NormalisedEvent
from events.domain.summary import JobSummary
from events.domain.timeline import by_at, order_times
from events.read.selectors import JOB_EVENTS_MAX, job_events_stored
from events.stores import Page
from events.stores.base import decode_cursor, encode_cursor

KIND = "events"  # the listing it pages, as the stores name their own job-events cursors


def job_event_page_in_order(
    *, user, job: JobSummary, limit: int = 100, cursor: str | None = None
) -> Page[NormalisedEvent]:
    """A page of the job's events in causal order; BadCursor for a cursor of another listing."""
    after = decode_cursor(cursor, KIND, datetime, int) if cursor else None
    events = by_at(job_events_stored(user=user, job=job, limit=JOB_EVENTS_MAX))
    times = order_times(events)
    keys = sorted(((times[event.id], event) for event in events), key=lambda pair: pair[0])
    start = _start([at for at, _ in keys], after)
    page = keys[start : start + limit]
    if not page or start + limit >= len(keys):
        return Page([event for _, event in page])
    last = page[-1][0]
    given = start + len(page) - _first(keys, last)
    return Page([event for _, event in page], encode_cursor(KIND, last, given))


def _first(keys: list, at: datetime) -> int:
    """Where order time `at` starts in `keys` (sorted by order time)."""
    return next(n for n, (time, _) in enumerate(keys) if time >= at)


def _start(times: list[datetime], after: list | None) -> int:
    """Where the page after the cursor starts: past the `given` events of its order time."""
    if after is None:
        return 0
    at, given = after
    first = next((n for n, time in enumerate(times) if time >= at), len(times))
    ties = sum(1 for time in times[first:] if time == at)
    return first + min(given, ties)

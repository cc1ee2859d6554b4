"""The lists the pages show: jobs and events read through the selectors, filtered, sorted,
counted and cut into numbered pages.

The stores page by cursor in one order (newest activity first). A page that sorts by any
column and says "51–100 of 734" needs the whole matching set, so a listing reads the matches
newest first, at most `cap` of them (and at most `read` rows in all); past that `more` is True
and the count is a lower bound ("1,000+"), and sorting applies to the newest `cap` matches.

Text filters are case-insensitive and match inside the value (`order` finds `OrderFlow`):
they are checked here, after the store, so they read like one another on every backend.
Account and job ids stay exact and go to the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from events.domain import fleet, search
from events.domain.envelope import NormalisedEvent
from events.domain.summary import JobSummary
from events.domain.timeline import by_at, order_times
from events.read import selectors
from events.stores.base import JobFilter, Window

T = TypeVar("T")
JOB_CAP = 2_000  # matching jobs a listing sorts and counts
JOB_READ = 20_000  # jobs read at most
EVENT_CAP = 1_000
EVENT_CALLS = 10  # event_search_page calls (each reads at most 20,000 rows)
STORE_PAGE = 500


@dataclass(frozen=True)
class Listing(Generic[T]):
    items: list[T]  # this page
    total: int  # matches found
    more: bool  # the reading stopped before the end: `total` is a lower bound
    offset: int
    limit: int

    @property
    def first(self) -> int:
        return self.offset + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.offset + len(self.items)

    @property
    def has_next(self) -> bool:
        return self.last < self.total

    @property
    def has_previous(self) -> bool:
        return self.offset > 0


@dataclass(frozen=True)
class JobQuery:
    filters: JobFilter = field(default_factory=JobFilter)  # statuses and durations: the store's
    state_machine: str = ""  # case-insensitive, inside the name
    stuck: bool = False
    since: datetime | None = None  # activity (first to last event) touches [since, until)
    until: datetime | None = None
    sort: str = "-last"
    # Exactly one Map Run's state machine (`Parent/Label`): its children, one row each.
    # Otherwise each Map Run is one row (events.read.selectors.job_list_latest, group_map_runs).
    map_run: str = ""


def _started(job: JobSummary) -> datetime | None:
    return job.started_at or job.first_event_at


JOB_SORTS: dict[str, Callable[[JobSummary, datetime], Any]] = {
    "started": lambda job, now: _started(job),
    "duration": lambda job, now: fleet.duration_ms(job, now),
    "events": lambda job, now: job.event_count,
    "status": lambda job, now: job.status or "UNKNOWN",
    "last": lambda job, now: job.last_event_at,
    "state_machine": lambda job, now: job.state_machine.casefold(),
}
EVENT_SORTS: dict[str, Callable[[NormalisedEvent, datetime], Any]] = {
    "time": lambda event, now: (event.time, event.at),  # event_listing: then the causal order
    "source": lambda event, now: event.source.casefold(),
    "detail_type": lambda event, now: event.detail_type.casefold(),
    "fn": lambda event, now: (event.fn or "").casefold(),
}


def sort_key(text: str, sorts: dict, default: str) -> tuple[str, bool]:
    """(column, descending) from `col` or `-col`; the default for anything unknown."""
    name = text.removeprefix("-")
    if name not in sorts:
        return sort_key(default, sorts, default)
    return name, text.startswith("-")


def ordered(items: list[T], sorts: dict, sort: str, default: str, now: datetime) -> list[T]:
    """Sorted by the column, unknown values (None) last either way; ties keep read order."""
    name, descending = sort_key(sort, sorts, default)
    key = sorts[name]
    known = [item for item in items if key(item, now) is not None]
    unknown = [item for item in items if key(item, now) is None]
    return sorted(known, key=lambda item: key(item, now), reverse=descending) + unknown


def contains(value: str | None, wanted: str) -> bool:
    return not wanted or search.fold(wanted) in search.fold(value or "")


# ---- jobs --------------------------------------------------------------------------------------


def job_listing(
    *, user, query: JobQuery, offset: int = 0, limit: int = 50, now: datetime | None = None,
    cap: int = JOB_CAP,
) -> tuple[Listing[JobSummary], dict[str, fleet.Health]]:  # fmt: skip
    """A page of the jobs that match, sorted, with each page job's health."""
    now = now or datetime.now(UTC)
    baselines: selectors.Baselines = {}
    found, more = _job_matches(user=user, query=query, baselines=baselines, cap=cap)
    rows = ordered(found, JOB_SORTS, query.sort, "-last", now)
    page = rows[offset : offset + limit]
    health = selectors.job_health(user=user, jobs=page, now=now, baselines=baselines)
    return Listing(page, len(found), more, offset, limit), health


def _job_matches(
    *, user, query: JobQuery, baselines: selectors.Baselines, cap: int
) -> tuple[list[JobSummary], bool]:
    found: list[JobSummary] = []
    filters = replace(query.filters, state_machine=query.map_run or None)
    jobs = _newest_jobs(
        user=user, read=JOB_READ, filters=filters, stuck=query.stuck, baselines=baselines,
        group_map_runs=not query.map_run,
    )  # fmt: skip
    for job in jobs:
        if job is None:
            return found, True
        if query.since and job.last_event_at and job.last_event_at < query.since:
            return found, False  # newest activity first: the rest is older still
        if _job_wanted(job, query):
            found.append(job)
            if len(found) >= cap:
                return found, True
    return found, False


def _newest_jobs(*, user, read: int, **selecting: Any) -> Iterator[JobSummary | None]:
    """The jobs the user sees, newest activity first, read a store page at a time and only as
    far as they are taken; None last when `read` jobs were read and the store has more."""
    cursor, seen = None, 0
    while True:
        page = selectors.job_list_latest(user=user, limit=STORE_PAGE, cursor=cursor, **selecting)
        yield from page.items
        seen += max(len(page.items), 1)
        cursor = page.next_cursor
        if cursor is None:
            return
        if seen >= read:
            yield None
            return


def _job_wanted(job: JobSummary, query: JobQuery) -> bool:
    if query.until and job.first_event_at and job.first_event_at >= query.until:
        return False
    return contains(job.state_machine, query.state_machine)


def state_machine_names(*, user, limit: int = 12, read: int = 2_000) -> list[str]:
    """The state machines of the jobs with the newest activity, most recently active first."""
    names: list[str] = []
    for job in _newest_jobs(user=user, read=read):
        if job is None:
            break
        if job.state_machine not in names:
            names.append(job.state_machine)
            if len(names) >= limit:
                break
    return names


# ---- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventQuery:
    window: Window  # account, job, since, until and `where` go to the store
    text: str = ""
    source: str = ""  # case-insensitive, inside the value
    detail_type: str = ""
    fn: str = ""
    sort: str = "-time"


def event_listing(
    *, user, query: EventQuery, offset: int = 0, limit: int = 50, cap: int = EVENT_CAP
) -> Listing[NormalisedEvent]:
    found, more = _event_matches(user=user, query=query, cap=cap)
    sorts = EVENT_SORTS
    if sort_key(query.sort, EVENT_SORTS, "-time")[0] == "time":  # pairs the jobs' events: only then
        sorts = {**EVENT_SORTS, "time": _causal_time(found)}
    rows = ordered(found, sorts, query.sort, "-time", datetime.now(UTC))
    return Listing(rows[offset : offset + limit], len(found), more, offset, limit)


def _causal_time(events: list[NormalisedEvent]) -> Callable[[NormalisedEvent, datetime], Any]:
    """The time column's key: the envelope's `time`, then the event's order time in its job
    (events.domain.timeline.order_times) rather than its `at`, so that an answer whose own
    clock reads before its trigger's delivery never sorts before it (issue 25: every list)."""
    by_job: dict[str | None, list[NormalisedEvent]] = {}
    for event in events:
        by_job.setdefault(event.job, []).append(event)
    times = {event.id: event.at for event in by_job.pop(None, [])}
    for group in by_job.values():
        times.update(order_times(by_at(group)))
    return lambda event, now: (event.time, times[event.id])


def _event_matches(*, user, query: EventQuery, cap: int) -> tuple[list[NormalisedEvent], bool]:
    window = replace(query.window, source=None, detail_type=None, fn=None)
    found: list[NormalisedEvent] = []
    cursor = None
    for _ in range(EVENT_CALLS):
        page = selectors.event_search_page(
            user=user, window=window, text=query.text, limit=STORE_PAGE, cursor=cursor
        )
        for event in page.items:
            if _event_wanted(event, query):
                found.append(event)
                if len(found) >= cap:
                    return found, True
        cursor = page.next_cursor
        if cursor is None:
            return found, False
    return found, True


def _event_wanted(event: NormalisedEvent, query: EventQuery) -> bool:
    return (
        contains(event.source, query.source)
        and contains(event.detail_type, query.detail_type)
        and contains(event.fn, query.fn)
    )

"""Function failure rates for an architecture graph, read through the selectors: the events of
the window's failed jobs (events.domain.fn_failures says how they count)."""

from __future__ import annotations

from collections.abc import Iterator

from events.domain import fleet
from events.domain.fn_failures import with_failure_rates
from events.domain.summary import JobSummary
from events.read import selectors
from events.stores.base import JobFilter, Window

# Failed jobs read at most per graph: measured on SQLite (2 busy cores), 100 failed jobs of 6
# events took 1.5 s to read, so 50 keep a page's extra wait under about 0.8 s; past that the
# graph says `failures_sampled` and the page shows the rates as lower bounds ("≥").
FAILED_JOBS = 50
PAGE = 100


def architecture_with_failures(*, user, graph: dict, window: Window) -> dict:
    """The graph with each function node's `failed` runs and `failure_rate` in the window."""
    jobs = list(_failed_jobs(user=user, window=window, limit=FAILED_JOBS + 1))
    sampled = len(jobs) > FAILED_JOBS
    events = (selectors.job_event_list(user=user, job=job) for job in jobs[:FAILED_JOBS])
    return with_failure_rates(graph, events, sampled=sampled)


def _failed_jobs(*, user, window: Window, limit: int) -> Iterator[JobSummary]:
    """The failed jobs that stopped in the window, newest activity first."""
    filters = JobFilter(
        state_machine=window.state_machine, statuses=tuple(sorted(fleet.FAILED_STATUSES))
    )
    cursor, found = None, 0
    while found < limit:
        page = selectors.job_list_latest(user=user, limit=PAGE, cursor=cursor, filters=filters)
        for job in page.items:
            if window.since and job.last_event_at and job.last_event_at < window.since:
                return  # newest activity first: the rest is older still
            stop = job.stopped_at or job.last_event_at
            if window.until and stop and stop >= window.until:
                continue
            found += 1
            yield job
            if found >= limit:
                return
        cursor = page.next_cursor
        if cursor is None:
            return

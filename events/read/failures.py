"""Failure groups read on behalf of a user (events.domain.failures groups them).

Bounded work: the failed and timed-out jobs of the window are read newest activity first, at most
`cap` of them (FAILURE_JOBS); past that the answer says `capped` and its counts are lower bounds.
Each job's failed state comes from its timeline, built from at most FAILURE_JOB_EVENTS of its
events (its newest, when it has more: the failure is at its end). Everything goes through the
store protocol, so it reads the same on every backend.

Reading a job's events is most of the cost (one store query per job: about 6 ms on SQLite, 15 ms
on PostgreSQL), so a job's failed state is kept in the process's cache, keyed by the job, its
last status change and event count and the accounts read (a job that changes is read again).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import caches

from events.domain import failures
from events.domain.summary import JobSummary
from events.domain.timeline import job_timeline
from events.read.selectors import visible_accounts
from events.stores import get_store
from events.stores.base import Accounts, JobFilter, Store, Window

FAILURE_JOBS = 500  # failed jobs a grouping reads at most
FAILURE_JOB_EVENTS = 2_000  # events of one failed job its failed state is read from
STORE_PAGE = 500
SIMILAR_JOBS = 200  # jobs a job page reads to count its group
STATE_CACHE_SECONDS = 6 * 3600


@dataclass(frozen=True)
class Grouping:
    groups: list[failures.Group]
    scanned: int  # failed jobs read
    capped: bool  # stopped at the cap: there may be more failures in the window


def failure_groups(
    *, user, since: datetime, until: datetime, state_machine: str | None = None,
    cap: int = FAILURE_JOBS, trend_buckets: int = 24,
) -> Grouping:  # fmt: skip
    """The failure groups of the jobs the user sees that failed in [since, until)."""
    return groups_in(
        get_store(), accounts=visible_accounts(user), since=since, until=until,
        state_machine=state_machine, cap=cap, trend_buckets=trend_buckets,
    )  # fmt: skip


def groups_in(
    store: Store, *, accounts: Accounts, since: datetime, until: datetime,
    state_machine: str | None = None, cap: int = FAILURE_JOBS, trend_buckets: int = 24,
) -> Grouping:  # fmt: skip
    jobs, capped = _failed_jobs(store, accounts, since, until, state_machine, cap)
    states = failed_states(store, accounts, jobs)
    found = [_failure(job, states[job.id]) for job in jobs]
    groups = failures.group_failures(found, since=since, until=until, trend_buckets=trend_buckets)
    return Grouping(groups, len(jobs), capped)


def _failed_jobs(
    store: Store, accounts: Accounts, since: datetime, until: datetime,
    state_machine: str | None, cap: int,
) -> tuple[list[JobSummary], bool]:  # fmt: skip
    """Failed jobs whose failure falls in the window, newest activity first, at most `cap`."""
    filters = JobFilter(statuses=failures.FAILED_STATUSES, state_machine=state_machine)
    found: list[JobSummary] = []
    cursor = None
    while True:
        page = store.latest_jobs(accounts=accounts, limit=STORE_PAGE, cursor=cursor,
                                 filters=filters)  # fmt: skip
        for job in page.items:
            if job.last_event_at and job.last_event_at < since:
                return found, False  # newest activity first: the rest failed earlier still
            if since <= failed_at(job) < until:
                found.append(job)
                if len(found) >= cap:
                    return found, True
        cursor = page.next_cursor
        if cursor is None:
            return found, False


def failed_at(job: JobSummary) -> datetime:
    moment = job.stopped_at or job.status_at or job.last_event_at
    assert moment is not None, "a stored job has events"
    return moment


def failed_states(store: Store, accounts: Accounts, jobs: list[JobSummary]) -> dict:
    """Job id -> the state it failed in (events.domain.failures.failed_state), cached."""
    cache = caches["default"]
    keys = {job.id: _cache_key(job, accounts) for job in jobs}
    cached = cache.get_many(list(keys.values()))
    states = {job_id: cached[key][0] for job_id, key in keys.items() if key in cached}
    missing = {job.id: _read_state(store, accounts, job) for job in jobs if job.id not in states}
    cache.set_many({keys[job_id]: (state,) for job_id, state in missing.items()},
                   timeout=STATE_CACHE_SECONDS)  # fmt: skip
    return {**states, **missing}


def _cache_key(job: JobSummary, accounts: Accounts) -> str:
    seen = "*" if accounts is None else ",".join(sorted(accounts))
    parts = [job.id, job.status, iso_or_none(job.status_at), job.event_count, seen]
    digest = hashlib.sha256(json.dumps(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"edobs:failed-state:{digest}"


def iso_or_none(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _read_state(store: Store, accounts: Accounts, job: JobSummary) -> str | None:
    spans = job_timeline(_job_events(store, accounts, job))["spans"]
    return failures.failed_state(spans, job.status)


def _failure(job: JobSummary, state: str | None) -> failures.Failure:
    return failures.Failure(
        job=job.id, state_machine=job.state_machine, account=job.account, state=state,
        error=job.error, cause=job.cause, at=failed_at(job),
    )  # fmt: skip


def _job_events(store: Store, accounts: Accounts, job: JobSummary) -> list:
    """At most FAILURE_JOB_EVENTS of the job's events: all of them, or its newest."""
    if job.event_count > FAILURE_JOB_EVENTS:
        window = Window(job=job.id, account=job.account)

        def read(cursor):
            return store.events_page(window, accounts=accounts, limit=STORE_PAGE, cursor=cursor)
    else:

        def read(cursor):
            return store.job_events(job.id, accounts=accounts, limit=STORE_PAGE, cursor=cursor)

    events: list = []
    cursor = None
    while len(events) < FAILURE_JOB_EVENTS:
        page = read(cursor)
        events.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return events[:FAILURE_JOB_EVENTS]


def group_of(*, state_machine: str, state: str | None, error: str | None,
             cause: str | None) -> str:  # fmt: skip
    """The id of the group a failure with these parts belongs to."""
    return failures.fingerprint(state_machine, state, error, failures.normalise_cause(cause))


def similar_failures(
    *, user, job: JobSummary, state: str | None, since: datetime, until: datetime
) -> tuple[str, int, bool] | None:
    """The job's group id and how many failures of the user's visible jobs it holds in the
    window (this job included), and whether that count stopped at SIMILAR_JOBS; None for a
    job that did not fail."""
    if job.status not in failures.FAILED_STATUSES:
        return None
    grouping = failure_groups(
        user=user, since=since, until=until, state_machine=job.state_machine, cap=SIMILAR_JOBS,
        trend_buckets=1,
    )  # fmt: skip
    group = group_of(state_machine=job.state_machine, state=state, error=job.error,
                     cause=job.cause)  # fmt: skip
    count = next((g.count for g in grouping.groups if g.id == group), 0)
    return group, count, grouping.capped

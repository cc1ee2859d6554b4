"""Reads, scoped to what the user's team may see. Every view and consumer reads through here."""

from __future__ import annotations

import json
from dataclasses import replace

from .correlation import JobRef, parse_job_ref
from .envelope import NormalisedEvent
from .models import TeamAccount
from .stores import Page, get_store
from .stores.base import Accounts, JobFilter, Window
from .summary import JobSummary

JOB_EVENTS_MAX = 100_000


def visible_accounts(user) -> Accounts:
    """None for superusers (everything); otherwise the accounts their teams are granted."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return None
    accounts = TeamAccount.objects.filter(team__members=user).values_list("account", flat=True)
    return frozenset(accounts)


def can_see_account(user, account: str) -> bool:
    accounts = visible_accounts(user)
    return accounts is None or account in accounts


def job_list_latest(
    *, user, limit: int = 50, cursor: str | None = None, status: str | None = None,
    state_machine: str | None = None,
) -> Page[JobSummary]:  # fmt: skip
    filters = JobFilter(status=status or None, state_machine=state_machine or None)
    return get_store().latest_jobs(
        accounts=visible_accounts(user), limit=limit, cursor=cursor, filters=filters
    )


def job_get(*, user, job_id: str) -> JobSummary | None:
    """A job by its id (`ACCOUNT:REGION:STATE_MACHINE:NAME`) or a short form
    (`STATE_MACHINE:NAME`, or the bare execution name), resolved among the jobs the user may
    see, newest activity first. Unknown and not visible are the same answer: None."""
    ref = parse_job_ref(job_id)
    return None if ref is None else job_resolve(user=user, ref=ref)


def job_resolve(*, user, ref: JobRef) -> JobSummary | None:
    store, accounts = get_store(), visible_accounts(user)
    if accounts == frozenset():
        return None
    if ref.full:
        return store.get_job(ref.id, accounts=accounts)
    return store.find_job(name=ref.name, state_machine=ref.state_machine, accounts=accounts)


class AmbiguousEvent(Exception):
    """The envelope id is an event in several of the accounts looked in: name the account."""


def event_get(*, user, event_id: str, account: str | None = None) -> NormalisedEvent | None:
    """One event by envelope id, among the accounts the user may see (or only `account`).

    Unknown and not visible are the same answer: None.  Raises AmbiguousEvent when the id is
    an event of several of those accounts.  A superuser who names no account is answered from
    the accounts edobs knows (granted to a team, EDOBS_ACCOUNT, EDOBS_SOURCE_ACCOUNTS): an
    event is found by (account, id), never by a scan.  The links edobs makes name the account.
    """
    accounts = visible_accounts(user)
    if account is not None:
        accounts = frozenset({account}) if accounts is None or account in accounts else None
        if accounts is None:
            return None
    elif accounts is None:
        accounts = _known_accounts()
    if not accounts:
        return None
    found = get_store().get_events(event_id, accounts=accounts)
    if len(found) > 1:
        raise AmbiguousEvent(", ".join(event.account for event in found))
    return found[0] if found else None


def _known_accounts() -> frozenset[str]:
    from django.conf import settings

    granted = TeamAccount.objects.values_list("account", flat=True).distinct()
    return frozenset([*granted, settings.EDOBS_ACCOUNT, *settings.EDOBS_SOURCE_ACCOUNTS])


def job_event_page(
    *, user, job: JobSummary, limit: int = 100, cursor: str | None = None
) -> Page[NormalisedEvent]:
    return get_store().job_events(
        job.id, accounts=visible_accounts(user), limit=limit, cursor=cursor
    )


def job_event_list(*, user, job: JobSummary, limit: int = JOB_EVENTS_MAX) -> list[NormalisedEvent]:
    """All of a job's events in order (paged through the store), up to `limit`."""
    events: list[NormalisedEvent] = []
    cursor = None
    while len(events) < limit:
        page = job_event_page(user=user, job=job, limit=500, cursor=cursor)
        events.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return events[:limit]


def job_timeline(*, user, job: JobSummary) -> dict:
    from .timeline import job_timeline as compute

    return compute(job_event_list(user=user, job=job))


def architecture_graph(*, user, window: Window) -> dict:
    from .architecture import infer_architecture

    events = get_store().events_window(window, accounts=visible_accounts(user))
    return infer_architecture(events)


def _matches(event: NormalisedEvent, window: Window, text: str) -> bool:
    wanted = {
        "source": window.source,
        "detail_type": window.detail_type,
        "account": window.account,
        "job": window.job,
    }
    if any(value and getattr(event, name) != value for name, value in wanted.items()):
        return False
    return not text or text in event.id or text in json.dumps(event.detail).lower()


def event_search(*, user, window: Window, text: str = "") -> list[NormalisedEvent]:
    """Raw events, newest first, filtered by the window's fields and a free-text search.

    Stores may push the equality filters down; they are checked again here so every backend
    answers the same. The text search matches the envelope id or anything in the detail.
    """
    text = text.strip().lower()
    scan = replace(window, newest_first=True, limit=window.limit if not text else 20_000)
    events = get_store().events_window(scan, accounts=visible_accounts(user))
    found = [event for event in events if _matches(event, window, text)]
    found.sort(key=lambda event: event.time, reverse=True)
    return found[: window.limit]


def job_compare(*, user, a: JobSummary, b: JobSummary) -> dict:
    """Two visible jobs step by step (events.compare)."""
    from .compare import compare_jobs

    return compare_jobs(job_event_list(user=user, job=a), job_event_list(user=user, job=b))


def job_mermaid(*, user, job: JobSummary) -> str:
    """The job's timeline as a Mermaid Gantt chart (events.export)."""
    from .export import mermaid_gantt

    return mermaid_gantt(f"{job.state_machine} {job.name}", job_timeline(user=user, job=job))

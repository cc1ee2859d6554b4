"""Job summaries kept current from events, whatever order they arrive in (pure).

Both stores use `apply_events`, so a summary means the same thing on every backend.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from events.domain.correlation import TERMINAL_STATUSES, Execution
from events.domain.envelope import NormalisedEvent, iso

# Attempts kept per job, the latest ones: a job summary stays one small item (DynamoDB's limit is
# 400 KB) even when some producer sends `redriveCount` values that no real execution reaches.
MAX_ATTEMPTS = 100


@dataclass(frozen=True)
class LatestEvent:
    id: str
    source: str
    detail_type: str
    account: str
    time: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class JobSummary:
    id: str
    state_machine: str
    name: str
    account: str
    region: str
    execution_arn: str | None = None
    status: str | None = None
    status_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    error: str | None = None
    cause: str | None = None
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None
    event_count: int = 0
    latest: LatestEvent | None = None
    # The job id of the execution that started this one (events.domain.correlation.started_by).
    parent: str | None = None
    # One per run of a redriven execution, oldest first: {"attempt", "start", "stop", "status",
    # "error"} (times ISO-8601), JSON as stored; the job's status is the latest attempt's.
    attempts: tuple[dict[str, Any], ...] = ()
    # A Distributed Map child's Map Run with its children's counts; never stored, filled by
    # events.read.selectors when it reads a child (events.domain.maprun).
    map_run: dict[str, Any] | None = None


def status_rank(status: str | None) -> int:
    if status is None:
        return 0
    return 2 if status in TERMINAL_STATUSES else 1


def new_summary(event: NormalisedEvent) -> JobSummary:
    execution = event.correlation.execution
    assert execution is not None and event.job is not None
    return JobSummary(
        id=event.job,
        state_machine=execution.state_machine,
        name=execution.name,
        account=event.account,
        region=event.region,
    )


def latest_attempt(summary: JobSummary) -> int:
    return summary.attempts[-1]["attempt"] if summary.attempts else 0


def _attempt(execution: Execution) -> dict[str, Any]:
    start = execution.redriven_at if execution.attempt else execution.started_at
    return {
        "attempt": execution.attempt, "start": iso(start),
        "stop": iso(execution.stopped_at) if execution.status in TERMINAL_STATUSES else None,
        "status": execution.status, "error": execution.error,
    }  # fmt: skip


def _merge_attempt(attempts: tuple[dict[str, Any], ...], execution: Execution) -> tuple:
    """The attempts with this status event's run merged in: within a run, a status wins if it
    is further along (status events arrive in any order)."""
    new = _attempt(execution)
    known = {a["attempt"]: a for a in attempts}
    old = known.get(execution.attempt) or new
    chosen = old if status_rank(old["status"]) > status_rank(new["status"]) else new
    known[execution.attempt] = {**chosen, "start": chosen["start"] or old["start"]}
    return tuple(known[n] for n in sorted(known)[-MAX_ATTEMPTS:])


def _apply_status(summary: JobSummary, execution: Execution, at: datetime) -> JobSummary:
    """A status wins if it is of a later attempt (a redrive), or of the same attempt and
    further along, or as far along and no older."""
    current_attempt = latest_attempt(summary)
    rank = (execution.attempt, status_rank(execution.status))
    current = (current_attempt, status_rank(summary.status))
    started = min(filter(None, [summary.started_at, execution.started_at]), default=None)
    summary = replace(
        summary, started_at=started, attempts=_merge_attempt(summary.attempts, execution),
        parent=summary.parent or execution.parent,
    )  # fmt: skip
    if rank < current or (rank == current and summary.status_at and at < summary.status_at):
        return summary
    kept_stop = summary.stopped_at if execution.attempt == current_attempt else None
    stop = execution.stopped_at if execution.status in TERMINAL_STATUSES else None
    return replace(
        summary,
        status=execution.status,
        status_at=at,
        stopped_at=stop or kept_stop,
        error=execution.error,
        cause=execution.cause,
    )


def apply_event(summary: JobSummary, event: NormalisedEvent) -> JobSummary:
    execution = event.correlation.execution
    if execution is not None and execution.arn and not summary.execution_arn:
        summary = replace(summary, execution_arn=execution.arn)
    if execution is not None and execution.status:
        summary = _apply_status(summary, execution, event.at)
    first = min(filter(None, [summary.first_event_at, event.at]))
    summary = replace(summary, first_event_at=first, event_count=summary.event_count + 1)
    # Ties in time go to the later arrival: the per-job arrival sequence breaks them. Times
    # are `at`, the best clock of each event (events.domain.clock).
    if summary.last_event_at is None or event.at >= summary.last_event_at:
        latest = LatestEvent(
            id=event.id,
            source=event.source,
            detail_type=event.detail_type,
            account=event.account,
            time=event.time,
            detail=event.detail,
        )
        summary = replace(summary, last_event_at=event.at, latest=latest)
    return summary


def apply_events(summary: JobSummary | None, events: Iterable[NormalisedEvent]) -> JobSummary:
    for event in events:
        summary = apply_event(summary or new_summary(event), event)
    assert summary is not None, "apply_events needs at least one event"
    return summary

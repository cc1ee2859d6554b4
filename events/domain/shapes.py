"""JSON shapes of the API: the original design's items and edobs's own (DESIGN section 6)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from events.domain import budgets
from events.domain.clock import ms
from events.domain.envelope import NormalisedEvent, iso
from events.domain.fleet import Health
from events.domain.replay_marks import replay_of_job
from events.domain.summary import JobSummary


def original_latest_item(job: JobSummary) -> dict[str, Any]:
    """One `/api/latest` item. Detail fields come first so they can never overwrite ours.

    `latest` is the latest event's `at` in ms. `meta.job` and `meta.stateMachine` are always
    there (the original frontend reads them): filled from the job when the event has none, as
    Step Functions' own events never do, merged into its `meta` without overwriting it.
    """
    latest = job.latest
    item: dict[str, Any] = dict(latest.detail) if latest else {}
    meta = item.get("meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    for key, value in (("job", job.name), ("stateMachine", job.state_machine)):
        if meta.get(key) is None:
            meta[key] = value
    item.update(
        meta=meta,
        pk="LATEST",
        sk=f"EVENT#{job.id}",
        latest=str(ms(job.last_event_at)) if job.last_event_at else None,
        account=latest.account if latest else job.account,
        source=latest.source if latest else None,
        detailType=latest.detail_type if latest else None,
    )
    return item


def original_event_item(event: NormalisedEvent, *, sk: int | None = None) -> dict[str, Any]:
    """An event as the original design stored it: its detail's fields, then the keys.

    `sk` is the event's `at` in ms unless given (see `original_event_items`).
    """
    item: dict[str, Any] = dict(event.detail)
    item.update(
        pk=f"EVENT#{event.job or ''}",
        sk=str(event.at_ms if sk is None else sk),
        account=event.account,
        source=event.source,
        detailType=event.detail_type,
    )
    return item


def original_event_items(events: Iterable[NormalisedEvent]) -> Iterator[dict[str, Any]]:
    """A job's events (in order) as original items whose `sk` is unique and ascending.

    The original's `sk` was a sort key: an event whose millisecond an earlier one already took
    gets the next free one, so the same events always get the same keys.
    """
    used = -1
    for event in events:
        used = max(event.at_ms, used + 1)
        yield original_event_item(event, sk=used)


def job_summary(job: JobSummary, health: Health | None = None) -> dict[str, Any]:
    """A summary; `duration_ms`, `stuck` and `stuck_reason` null where the caller did not judge
    its health (events.domain.fleet)."""
    return {
        "id": job.id,
        "execution_arn": job.execution_arn,
        "state_machine": job.state_machine,
        "name": job.name,
        "account": job.account,
        "region": job.region,
        "status": job.status,
        "error": job.error,
        "cause": job.cause,
        "started_at": iso(job.started_at),
        "stopped_at": iso(job.stopped_at),
        "first_event_at": iso(job.first_event_at),
        "last_event_at": iso(job.last_event_at),
        "event_count": job.event_count,
        "duration_ms": health.duration_ms if health else None,
        "stuck": health.stuck if health else None,
        "stuck_reason": health.stuck_reason if health else None,
        "replay_of": job_replay_of(job),
        "parent": job.parent,
        "map_run": dict(job.map_run) if job.map_run else None,
        "attempts": [dict(attempt) for attempt in job.attempts],
    }


def job_replay_of(job: JobSummary) -> str | None:
    """The original job id when this job is a replay (its events carry `meta.replayOf`)."""
    return replay_of_job(job.latest.detail) if job.latest is not None else None


def normalised_event(event: NormalisedEvent) -> dict[str, Any]:
    return event.as_dict()


# ---- byte budgets (events.domain.budgets): lists cut what is big and link to the whole event -----

ORIGINAL_KEYS = ("pk", "sk", "latest", "account", "source", "detailType")


def normalised_event_within(event: NormalisedEvent, *, limit: int) -> dict[str, Any]:
    """The normalised event, with `detail` and `raw` stubbed when it passes `limit` bytes."""
    return budgets.event_trimmed(normalised_event(event), limit=limit)


def original_item_within(
    item: dict[str, Any], *, event_id: str, account: str, limit: int
) -> dict[str, Any]:
    """An original-shape item with the same keys: over `limit` bytes, its largest detail
    fields become `{"truncated": true, "bytes": N, "full": URL}`, largest first."""
    full = budgets.event_url(event_id=event_id, account=account)
    return budgets.original_item_trimmed(item, limit=limit, full=full, keep=ORIGINAL_KEYS)

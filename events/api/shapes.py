"""JSON shapes of the API: the original design's items and edobs's own (DESIGN section 6)."""

from __future__ import annotations

from typing import Any

from .. import budgets
from ..envelope import NormalisedEvent, iso
from ..summary import JobSummary


def _ms(value) -> str:
    return str(int(value.timestamp() * 1000))


def original_latest_item(job: JobSummary) -> dict[str, Any]:
    """One `/api/latest` item. Detail fields come first so they can never overwrite ours."""
    latest = job.latest
    item: dict[str, Any] = dict(latest.detail) if latest else {}
    item.update(
        pk="LATEST",
        sk=f"EVENT#{job.id}",
        latest=_ms(job.last_event_at) if job.last_event_at else None,
        account=latest.account if latest else job.account,
        source=latest.source if latest else None,
        detailType=latest.detail_type if latest else None,
    )
    return item


def original_event_item(job: JobSummary, event: NormalisedEvent) -> dict[str, Any]:
    item: dict[str, Any] = dict(event.detail)
    item.update(
        pk=f"EVENT#{job.id}",
        sk=_ms(event.time),
        account=event.account,
        source=event.source,
        detailType=event.detail_type,
    )
    return item


def job_summary(job: JobSummary) -> dict[str, Any]:
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
    }


def normalised_event(event: NormalisedEvent) -> dict[str, Any]:
    return event.as_dict()


# ---- byte budgets (events.budgets): lists cut what is big and link to the whole event ---------

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

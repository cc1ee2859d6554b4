"""Rebuild every job of the ORM store from its stored events.

Used by migration 0003 (job ids gained the account and region: one old `STATE_MACHINE:NAME`
job may split into one job per account) and by `manage.py rebuild_jobs` after a change to the
correlation rules. It reads the events once, in order, recomputes each one's job with today's
correlation (events.domain.envelope.stored_event) and each job's summary with events.domain.summary,
then moves the events to their jobs and drops the jobs left without events.

It takes the model classes, so a migration can pass its historical models.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

from django.db import transaction

from events.domain.envelope import stored_event
from events.domain.summary import JobSummary, apply_event, new_summary

logger = logging.getLogger(__name__)

CHUNK = 2000
TEXT_FIELDS = ("execution_arn", "status", "error", "cause", "parent")  # "" means unset
SHAPE_FIELDS = ("parent", "attempts")  # since migration 0010: not on older historical models
SUMMARY_FIELDS = (
    "state_machine", "name", "account", "region", "status_at", "started_at", "stopped_at",
    "first_event_at", "last_event_at", "event_count", "attempts",
)  # fmt: skip
UPDATED = [*SUMMARY_FIELDS, *TEXT_FIELDS, "latest_event"]


def rebuild_jobs(
    *, event_model, job_model, using: str = "default",
    progress: Callable[[int], None] | None = None,
) -> int:  # fmt: skip
    """Recompute every job from its events; returns how many jobs there are afterwards."""
    summaries, latest_seq, moves = _replay(event_model, using, progress)
    updated = [name for name in UPDATED if name not in SHAPE_FIELDS or _has_field(job_model, name)]
    with transaction.atomic(using=using):
        jobs = job_model.objects.using(using)
        # Never delete a job before its events moved: the foreign key cascades.
        jobs.bulk_create(
            [_row(job_model, s, latest_seq.get(job)) for job, s in summaries.items()],
            batch_size=500, update_conflicts=True, unique_fields=["id"], update_fields=updated,
        )  # fmt: skip
        events = event_model.objects.using(using)
        for job_id, seqs in moves.items():
            for start in range(0, len(seqs), 500):
                events.filter(seq__in=seqs[start : start + 500]).update(job_id=job_id)
        jobs.filter(events__isnull=True).delete()  # the old ids, now without events
    logger.info("rebuilt %d jobs", len(summaries))
    return len(summaries)


def _replay(event_model, using: str, progress):
    summaries: dict[str, JobSummary] = {}
    latest_seq: dict[str, int] = {}
    moves: dict[str | None, list[int]] = defaultdict(list)
    # Migration 0003's historical Event has no `at` yet: events are then in envelope time order.
    clocks = ("at", "at_source") if _has_field(event_model, "at") else ()
    rows = event_model.objects.using(using).order_by(clocks[0] if clocks else "time", "seq")
    columns = ("seq", "job_id", "raw", "event_id", "source", "detail_type", "account", "region")
    for count, row in enumerate(
        rows.values_list(*columns, "time", "received_at", *clocks).iterator(chunk_size=CHUNK), 1
    ):
        seq, old_job, raw, event_id, source, detail_type, account, region, time, received = row[:10]
        at, at_source = row[10:] or (None, None)
        event = stored_event(
            raw, id=event_id, source=source, detail_type=detail_type, account=account,
            region=region, time=time, received_at=received, at=at, at_source=at_source,
        )  # fmt: skip
        if event.job != old_job:
            moves[event.job].append(seq)
        if event.job:
            summary = summaries.get(event.job) or new_summary(event)
            summaries[event.job] = apply_event(summary, event)
            if summaries[event.job].latest.id == event.id:
                latest_seq[event.job] = seq
        if progress and count % CHUNK == 0:
            progress(count)
    return summaries, latest_seq, moves


def _has_field(model, name: str) -> bool:
    return any(field.name == name for field in model._meta.get_fields())


def _row(job_model, summary: JobSummary, latest_seq: int | None):
    values = {name: getattr(summary, name) for name in ("id", *SUMMARY_FIELDS)}
    values.update({name: getattr(summary, name) or "" for name in TEXT_FIELDS})
    values["attempts"] = list(summary.attempts)
    for name in SHAPE_FIELDS:
        if not _has_field(job_model, name):
            values.pop(name)
    return job_model(**values, latest_event_id=latest_seq)

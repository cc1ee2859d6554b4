"""The ORM store's architecture rollups (events.domain.rollups): written at ingest, read per window,
rebuilt from the stored events.

At ingest (`record`, inside the transaction that inserts the events, given only the events this
call inserted, so a redelivered batch adds nothing):
- every event adds its counts to its minute and hour rows;
- an end naming its trigger (`meta.incoming.id`, rule 1 of events.domain.timeline) takes its latency
  from the stored trigger of its job; a trigger not stored yet leaves a PendingSpan, and the
  latency is added when the trigger arrives (in whichever batch, either order);
- an end that names no trigger id (rules 2 and 3, by task token or by order) is paired among
  its job's events stored so far; if its trigger is not stored yet it stays open (counted,
  without latency) until `rebuild`, which pairs whole jobs.
Rows are locked in one order (their digest) and merged in Python: a sketch is merged, not
added by SQL.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from itertools import groupby

from django.db import connections, transaction
from django.db.models import Count, Q, QuerySet

from events.domain import sketch as sk
from events.domain.envelope import NormalisedEvent
from events.domain.rollups import (
    HOUR,
    MINUTE,
    Deltas,
    Key,
    Totals,
    ceil,
    epoch,
    floor,
    job_deltas,
    job_machine,
    pieces,
    row_key,
    span_edges,
)
from events.domain.timeline import pair_spans, task_token
from events.models import ArchitectureRollup, Event, PendingSpan
from events.stores.base import Accounts, Window
from events.stores.orm.rows import EVENT_FIELDS, event_from_values
from events.stores.orm.sql import insert_new, select_locked, upsert

logger = logging.getLogger(__name__)

COLUMNS = [
    "key", "width", "bucket", "account", "state_machine", "kind", "source", "target", "count",
    "sketch",
]  # fmt: skip
CHUNK = 2000
# Filters events.domain.architecture does not take: a window with any of them is computed from
# events.
OTHER_FILTERS = ("source", "detail_type", "account", "job", "fn", "where")


# --- ingest --------------------------------------------------------------------------------


def record(using: str, events: Sequence[NormalisedEvent]) -> None:
    """Adds what the newly inserted `events` add to the rollups (in the caller's transaction)."""
    if not events:
        return
    deltas = Deltas()
    for event in events:
        deltas.count(event)
    _latencies(using, events, deltas)
    _resolve_pending(using, events, deltas)
    write(using, deltas)


def _latencies(using: str, events: Sequence[NormalisedEvent], deltas: Deltas) -> None:
    ends = [event for event in events if event.fn]
    named = [e for e in ends if e.correlation.incoming_id and e.correlation.incoming_id != e.id]
    if named:
        _named_latencies(using, named, deltas)
    unnamed = [e for e in ends if e.job and e.incoming and not e.correlation.incoming_id]
    if unnamed:
        _paired_latencies(using, unnamed, deltas)


def _named_latencies(using: str, ends: list[NormalisedEvent], deltas: Deltas) -> None:
    """Rule 1: the trigger is the stored event of the end's job with that id."""
    rows = Event.objects.using(using).filter(
        account__in={end.account for end in ends},
        event_id__in={end.correlation.incoming_id for end in ends},
    )
    triggers = {
        (job or "", event_id): at
        for job, event_id, at in rows.values_list("job_id", "event_id", "at")
    }
    waiting = []
    for end in ends:
        at = triggers.get((end.job or "", end.correlation.incoming_id))
        if at is not None:
            if end.at >= at:  # else clocks that disagree: no latency (events.domain.timeline.Span)
                deltas.latency(end, _ms(end.at - at))
        else:
            waiting.append(_pending(end))
    PendingSpan.objects.using(using).bulk_create(waiting, ignore_conflicts=True)


def _pending(end: NormalisedEvent) -> PendingSpan:
    return PendingSpan(
        account=end.account, job=end.job or "", wanted=end.correlation.incoming_id or "",
        end_event=end.id, time=end.time, at=end.at, received_at=end.received_at,
        state_machine=job_machine(end), edges=[list(edge) for edge in span_edges(end)],
    )  # fmt: skip


def _resolve_pending(using: str, events: Sequence[NormalisedEvent], deltas: Deltas) -> None:
    """Ends stored earlier that were waiting for one of these events as their trigger."""
    pending = PendingSpan.objects.using(using)
    rows = list(
        pending.filter(job__in={e.job or "" for e in events}, wanted__in={e.id for e in events})
    )
    if not rows:
        return
    arrived = {(event.job or "", event.id): event for event in events}
    done = []
    for row in rows:
        trigger = arrived.get((row.job, row.wanted))
        if trigger is None:
            continue
        machine, edges = row.state_machine, row.edges
        if row.at >= trigger.at:  # else clocks that disagree: no latency (events.domain.timeline.Span)  # noqa: E501
            deltas.add_latency(row.time, row.account, machine, edges, _ms(row.at - trigger.at))
        done.append(row.pk)
    pending.filter(pk__in=done).delete()


def _paired_latencies(using: str, ends: list[NormalisedEvent], deltas: Deltas) -> None:
    """Rules 2 and 3: pair the end among its job's stored events (this batch's included).

    Both rules pair an end only with an event of the type it names as incoming, so a job that
    holds none yet (its triggers not forwarded, or not arrived) leaves its ends open: learnt
    from the type columns alone. An end with a task token is then paired among the events that
    carry its token (the database picks them out of the stored JSON); only the ends rule 2 does
    not pair read the events rule 3 looks at: the triggers' types and the ends of their fns.
    Decoding a job's whole history for every batch made ingest slower with every event a job had.
    """
    types = _incoming_types(ends)
    events = Event.objects.using(using)
    stored = events.filter(types, job_id__in={end.job for end in ends})
    has_triggers = set(stored.values_list("job_id", flat=True).distinct())
    ends = [end for end in ends if end.job in has_triggers]
    tokened = [end for end in ends if task_token(end)]
    if tokened:
        rows = events.filter(
            job_id__in={end.job for end in tokened},
            raw__detail__TaskToken__in={task_token(end) for end in tokened},
        )
        paired = _add_latencies(rows, tokened, deltas, rule="token")
        ends = [end for end in ends if (end.account, end.id) not in paired]
    if ends:
        fns = {(end.fn or "")[:200] for end in ends}
        rows = events.filter(types | Q(fn__in=fns), job_id__in={end.job for end in ends})
        _add_latencies(rows, ends, deltas)


def _incoming_types(ends: list[NormalisedEvent]) -> Q:
    types = Q()
    for source, detail_type in {(e.incoming["source"], e.incoming["detailType"]) for e in ends}:
        types |= Q(source=source, detail_type=detail_type)
    return types


def _add_latencies(
    rows: QuerySet, ends: list[NormalisedEvent], deltas: Deltas, *, rule: str | None = None
) -> set[tuple[str, str]]:
    """Pairs the spans of `rows` job by job and adds the latency of those of `ends` that close
    (by `rule`, or by any rule when None); returns (account, id) of the ends it added."""
    wanted = {(end.job, end.account, end.id) for end in ends}
    by_job: dict[str, list[NormalisedEvent]] = defaultdict(list)
    for job_id, *values in rows.order_by("job_id", "at", "seq").values_list(
        "job_id", *EVENT_FIELDS
    ):
        by_job[job_id].append(event_from_values(values))
    added = set()
    for job_events in by_job.values():
        for span in pair_spans(job_events):
            end = span.end_event
            if span.open or (end.job, end.account, end.id) not in wanted:
                continue
            if rule is None or span.paired_by == rule:
                if span.duration_ms is not None:  # None: clocks that disagree (no latency)
                    deltas.latency(end, span.duration_ms)
                added.add((end.account, end.id))
    return added


def write(using: str, deltas: Deltas) -> None:
    """Adds `deltas` to the rows: the rows locked (in digest order), merged and written back.

    Where the database locks rows, a row no writer has made yet is made blank first and then
    locked, so two writers of a new row wait for each other instead of one overwriting the
    other's counts (SQLite's write transaction already serialises them). Most of a batch's rows
    exist (the same minutes and hours), so they are locked first and only the missing ones are
    made: one statement fewer per batch on PostgreSQL."""
    keys = deltas.keys()
    if not keys:
        return
    connection = connections[using]
    digests = [row_key(key) for key in keys]
    current = _locked_rows(connection, digests)
    missing = [(digest, key) for digest, key in zip(digests, keys, strict=True)
               if digest not in current]  # fmt: skip
    if missing and connection.features.has_select_for_update:
        blank = [(digest, *key, 0, None) for digest, key in missing]
        insert_new(connection, ArchitectureRollup, COLUMNS, blank, conflict=["key"])
        current |= _locked_rows(connection, [digest for digest, _ in missing])
    rows = []
    for digest, key in zip(digests, keys, strict=True):
        count, sketch = current.get(digest, (0, None))
        if key in deltas.sketches:
            sketch = sk.merge(dict(sketch or {}), deltas.sketches[key])
        rows.append((digest, *key, count + deltas.counts.get(key, 0), sketch))
    upsert(connection, ArchitectureRollup, COLUMNS, rows, key="key", update=["count", "sketch"])


def _locked_rows(connection, digests: list[str]) -> dict[str, tuple[int, dict | None]]:
    return {
        digest: (count, sketch)
        for digest, count, sketch in select_locked(
            connection, ArchitectureRollup, ["key", "count", "sketch"], key="key", keys=digests
        )
    }


def _ms(delta) -> int:
    return round(delta.total_seconds() * 1000)


# --- reading -------------------------------------------------------------------------------


def answers(window: Window) -> bool:
    """Whether the rollups can answer this window (only time and state machine filters)."""
    return not any(getattr(window, name) for name in OTHER_FILTERS)


def architecture(store, window: Window, *, accounts: Accounts) -> dict:
    """events.domain.architecture's answer over the window: whole hours and minutes from the rollup
    rows, the seconds at the window's ends from raw events (exact counts; their spans are
    paired among the events of that end, as the raw computation pairs within its window)."""
    totals = Totals()
    raw_jobs: dict[str, set[str]] = defaultdict(set)
    ranges = Q(pk__in=[])
    for piece in pieces(window.since, window.until):
        if piece.width is None:
            part = replace(window, since=piece.since, until=piece.until)
            for machine, jobs in totals.add_raw(
                store.events_window(part, accounts=accounts)
            ).items():
                raw_jobs[machine] |= jobs
            continue
        bounds = Q(width=piece.width)
        if piece.since is not None:
            bounds &= Q(bucket__gte=epoch(piece.since))
        if piece.until is not None:
            bounds &= Q(bucket__lt=epoch(piece.until))
        ranges |= bounds
    rows = ArchitectureRollup.objects.using(store.using).filter(ranges)
    if accounts is not None:
        rows = rows.filter(account__in=accounts)
    if window.state_machine:
        rows = rows.filter(state_machine=window.state_machine)
    counted = rows.exclude(kind="job").values_list("kind", "source", "target", "count", "sketch")
    for kind, source, target, count, sketch in counted.iterator(chunk_size=CHUNK):
        totals.add_row(kind, source, target, count, sketch)
    jobs = rows.filter(kind="job")
    distinct = jobs.values("source").annotate(n=Count("target", distinct=True))
    for machine, n in distinct.values_list("source", "n"):
        totals.machines[machine] += n
    for machine, found in raw_jobs.items():
        totals.machines[machine] += len(found - _known_jobs(jobs, machine, found))
    return totals.graph()


def _known_jobs(rows: QuerySet, machine: str, jobs: set[str]) -> set[str]:
    known: set[str] = set()
    ordered = sorted(jobs)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        known |= set(rows.filter(source=machine, target__in=chunk).values_list("target", flat=True))
    return known


# --- rebuild -------------------------------------------------------------------------------


def rebuild(
    using: str = "default", *, since: datetime | None = None, until: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:  # fmt: skip
    """Recompute the rollups of events whose envelope time is in [floor(since, hour), until)
    (every event when both are None; `until` must be a whole hour) from the stored events,
    pairing each job's spans over all its events. Returns how many events were read."""
    start = floor(since, HOUR) if since else None
    if until is not None and floor(until, HOUR) != until:
        raise ValueError("until must be a whole hour")
    in_range = _time_range(start, until)
    events = Event.objects.using(using)
    deltas, waiting, count = Deltas(), [], 0

    def keep(event: NormalisedEvent) -> bool:
        return (start is None or event.time >= start) and (until is None or event.time < until)

    rows = events.all() if start is None and until is None else _touching(events, in_range)
    ordered = rows.order_by("job_id", "at", "seq").values_list("job_id", *EVENT_FIELDS)
    for _, group in groupby(ordered.iterator(chunk_size=CHUNK), key=lambda row: row[0]):
        job_events = [event_from_values(row[1:]) for row in group]
        job_deltas(job_events, deltas, keep)
        waiting.extend(_still_waiting(job_events, keep))
        before, count = count, count + len(job_events)
        if progress and count // CHUNK > before // CHUNK:
            progress(count)
    with transaction.atomic(using=using):
        ArchitectureRollup.objects.using(using).filter(_bucket_range(start, until)).delete()
        PendingSpan.objects.using(using).filter(in_range).delete()
        _insert(using, deltas)
        PendingSpan.objects.using(using).bulk_create(waiting, batch_size=500, ignore_conflicts=True)
    logger.info("rebuilt the rollups of %d events", count)
    return count


def _time_range(start: datetime | None, until: datetime | None) -> Q:
    condition = Q()
    if start is not None:
        condition &= Q(time__gte=start)
    if until is not None:
        condition &= Q(time__lt=until)
    return condition


def _bucket_range(start: datetime | None, until: datetime | None) -> Q:
    condition = Q()
    if start is not None:
        condition &= Q(bucket__gte=epoch(start))
    if until is not None:
        condition &= Q(bucket__lt=epoch(until))
    return condition


def _touching(events: QuerySet, in_range: Q) -> QuerySet:
    """The events of the jobs that have an event in the range, and the job-less ones in it."""
    jobs = events.filter(in_range, job__isnull=False).values("job_id").distinct()
    return events.filter(Q(job_id__in=jobs) | Q(in_range, job__isnull=True))


def _still_waiting(job_events: list[NormalisedEvent], keep) -> list[PendingSpan]:
    """The ends (in range) that name a trigger id not stored: they wait for it."""
    ids = {event.id for event in job_events}
    return [
        _pending(event)
        for event in job_events
        if event.fn and keep(event) and event.correlation.incoming_id
        and event.correlation.incoming_id not in ids
    ]  # fmt: skip


def _insert(using: str, deltas: Deltas) -> None:
    keys: Iterable[Key] = deltas.keys()
    objects = (
        ArchitectureRollup(
            key=row_key(key),
            width=key[0],
            bucket=key[1],
            account=key[2],
            state_machine=key[3],
            kind=key[4],
            source=key[5],
            target=key[6],
            count=deltas.counts.get(key, 0),
            sketch=deltas.sketches.get(key),
        )  # fmt: skip
        for key in keys
    )
    manager = ArchitectureRollup.objects.using(using)
    batch = []
    for row in objects:
        batch.append(row)
        if len(batch) == 1000:
            manager.bulk_create(batch)
            batch = []
    manager.bulk_create(batch)


def purge(using: str, *, before: datetime) -> None:
    """After the store purged the events that arrived before `before`: the rollup rows of the
    buckets up to the end of the hour of `before` (where the purged events were, their time
    being before their arrival) are made again from the events still stored there (the rest of
    that hour, and old times that arrived within the retention: replays), so rollups and events
    stay the same; ends that waited for a trigger and were purged stop waiting."""
    PendingSpan.objects.using(using).filter(received_at__lt=before).delete()
    rebuild(using, until=ceil(before, HOUR))


__all__ = ["MINUTE", "HOUR", "answers", "architecture", "purge", "rebuild", "record", "write"]

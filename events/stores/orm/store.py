"""The Django ORM store: SQLite embedded, PostgreSQL in production."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    connections,
    transaction,
)
from django.db.models import DurationField, ExpressionWrapper, F, Q, QuerySet
from django.utils import timezone

from events.domain import search
from events.domain.architecture import infer_architecture
from events.domain.correlation import TERMINAL_STATUSES
from events.domain.envelope import NormalisedEvent
from events.domain.summary import JobSummary, LatestEvent, apply_events, new_summary
from events.models import Event, Job
from events.stores.base import (
    Accounts,
    JobFilter,
    Outcome,
    Page,
    StoreRefused,
    StoreUnavailable,
    Window,
    clamp_limit,
    decode_cursor,
    encode_cursor,
    filtered_page,
)
from events.stores.locking import atomic_retrying_locks
from events.stores.orm import rollups as orm_rollups
from events.stores.orm import text as orm_text
from events.stores.orm.rows import read_events
from events.stores.orm.sql import insert_new, select_locked, upsert

logger = logging.getLogger(__name__)

# SQLSTATE classes of a refusal by data: 22 data exception (too long, bad JSON, NUL), 23
# integrity constraint (the expected conflicts never raise: ON CONFLICT DO NOTHING), 54 program
# limit exceeded (an index row too large), which psycopg files under OperationalError.
REFUSED_SQLSTATES = ("22", "23", "54")

SUMMARY_FIELDS = [
    "execution_arn", "status", "status_at", "started_at", "stopped_at", "error", "cause",
    "first_event_at", "last_event_at", "event_count", "parent", "attempts",
]  # fmt: skip
JOB_COLUMNS = ["id", "state_machine", "name", "account", "region"]
EVENT_COLUMNS = [
    "event_id", "job", "source", "detail_type", "account", "region", "time", "at", "at_source",
    "received_at", "fn", "raw", "batch", "search_text",
]  # fmt: skip
JOB_ROW = [*JOB_COLUMNS, *SUMMARY_FIELDS, "latest_event"]  # what _summary_values gives
BLANK_FOR_NONE = ("execution_arn", "status", "error", "cause", "parent")  # "" means unset
SEARCH_CHUNK = 500  # rows an event search reads per query


class OrmStore:
    def __init__(self, using: str = "default"):
        self.using = using  # the database alias (the contract tests add a PostgreSQL one)

    def _jobs(self) -> QuerySet:
        return Job.objects.using(self.using)

    def _events(self) -> QuerySet:
        return Event.objects.using(self.using)

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database would take a write now (the worker asks
        after a failure, before it receives more).

        In a transaction: SQLite (configured with IMMEDIATE transactions) then takes the write
        lock, so a database another connection holds locked fails the ping.  A bare SELECT got
        in under the lock, and the worker kept receiving batches it could not store until
        their receive counts sent good events to the dead-letter queue.
        """
        try:
            with transaction.atomic(using=self.using), connections[self.using].cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def ingest(self, events: Sequence[NormalisedEvent]) -> list[Outcome]:
        unique = list({_key(event): event for event in reversed(events)}.values())[::-1]
        try:
            inserted = self._insert_retrying_locks(unique)
        except (DatabaseError, UnicodeError) as exc:
            if refused(exc):
                raise StoreRefused(database_message(exc)) from exc
            logger.warning("ORM store failed to ingest %d events: %s", len(unique), exc)
            raise StoreUnavailable(str(exc)) from exc
        return _outcomes(events, inserted)

    def _insert_retrying_locks(self, events: list[NormalisedEvent]) -> dict[tuple[str, str], int]:
        """One transaction, tried again after a short pause when it lost a race for a lock
        (events.stores.locking)."""

        def insert() -> dict[tuple[str, str], int]:
            jobs = self._lock_jobs(events)
            inserted = self._insert(events)
            new = [e for e in events if _key(e) in inserted]
            self._touch_jobs(new, inserted, jobs)
            orm_rollups.record(self.using, new)
            return inserted

        return atomic_retrying_locks(insert, using=self.using)

    def _lock_jobs(self, events: list[NormalisedEvent]) -> dict[str, tuple[JobSummary, int | None]]:
        """The summaries of the events' jobs, their rows locked (PostgreSQL) until the batch
        commits; a job not stored yet is made first (its events refer to it), then locked.

        Locking first and making only the missing jobs saves PostgreSQL a statement per batch:
        most batches only add to jobs that exist."""
        found = {e.job: e for e in events if e.job}
        ids = sorted(found)
        current = self._locked_summaries(ids)
        missing = [job for job in ids if job not in current]
        if missing:
            rows = [_summary_values(new_summary(found[job]), None) for job in missing]
            insert_new(connections[self.using], Job, JOB_ROW, rows, conflict=["id"])
            current |= self._locked_summaries(missing)  # made here, or by another writer
        return current

    def _insert(self, events: list[NormalisedEvent]) -> dict[tuple[str, str], int]:
        """Insert what is new; returns {(account, event id): seq} of the rows inserted."""
        connection = connections[self.using]
        batch = uuid.uuid4()  # still filled in: the column stays NOT NULL
        rows = [_event_values(e, batch) for e in events]
        found = insert_new(
            connection,
            Event,
            EVENT_COLUMNS,
            rows,
            conflict=["account", "event_id"],
            returning=("account", "event_id", "seq"),
        )
        return {(account, event_id): seq for account, event_id, seq in found}

    def _touch_jobs(
        self, events: list[NormalisedEvent], seqs: dict[tuple[str, str], int],
        current: dict[str, tuple[JobSummary, int | None]],
    ) -> None:  # fmt: skip
        """Merge this call's events into their jobs' summaries (`current`, locked)."""
        by_job: dict[str, list[NormalisedEvent]] = defaultdict(list)
        for event in events:
            if event.job:
                by_job[event.job].append(event)
        if not by_job:
            return
        rows = []
        for job_id in sorted(by_job):  # jobs in one order across workers: fewer lock waits
            summary, latest_seq = current[job_id]
            job_events = by_job[job_id]
            summary = apply_events(summary, job_events)
            if summary.latest and (summary.account, summary.latest.id) in seqs:
                latest_seq = seqs[(summary.account, summary.latest.id)]
            rows.append(_summary_values(summary, latest_seq))
        # One statement for every touched job (the rows exist: _lock_jobs made them).
        update = JOB_ROW[len(JOB_COLUMNS) :]
        upsert(connections[self.using], Job, JOB_ROW, rows, key="id", update=update)

    def _locked_summaries(self, job_ids: list[str]) -> dict[str, tuple[JobSummary, int | None]]:
        """{job id: (summary without its latest event, latest event seq)}, rows locked on PG."""
        found = select_locked(
            connections[self.using], Job, [*JOB_COLUMNS, *SUMMARY_FIELDS, "latest_event"],
            key="id", keys=job_ids,
        )  # fmt: skip
        return {row[0]: (_stored_summary(row[:-1]), row[-1]) for row in found}

    def latest_jobs(
        self, *, accounts: Accounts, limit: int, cursor: str | None, filters: JobFilter
    ) -> Page[JobSummary]:
        limit = clamp_limit(limit)
        jobs = _scoped(self._jobs(), accounts)
        if statuses := filters.wanted_statuses():
            jobs = jobs.filter(status__in=statuses)
        if filters.state_machine:
            jobs = jobs.filter(state_machine=filters.state_machine)
        if filters.by_duration:
            jobs = _by_duration(jobs, filters.min_duration_ms, filters.max_duration_ms)
        if cursor:
            at, job_id = decode_cursor(cursor, "jobs", datetime, str)
            jobs = jobs.filter(Q(last_event_at__lt=at) | Q(last_event_at=at, id__lt=job_id))
        rows = _summaries(jobs.order_by("-last_event_at", "-id")[: limit + 1])
        items = rows[:limit]
        more = len(rows) > limit
        return Page(items, _job_cursor(items[-1]) if more else None)

    def job_cursor(self, job: JobSummary) -> str:
        return _job_cursor(job)

    def state_machine_jobs(
        self, state_machine: str, *, accounts: Accounts, since: datetime,
        until: datetime | None = None, statuses: tuple[str, ...] = (), limit: int = 10_000,
    ) -> list[JobSummary]:  # fmt: skip
        jobs = _scoped(self._jobs(), accounts).filter(
            state_machine=state_machine, last_event_at__gte=since
        )
        if until is not None:
            jobs = jobs.filter(first_event_at__lt=until)
        if statuses:
            jobs = jobs.filter(status__in=JobFilter(statuses=statuses).wanted_statuses())
        rows = jobs.order_by("-last_event_at", "-id")[:limit]
        return [_stored_summary(row) for row in rows.values_list(*JOB_COLUMNS, *SUMMARY_FIELDS)]

    def child_jobs(self, parent: str, *, accounts: Accounts, limit: int = 1000) -> list[JobSummary]:
        jobs = _scoped(self._jobs(), accounts).filter(parent=parent)
        return _summaries(jobs.order_by("-last_event_at", "-id")[:limit])

    def get_job(self, job_id: str, *, accounts: Accounts) -> JobSummary | None:
        found = _summaries(_scoped(self._jobs(), accounts).filter(id=job_id)[:1])
        return found[0] if found else None

    def find_job(
        self, *, name: str, state_machine: str | None, accounts: Accounts
    ) -> JobSummary | None:
        jobs = _scoped(self._jobs(), accounts).filter(name=name)
        if state_machine is not None:
            jobs = jobs.filter(state_machine=state_machine)
        found = _summaries(jobs.order_by("-last_event_at", "-id")[:1])
        return found[0] if found else None

    def job_events(
        self, job_id: str, *, accounts: Accounts, limit: int, cursor: str | None
    ) -> Page[NormalisedEvent]:
        limit = clamp_limit(limit)
        rows = _scoped(self._events().filter(job_id=job_id), accounts)
        if cursor:
            at, seq = decode_cursor(cursor, "events", datetime, int)
            rows = rows.filter(Q(at__gt=at) | Q(at=at, seq__gt=seq))
        found = read_events(rows.order_by("at", "seq")[: limit + 1])
        more = len(found) > limit
        last = found[limit - 1] if more else None
        cursor = encode_cursor("events", last[2], last[3]) if last else None
        return Page([event for event, *_ in found[:limit]], cursor)

    def events_window(self, window: Window, *, accounts: Accounts) -> list[NormalisedEvent]:
        rows = self._window_rows(window, accounts)
        order = ("-time", "-seq") if window.newest_first else ("time", "seq")
        return [event for event, *_ in read_events(rows.order_by(*order)[: window.limit])]

    def events_page(
        self, window: Window, *, accounts: Accounts, limit: int, cursor: str | None,
        keep: Callable[[NormalisedEvent], bool] | None = None, scan: int = 20_000,
    ) -> Page[NormalisedEvent]:  # fmt: skip
        """Read in chunks newest first, `keep` checked in Python. The database narrows first (a
        superset of the matches: `keep` decides): on PostgreSQL `where` by JSON containment on
        the detail's GIN index; free text through the engine's trigram index where it has one
        for the text, else over the next `scan` rows only (events.stores.orm.text)."""
        rows = self._window_rows(window, accounts)
        if window.fn:
            rows = rows.filter(fn=window.fn[:200])
        if connections[self.using].vendor == "postgresql":
            for where in window.where:
                rows = rows.filter(raw__detail__contains=where.nested())
        if cursor:
            time, seq = decode_cursor(cursor, "search", datetime, int)
            rows = _before(rows, time, seq)
        narrowed = orm_text.Narrowed(rows)
        if window.text and search.storable_text(window.text):
            narrowed = orm_text.narrow(rows, window.text, using=self.using, scan=scan)
        rows, edge, limit = narrowed.rows, narrowed.edge, clamp_limit(limit)
        page = filtered_page(
            _newest_first(rows, first=limit + 1, by_key=narrowed.keys > limit + 1),
            limit=limit, keep=keep, scan=scan,
            cursor_of=lambda position: encode_cursor("search", *position),
        )  # fmt: skip
        if edge is not None and page.next_cursor is None:
            page = Page(page.items, encode_cursor("search", *edge))
        return page

    def _window_rows(self, window: Window, accounts: Accounts) -> QuerySet:
        rows = _scoped(self._events().all(), accounts)
        if window.since:
            rows = rows.filter(time__gte=window.since)
        if window.until:
            rows = rows.filter(time__lt=window.until)
        if window.state_machine:
            rows = rows.filter(job__state_machine=window.state_machine)
        for name in ("source", "detail_type", "account", "job"):
            if getattr(window, name):
                rows = rows.filter(**{"job_id" if name == "job" else name: getattr(window, name)})
        return rows

    def architecture(self, window: Window, *, accounts: Accounts) -> dict:
        """From the rollups (events.stores.orm.rollups) when they can answer the window."""
        if orm_rollups.answers(window):
            return orm_rollups.architecture(self, window, accounts=accounts)
        return infer_architecture(self.events_window(window, accounts=accounts))

    def get_events(self, event_id: str, *, accounts: frozenset[str]) -> list[NormalisedEvent]:
        rows = self._events().filter(event_id=event_id, account__in=sorted(accounts))
        return [event for event, *_ in read_events(rows.order_by("account"))]

    def purge(self, *, before: datetime, batch_size: int = 1000) -> int:
        """Delete in small transactions so the table is never locked for long."""
        deleted = 0
        while True:
            with transaction.atomic(using=self.using):
                old = self._events().filter(received_at__lt=before)
                seqs = list(old.values_list("seq", flat=True)[:batch_size])
                if not seqs:
                    break
                deleted += self._events().filter(seq__in=seqs).delete()[0]
        self._jobs().filter(events__isnull=True).delete()
        orm_rollups.purge(self.using, before=before)
        return deleted


def refused(exc: BaseException) -> bool:
    """Whether the database refused the data (retrying cannot help), not an outage.

    Connection losses, locks, deadlocks and serialization failures are OperationalErrors
    (or InterfaceErrors) of other classes: those are outages. A string the driver cannot even
    encode (a lone surrogate) never reached the database: refused too.
    """
    if isinstance(exc, DataError | IntegrityError | UnicodeError):
        return True
    sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
    return sqlstate[:2] in REFUSED_SQLSTATES


def database_message(exc: BaseException) -> str:
    """The database's message on one line, without PostgreSQL's `LINE n:` excerpt of the
    statement and its caret (they quote other events' values)."""
    lines = (line.strip() for line in str(exc).splitlines())
    return " ".join(line for line in lines if line and not line.startswith(("LINE ", "^")))


def _key(event: NormalisedEvent) -> tuple[str, str]:
    """What makes an event unique: envelope ids are unique per account only."""
    return event.account, event.id


def _outcomes(
    events: Sequence[NormalisedEvent], inserted: dict[tuple[str, str], int]
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    seen: set[tuple[str, str]] = set()
    for event in events:
        new = _key(event) in inserted and _key(event) not in seen
        outcomes.append("stored" if new else "duplicate")
        seen.add(_key(event))
    return outcomes


def _newest_first(
    rows: QuerySet, *, first: int = SEARCH_CHUNK, by_key: bool = False
) -> Iterator[tuple[NormalisedEvent, tuple[datetime, int]]]:
    """(event, (time, seq)) newest first, read by key: `first` rows (a page when every row
    matches: decoding rows no page needs was most of an unfiltered search's time), then
    SEARCH_CHUNK at a time. `by_key` (rows that are more seqs than a chunk, found by an index):
    each chunk's seqs are picked first, then only those rows read, so the sort by time carries
    (time, seq), not every column of every candidate (SQLite: 1.74 against 1.18 ms for 101 of
    200 rows at 1,000,000 events, docs/PERFORMANCE.md)."""
    rows = rows.order_by("-time", "-seq")
    page, size = rows, max(1, min(first, SEARCH_CHUNK))
    while True:
        chunk = read_events(_keyed(page[:size]) if by_key else page[:size])
        yield from ((event, (time, seq)) for event, time, _, seq in chunk)
        if len(chunk) < size:
            return
        size, (_, time, _, seq) = SEARCH_CHUNK, chunk[-1]
        page = _before(rows, time, seq)


def _keyed(rows: QuerySet) -> QuerySet:
    """The rows of `rows` (ordered, sliced) as one statement that orders and limits their seqs
    in a subquery, then reads the rows of those seqs, in the same order."""
    keys = rows.values("seq")
    return rows.model.objects.using(rows.db).filter(seq__in=keys).order_by("-time", "-seq")


def _before(rows: QuerySet, time: datetime, seq: int) -> QuerySet:
    """Rows before (time, seq), newest first. `time <= time` stands on its own too: SQLite bounds
    its index range by it, where under the OR alone it read the time index from the newest."""
    return rows.filter(time__lte=time).filter(Q(time__lt=time) | Q(time=time, seq__lt=seq))


def _by_duration(jobs: QuerySet, low: int | None, high: int | None) -> QuerySet:
    """Jobs whose events.domain.fleet.duration_ms is in [low, high]: finished ones by stopped -
    started, the others (no terminal status) by their start against now."""
    ms = timedelta(milliseconds=1)
    ran = ExpressionWrapper(F("stopped_at") - F("started_at"), output_field=DurationField())
    finished = Q(stopped_at__isnull=False, started_at__isnull=False)
    running = Q(stopped_at__isnull=True, started_at__isnull=False) & ~Q(
        status__in=TERMINAL_STATUSES
    )
    now = timezone.now()
    if low is not None:
        finished &= Q(ran__gte=low * ms)
        running &= Q(started_at__lte=now - low * ms)
    if high is not None:
        finished &= Q(ran__lt=(high + 1) * ms)
        running &= Q(started_at__gt=now - (high + 1) * ms)
    return jobs.annotate(ran=ran).filter(finished | running)


def _scoped(rows: QuerySet, accounts: Accounts) -> QuerySet:
    return rows if accounts is None else rows.filter(account__in=accounts)


def _event_row(event: NormalisedEvent, batch: uuid.UUID) -> Event:
    return Event(
        event_id=event.id,
        job_id=event.job,
        source=event.source,
        detail_type=event.detail_type,
        account=event.account,
        region=event.region,
        time=event.time,
        at=event.at,
        at_source=event.at_source,
        received_at=event.received_at,
        fn=(event.fn or "")[:200],
        raw=event.raw,
        batch=batch,
        search_text=search.search_text(event.id, event.detail),
    )


def _event_values(event: NormalisedEvent, batch: uuid.UUID) -> tuple:
    """The EVENT_COLUMNS of the row `_event_row` would make, without a model instance."""
    return (
        event.id, event.job, event.source, event.detail_type, event.account, event.region,
        event.time, event.at, event.at_source, event.received_at, (event.fn or "")[:200],
        event.raw, batch, search.search_text(event.id, event.detail),
    )  # fmt: skip


def _stored_summary(values: Sequence[Any], latest: LatestEvent | None = None) -> JobSummary:
    """A JobSummary from the JOB_COLUMNS + SUMMARY_FIELDS of a job row."""
    fields = dict(zip([*JOB_COLUMNS, *SUMMARY_FIELDS], values, strict=True))
    for name in BLANK_FOR_NONE:
        fields[name] = fields[name] or None
    fields["attempts"] = tuple(fields["attempts"] or ())
    return JobSummary(**fields, latest=latest)


LATEST_FIELDS = [
    "latest_event__event_id", "latest_event__source", "latest_event__detail_type",
    "latest_event__account", "latest_event__time", "latest_event__raw",
]  # fmt: skip


def _summaries(jobs: QuerySet) -> list[JobSummary]:
    """The jobs' summaries with their latest events, read as values in one joined query: a
    model instance for each job and each latest event was most of the home page's query."""
    width = len(JOB_COLUMNS) + len(SUMMARY_FIELDS)
    found = []
    for values in jobs.values_list(*JOB_COLUMNS, *SUMMARY_FIELDS, *LATEST_FIELDS):
        event_id, source, detail_type, account, time, raw = values[width:]
        latest = None
        if event_id is not None:
            detail = raw.get("detail")
            latest = LatestEvent(
                id=event_id, source=source, detail_type=detail_type, account=account, time=time,
                detail=detail if isinstance(detail, dict) else {},
            )  # fmt: skip
        found.append(_stored_summary(values[:width], latest))
    return found


def _summary_values(summary: JobSummary, latest_seq: int | None) -> tuple:
    """The JOB_COLUMNS + SUMMARY_FIELDS + latest event of a job row, from its summary."""
    return (*[_column(summary, name) for name in [*JOB_COLUMNS, *SUMMARY_FIELDS]], latest_seq)


def _column(summary: JobSummary, name: str) -> Any:
    value = getattr(summary, name)
    if name == "attempts":
        return list(value)
    return (value or "") if name in BLANK_FOR_NONE else value


def _job_cursor(job: JobSummary) -> str:
    assert job.last_event_at is not None
    return encode_cursor("jobs", job.last_event_at, job.id)

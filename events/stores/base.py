"""The store protocol: what ingest, the API, the sockets and the pages need from storage."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

from events.domain.envelope import NormalisedEvent
from events.domain.search import Where
from events.domain.summary import JobSummary

T = TypeVar("T")
Outcome = Literal["stored", "duplicate"]
# None means "every account" (superusers); otherwise only these accounts are visible.
Accounts = frozenset[str] | None

MAX_LIMIT = 500


class StoreUnavailable(RuntimeError):
    """A transient storage failure: leave the messages for redelivery and back off."""


class StoreRefused(ValueError):
    """The store refused the data of a batch (the database's own message says why): some
    event in it can never be stored as it is, however often it is retried. Which event it
    was is for the caller to find (events.ingest.services splits the batch: ingest is
    idempotent)."""


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True)
class JobFilter:
    """Which jobs. Statuses are upper case, `UNKNOWN` for none seen; `status` and `statuses`
    together mean any of them. A duration bound (ms, inclusive, see events.domain.fleet.duration_ms)
    leaves out jobs whose duration is unknown."""

    status: str | None = None
    state_machine: str | None = None
    statuses: tuple[str, ...] = ()
    min_duration_ms: int | None = None
    max_duration_ms: int | None = None

    def wanted_statuses(self) -> tuple[str, ...]:
        """The statuses asked for, as stored ("" for UNKNOWN), or () for any."""
        wanted = [*self.statuses, *([self.status] if self.status else [])]
        return tuple(sorted({"" if s.upper() == "UNKNOWN" else s.upper() for s in wanted}))

    @property
    def by_duration(self) -> bool:
        return self.min_duration_ms is not None or self.max_duration_ms is not None


@dataclass(frozen=True)
class Window:
    """Which events: a time range and optional equality filters (a store may push them down)."""

    since: datetime | None = None
    until: datetime | None = None
    state_machine: str | None = None
    limit: int = 100_000
    source: str | None = None
    detail_type: str | None = None
    account: str | None = None
    job: str | None = None
    newest_first: bool = False
    fn: str | None = None
    # Conditions on the detail: a store may narrow by them (PostgreSQL's JSON containment), the
    # caller checks them exactly (events.domain.search).
    where: tuple[Where, ...] = ()
    # Free text, folded (events.domain.search.fold): a store may narrow by it, the caller checks it.
    text: str = ""


class Store(Protocol):
    def ingest(self, events: Sequence[NormalisedEvent]) -> list[Outcome]:
        """Store a batch idempotently by event id; one outcome per event, in order.

        Raises StoreUnavailable for an outage (connection, lock, throttling) and StoreRefused
        when the database refuses the data.
        """

    def latest_jobs(
        self, *, accounts: Accounts, limit: int, cursor: str | None, filters: JobFilter
    ) -> Page[JobSummary]:
        """Job summaries, newest activity first."""

    def get_job(self, job_id: str, *, accounts: Accounts) -> JobSummary | None: ...

    def child_jobs(self, parent: str, *, accounts: Accounts, limit: int = 1000) -> list[JobSummary]:
        """The jobs whose `parent` is this job id (nested executions, Map Run children),
        newest activity first, at most `limit`."""

    def find_job(
        self, *, name: str, state_machine: str | None, accounts: Accounts
    ) -> JobSummary | None:
        """The newest job of that execution name (and state machine, if given): the short
        forms of a job id, `STATE_MACHINE:NAME` and the original design's bare name."""

    def job_events(
        self, job_id: str, *, accounts: Accounts, limit: int, cursor: str | None
    ) -> Page[NormalisedEvent]:
        """A job's events in order: time, then arrival."""

    def events_window(self, window: Window, *, accounts: Accounts) -> list[NormalisedEvent]:
        """Events in a time window (for the architecture), oldest first."""

    def architecture(self, window: Window, *, accounts: Accounts) -> dict:
        """events.domain.architecture's answer over the window (the ORM store reads its rollups, the
        DynamoDB store computes it from the window's events)."""

    def job_cursor(self, job: JobSummary) -> str:
        """The `latest_jobs` cursor of the page that starts right after `job`."""

    def state_machine_jobs(
        self, state_machine: str, *, accounts: Accounts, since: datetime,
        until: datetime | None = None, statuses: tuple[str, ...] = (), limit: int = 10_000,
    ) -> list[JobSummary]:  # fmt: skip
        """A state machine's jobs whose activity (first to last event) touches [since, until),
        newest activity first, at most `limit`; only those statuses if any are given."""

    def events_page(
        self, window: Window, *, accounts: Accounts, limit: int, cursor: str | None,
        keep: Callable[[NormalisedEvent], bool] | None = None, scan: int = 20_000,
    ) -> Page[NormalisedEvent]:  # fmt: skip
        """Events in the window, newest first (time, then arrival), that `keep` accepts.

        At most `scan` events are read per call: a page may come back short, with a cursor,
        when the scan stopped first. Cursors of kind "search"; paging has no gaps or repeats.
        """

    def get_events(self, event_id: str, *, accounts: frozenset[str]) -> list[NormalisedEvent]:
        """The events of that envelope id in these accounts (one per account at most), by
        key: each store finds an event by (account, id) without a scan, so the accounts are
        always named, never None."""

    def purge(self, *, before: datetime, batch_size: int = 1000) -> int:
        """Delete events that arrived before `before` (retention counts from arrival, so a
        replayed event with an old `time` is kept); returns how many."""


CursorValue = type[str] | type[int] | type[datetime]
MAX_CURSOR = 4096  # characters: far above any cursor a store makes, far below a costly parse
MAX_CURSOR_INT = 2**63 - 1  # what a database integer column holds
MAX_CURSOR_TEXT = 1000  # bytes: DynamoDB refuses a sort key condition over 1024


def encode_cursor(kind: str, *values: Any) -> str:
    """An opaque cursor: `kind` names the listing it pages ("jobs", "events"), so a cursor of
    one endpoint is refused by another. Datetimes are written as ISO-8601 strings."""
    plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    return base64.urlsafe_b64encode(json.dumps([kind, *plain]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, *types: CursorValue) -> list[Any]:
    """The values of a cursor that encode_cursor(kind, ...) made, one per type in `types`
    (str, int or datetime), each checked; BadCursor for anything else, however it was crafted."""
    values = _cursor_values(cursor)
    if len(values) != len(types) + 1 or values[0] != kind:
        raise BadCursor("cursor is not valid")
    return [_cursor_value(value, wanted) for value, wanted in zip(values[1:], types, strict=True)]


def _cursor_values(cursor: str) -> list[Any]:
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR:
        raise BadCursor("cursor is not valid")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, RecursionError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise BadCursor("cursor is not valid") from None
    if not isinstance(values, list) or not values:
        raise BadCursor("cursor is not valid")
    return values


def _cursor_value(value: Any, wanted: CursorValue) -> Any:
    # bool is an int to Python, never to a cursor; strings go into SQL (PostgreSQL refuses NUL)
    # and DynamoDB key conditions.
    if wanted is int and type(value) is int and 0 <= value <= MAX_CURSOR_INT:
        return value
    if wanted is str and isinstance(value, str) and _fits_a_key(value):
        return value
    if wanted is datetime and isinstance(value, str):
        return _cursor_time(value)
    raise BadCursor("cursor is not valid")


def _fits_a_key(value: str) -> bool:
    try:
        size = len(value.encode())
    except UnicodeEncodeError:  # a lone surrogate: JSON can spell one, no database stores one
        return False
    return "\x00" not in value and 0 < size <= MAX_CURSOR_TEXT


def _cursor_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(value)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadCursor("cursor is not valid") from None


def filtered_page(
    scanned: Iterable[tuple[T, Any]], *, limit: int, keep: Callable[[T], bool] | None,
    scan: int, cursor_of: Callable[[Any], str],
) -> Page[T]:  # fmt: skip
    """The first `limit` items that `keep` accepts of (item, position) pairs read in page order,
    reading at most `scan` of them. The cursor is the position of the last item given, or, when
    the scan stopped first, of the last item read: the next page goes on from there, so items
    are never skipped or repeated."""
    kept: list[tuple[T, Any]] = []
    count, last = 0, None
    for item, position in scanned:
        count, last = count + 1, position
        if keep is None or keep(item):
            kept.append((item, position))
            if len(kept) > limit:
                return Page([item for item, _ in kept[:limit]], cursor_of(kept[limit - 1][1]))
        if count >= scan:
            return Page([item for item, _ in kept], cursor_of(last))
    return Page([item for item, _ in kept])


def clamp_limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))

"""The store protocol: what ingest, the API, the sockets and the pages need from storage."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

from ..envelope import NormalisedEvent
from ..summary import JobSummary

T = TypeVar("T")
Outcome = Literal["stored", "duplicate"]
# None means "every account" (superusers); otherwise only these accounts are visible.
Accounts = frozenset[str] | None

MAX_LIMIT = 500


class StoreUnavailable(RuntimeError):
    """A transient storage failure: leave the messages for redelivery and back off."""


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True)
class JobFilter:
    status: str | None = None
    state_machine: str | None = None


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


class Store(Protocol):
    def ingest(self, events: Sequence[NormalisedEvent]) -> list[Outcome]:
        """Store a batch idempotently by event id; one outcome per event, in order."""

    def latest_jobs(
        self, *, accounts: Accounts, limit: int, cursor: str | None, filters: JobFilter
    ) -> Page[JobSummary]:
        """Job summaries, newest activity first."""

    def get_job(self, job_id: str, *, accounts: Accounts) -> JobSummary | None: ...

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

    def purge(self, *, before: datetime, batch_size: int = 1000) -> int:
        """Delete events that arrived before `before` (retention counts from arrival, so a
        replayed event with an old `time` is kept); returns how many."""


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError:
        raise BadCursor("cursor is not valid") from None
    if not isinstance(values, list) or len(values) != arity:
        raise BadCursor("cursor is not valid")
    return values


def clamp_limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))

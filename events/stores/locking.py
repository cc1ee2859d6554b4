"""One transaction, tried again when it lost a race for a lock that clears by itself.

SQLite's shared cache (in-memory databases) reports a held table lock at once instead of waiting
out the busy timeout, and PostgreSQL aborts one side of a deadlock. Both clear in milliseconds;
without a retry, an ingest batch waited out its SQS visibility timeout and an alert delivery was
left to be posted again. Shared by the ORM store and the alert deliveries (events.alerts).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError, transaction

T = TypeVar("T")

LOCK_RETRY_PAUSES = (0.05, 0.2, 0.5)  # seconds before each new try of a batch that lost a lock


def lost_lock_race(exc: BaseException) -> bool:
    """A lock conflict reported without waiting, which clears by itself: SQLite's shared-cache
    "database table is locked", PostgreSQL's deadlock (40P01) or serialization failure (40001).
    SQLite's "database is locked" is not one: it comes after the busy timeout was waited out."""
    sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
    return sqlstate in ("40P01", "40001") or "database table is locked" in str(exc)


def atomic_retrying_locks(work: Callable[[], T], *, using: str | None = None) -> T:
    """`work()` in one transaction of `using`, tried again after each pause of
    LOCK_RETRY_PAUSES while it loses a lock race; any other error, or the last loss, raises."""
    for pause in (*LOCK_RETRY_PAUSES, None):
        try:
            with transaction.atomic(using=using):
                return work()
        except OperationalError as exc:
            if pause is None or not lost_lock_race(exc):
                raise
            time.sleep(pause)
    raise AssertionError("unreachable")

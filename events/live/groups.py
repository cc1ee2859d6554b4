"""Channel-layer group names, derived by hashing: never raw event strings.

Group names may hold only ASCII letters, digits, `-`, `_`, `.` and stay under 100 characters;
account ids and job ids come from events (hostile input), so they are hashed.
"""

from __future__ import annotations

import hashlib

from events.domain.envelope import NormalisedEvent
from events.stores.base import Accounts

ALL = "events.all"  # superusers: every event


def _digest(value: str, length: int) -> str:
    return hashlib.sha1(value.encode("utf-8"), usedforsecurity=False).hexdigest()[:length]


def account_group(account: str) -> str:
    return f"events.acct.{_digest(account, 16)}"


def job_group(job_id: str) -> str:
    return f"events.job.{_digest(job_id, 24)}"


def event_groups(event: NormalisedEvent) -> list[str]:
    """Every group that should see this event, each once."""
    groups = [account_group(event.account), ALL]
    if event.job:
        groups.append(job_group(event.job))
    return groups


def stream_groups(accounts: Accounts) -> list[str]:
    """The groups of /ws/events/ for a user who may see `accounts` (None: everything)."""
    if accounts is None:
        return [ALL]
    return [account_group(account) for account in sorted(accounts)]

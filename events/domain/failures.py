"""Failure groups: failed and timed-out jobs grouped the way Sentry groups exceptions. Pure.

**The key.** A group is one (state machine, failed state, error, normalised cause). Its `id` is a
fingerprint of that key (16 hex digits of its SHA-256), stable across requests, stores and
processes, so a job page can link to its group.

**The failed state.** What the job page's error box names: the state of the span the execution
was waiting on when it failed (the latest pending span), else of the latest span that was
running when it failed. Spans of executions the job started (`kind: "execution"`) are not the
job's own states and are left out. None when no event names a state.

**The normalised cause.** The cause with what differs between runs of one failure masked, in this
order (earlier rules take their text out of reach of later ones):
1. a Lambda's JSON cause (`{"errorType", "errorMessage", "requestId", "stackTrace"}`, what
   `States.TaskFailed` and an unhandled Lambda error carry) becomes `errorType: errorMessage`:
   the request id and the stack trace differ on every run;
2. an ARN keeps its service, resource type and resource name; its region and account become
   `<region>`, `<account>` and an execution's (or Map Run's, or activity's) name after its state
   machine becomes `<id>`;
3. ISO-8601 timestamps become `<time>`; UUIDs `<uuid>`; hex ids of 8 or more digits holding a
   digit and a letter `<hex>`; epoch seconds or milliseconds (10 or 13 digits from 2001 on)
   `<time>`; any other number `<n>` (digits inside a word only from 3 on: `Orders2` stays,
   `ORD12345` is `ORD<n>`);
4. whitespace runs become one space, and the text is cut at MAX_CAUSE characters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_CAUSE = 500
SAMPLES = 5
FAILED_STATUSES = ("FAILED", "TIMED_OUT")

_ARN = re.compile(
    r"\barn:(aws[a-z-]*):([a-z0-9-]+):([a-z0-9-]*):(\d{12}|\*?):([^\s\"',;)\]}]+)", re.ASCII
)
# Resource types whose last part is one run's name, not the resource's.
_RUN_TYPES = ("execution", "express", "mapRun", "activity")
_ISO = re.compile(
    r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?(?![\d])", re.ASCII
)
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_HEX = re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I)
_EPOCH = re.compile(r"(?<![\d.])(?:1[0-9]{9}|1[0-9]{12})(?![\d.])")
_NUMBER = re.compile(r"(?<![A-Za-z])\d+(?:\.\d+)?|\d{3,}")
_SPACE = re.compile(r"\s+")


def _lambda_cause(cause: str) -> str | None:
    """`errorType: errorMessage` of a Lambda's JSON cause, or None for any other text."""
    if not cause.lstrip().startswith("{"):
        return None
    try:
        parsed = json.loads(cause)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or "errorMessage" not in parsed:
        return None
    kind, message = parsed.get("errorType"), parsed.get("errorMessage")
    message = message if isinstance(message, str) else json.dumps(message, sort_keys=True)
    return f"{kind}: {message}" if isinstance(kind, str) and kind else message


def _arn(match: re.Match) -> str:
    partition, service, _region, _account, resource = match.groups()
    parts = re.split(r"([:/])", resource)
    if parts[0] in _RUN_TYPES and len(parts) >= 5:
        parts = [*parts[:3], *[p if p in ":/" else "<id>" for p in parts[3:]]]
    return f"arn:{partition}:{service}:<region>:<account>:{''.join(parts)}"


def normalise_cause(cause: str | None) -> str:
    """The cause with its run-specific parts masked (the module docstring's rules)."""
    if not cause:
        return ""
    text = _lambda_cause(cause) or cause
    text = _ARN.sub(_arn, text)
    text = _ISO.sub("<time>", text)
    text = _UUID.sub("<uuid>", text)
    text = _HEX.sub("<hex>", text)
    text = _EPOCH.sub("<time>", text)
    text = _NUMBER.sub("<n>", text)
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= MAX_CAUSE else text[: MAX_CAUSE - 1] + "…"


def fingerprint(state_machine: str, state: str | None, error: str | None, cause: str) -> str:
    key = json.dumps([state_machine, state, error, cause], ensure_ascii=False)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def failed_state(spans: Sequence[dict[str, Any]], status: str | None) -> str | None:
    """The state the execution failed in (the module docstring), or None."""
    if status not in FAILED_STATUSES:
        return None
    own = [(i, span) for i, span in enumerate(spans) if span.get("kind") != "execution"]
    for wanted in ("pending", "failed"):
        found = [(span["start"] or "", i, span) for i, span in own if span["status"] == wanted]
        if found:
            span = max(found, key=lambda row: row[:2])[2]
            return span.get("state") or span.get("step")
    return None


@dataclass(frozen=True)
class Failure:
    """One failed or timed-out job, as grouping needs it."""

    job: str
    state_machine: str
    account: str
    state: str | None
    error: str | None
    cause: str | None
    at: datetime  # when it failed (its stop, else its last event)

    @property
    def key(self) -> tuple[str, str | None, str | None, str]:
        return (self.state_machine, self.state, self.error, normalise_cause(self.cause))


@dataclass
class Group:
    id: str
    state_machine: str
    state: str | None
    error: str | None
    cause: str
    first_seen: datetime
    last_seen: datetime
    count: int = 0
    accounts: set[str] = field(default_factory=set)
    sample_jobs: list[str] = field(default_factory=list)  # newest first
    trend: list[int] = field(default_factory=list)


def _bucket_of(at: datetime, since: datetime, until: datetime, count: int) -> int:
    share = (at - since) / (until - since) if until > since else 0
    return min(count - 1, max(0, int(share * count)))


def group_failures(
    failures: Iterable[Failure], *, since: datetime, until: datetime, trend_buckets: int = 24,
    samples: int = SAMPLES,
) -> list[Group]:  # fmt: skip
    """The groups of the failures in [since, until), most failures first, then newest."""
    groups: dict[tuple, Group] = {}
    for failure in sorted(failures, key=lambda f: (f.at, f.job), reverse=True):
        if not since <= failure.at < until:
            continue
        key = failure.key
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(
                id=fingerprint(*key), state_machine=key[0], state=key[1], error=key[2],
                cause=key[3], first_seen=failure.at, last_seen=failure.at,
                trend=[0] * trend_buckets,
            )  # fmt: skip
        group.count += 1
        group.first_seen = failure.at
        group.accounts.add(failure.account)
        if len(group.sample_jobs) < samples:
            group.sample_jobs.append(failure.job)
        group.trend[_bucket_of(failure.at, since, until, trend_buckets)] += 1
    return sorted(groups.values(), key=lambda g: (-g.count, -g.last_seen.timestamp(), g.id))


STATUS_EVENT = ("aws.states", "Step Functions Execution Status Change")


def search_query(group: Group, *, since: str, until: str) -> list[tuple[str, str]]:
    """The events page's query for the group's failures: the status changes of its state
    machine with its error, in the window (the cause and state it cannot filter on)."""
    query = [("source", STATUS_EVENT[0]), ("detail_type", STATUS_EVENT[1]),
             ("q", group.state_machine)]  # fmt: skip
    if group.error is not None:
        query.append(("where", "error=" + json.dumps(group.error, ensure_ascii=False)))
    return [*query, ("since", since), ("until", until)]


def jobs_query(group: Group, *, since: str, until: str) -> list[tuple[str, str]]:
    """The jobs list's query for its state machine's failed and timed-out jobs in the window."""
    statuses = [("status", status) for status in FAILED_STATUSES]
    return [("state_machine", group.state_machine), *statuses, ("since", since), ("until", until)]

"""Which job an event belongs to, and the work it describes (DESIGN section 2). Pure."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infra.instrument import parse_execution_arn as _parse_arn

STATUS_SOURCE = "aws.states"
# The input field through which Step Functions (and its console) links a child execution to
# the execution whose StartExecution task started it.
STARTED_BY = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"
MAX_INPUT = 262_144  # characters of `detail.input` read for STARTED_BY: AWS sends at most 256 KiB
MAX_PARENT = 400  # characters of a parent job id: the longest a job id column holds
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass(frozen=True)
class Execution:
    """What an event says about its execution (status fields only from `aws.states`)."""

    arn: str | None
    state_machine: str
    name: str
    status: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    error: str | None = None
    cause: str | None = None
    attempt: int = 0  # `redriveCount`: 0 for the first run, n for the n-th redrive
    redriven_at: datetime | None = None  # `redriveDate`: when this attempt started
    parent: str | None = None  # job id of the execution that started this one (its input says)


@dataclass(frozen=True)
class JobRef:
    """What a user typed to name a job: the full id, `STATE_MACHINE:NAME`, or a bare name."""

    name: str
    state_machine: str | None = None
    account: str | None = None
    region: str | None = None

    @property
    def full(self) -> bool:
        return self.account is not None

    @property
    def id(self) -> str | None:
        if not self.full:
            return None
        return job_id(self.account, self.region, self.state_machine, self.name)

    def matches(self, job: str) -> bool:
        """Whether the job id `job` is one this reference may resolve to."""
        parts = job.split(":")
        if len(parts) != 4:
            return False
        wanted = (self.account, self.region, self.state_machine, self.name)
        return all(want is None or want == have for want, have in zip(wanted, parts, strict=True))


def job_id(account: str, region: str, state_machine: str, name: str) -> str:
    """`ACCOUNT:REGION:STATE_MACHINE:NAME`: one execution, never shared across accounts."""
    return f"{account}:{region}:{state_machine}:{name}"


def parse_job_ref(text: str) -> JobRef | None:
    """The full id or one of its short forms (DESIGN section 2); None if it is neither."""
    parts = text.split(":")
    if not all(parts):
        return None
    if len(parts) == 4:
        return JobRef(account=parts[0], region=parts[1], state_machine=parts[2], name=parts[3])
    if len(parts) == 2:
        return JobRef(state_machine=parts[0], name=parts[1])
    return JobRef(name=parts[0]) if len(parts) == 1 else None


@dataclass(frozen=True)
class Correlation:
    job: str | None = None
    execution: Execution | None = None
    fn: str | None = None
    incoming: dict[str, str] | None = None
    outgoing: dict[str, str] | None = None
    incoming_id: str | None = None


def parse_execution_arn(arn: Any) -> tuple[str, str] | None:
    """(state machine, execution name) of a standard or express execution ARN, else None.

    The instrumentation kit's parser (pure, no dependencies), so producers and edobs can never
    disagree on what an execution ARN is.
    """
    ref = _parse_arn(arn)
    return (ref.state_machine, ref.name) if ref else None


def _ms(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _from_arn(arn: Any) -> Execution | None:
    if not isinstance(arn, str):
        return None
    # Every event of a job names the same ARN: reading a job parses it once, not per event.
    return _arn_execution(arn) if len(arn) <= MAX_CACHED_ARN else _parsed_execution(arn)


MAX_CACHED_ARN = 512  # a real one is at most about 300 characters: a long string is not kept


def _parsed_execution(arn: str) -> Execution | None:
    parsed = parse_execution_arn(arn)
    if parsed is None:
        return None
    return Execution(arn=arn, state_machine=parsed[0], name=parsed[1])


_arn_execution = functools.lru_cache(maxsize=4096)(_parsed_execution)


def _count(value: Any) -> int:
    return value if type(value) is int and 0 <= value < 10_000 else 0


def execution_job_id(arn: Any) -> str | None:
    """The job id of an execution ARN (account and region from the ARN itself), else None."""
    execution = _from_arn(arn)
    if execution is None:
        return None
    parts = execution.arn.split(":")
    if not parts[3] or not parts[4] or not parts[4].isascii():
        return None
    return job_id(parts[4], parts[3], execution.state_machine, execution.name)


def started_by(detail: dict[str, Any]) -> str | None:
    """The parent's job id, from `AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID` in the status
    event's `input` (a JSON string); None when the input is absent, cut or says nothing."""
    text = detail.get("input")
    if not isinstance(text, str) or STARTED_BY not in text or len(text) > MAX_INPUT:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    parent = execution_job_id(data.get(STARTED_BY)) if isinstance(data, dict) else None
    return parent if parent and len(parent) <= MAX_PARENT else None


def _from_status(detail: dict[str, Any]) -> Execution | None:
    execution = _from_arn(detail.get("executionArn"))
    if execution is None:
        return None
    status = _text(detail.get("status"))
    return Execution(
        arn=execution.arn,
        state_machine=execution.state_machine,
        name=execution.name,
        status=status.upper() if status else None,
        started_at=_ms(detail.get("startDate")),
        stopped_at=_ms(detail.get("stopDate")),
        error=_text(detail.get("error")),
        cause=_text(detail.get("cause")),
        attempt=_count(detail.get("redriveCount")),
        redriven_at=_ms(detail.get("redriveDate")),
        parent=started_by(detail),
    )


def _from_context(detail: dict[str, Any], meta: dict[str, Any]) -> Execution | None:
    context = detail.get("executionContext")
    if not isinstance(context, dict):
        return None
    whole = context.get("context")
    if isinstance(whole, dict) and isinstance(whole.get("Execution"), dict):
        found = _from_arn(whole["Execution"].get("Id"))
        if found:
            return found
    found = _from_arn(context.get("id"))
    if found:
        return found
    name = _text(context.get("name"))
    if name is None or ":" in name:
        return None
    machine = _text(meta.get("stateMachine")) or "unknown"
    return Execution(arn=None, state_machine=machine, name=name)


def _from_meta(meta: dict[str, Any]) -> Execution | None:
    machine, name = _text(meta.get("stateMachine")), _text(meta.get("job"))
    if machine is None or name is None or ":" in machine or ":" in name:
        return None
    return Execution(arn=None, state_machine=machine, name=name)


def find_execution(detail: dict[str, Any], *, source: str) -> Execution | None:
    """The first of DESIGN's four correlation rules that matches, or None."""
    meta = detail.get("meta") if isinstance(detail.get("meta"), dict) else {}
    return (
        _from_arn(detail.get("execution"))
        or (_from_status(detail) if "executionArn" in detail else None)
        or _from_context(detail, meta)
        or _from_meta(meta)
    )


def _pair(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    source, detail_type = _text(value.get("source")), _text(value.get("detailType"))
    if source is None or detail_type is None:
        return None
    return {"source": source, "detailType": detail_type}


def correlate(detail: dict[str, Any], *, source: str, account: str, region: str) -> Correlation:
    """The job and work of an event. The job's account and region are the envelope's, which
    EventBridge sets: a producer cannot put events into another account's job."""
    execution = find_execution(detail, source=source)
    meta = detail.get("meta") if isinstance(detail.get("meta"), dict) else {}
    incoming = meta.get("incoming") if isinstance(meta.get("incoming"), dict) else {}
    return Correlation(
        job=job_id(account, region, execution.state_machine, execution.name) if execution else None,
        execution=execution,
        fn=_text(meta.get("fn")),
        incoming=_pair(incoming),
        outgoing=_pair(meta.get("outgoing")),
        incoming_id=_text(incoming.get("id")),
    )

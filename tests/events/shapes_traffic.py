"""Step Functions status events for the execution shapes real traffic has (DESIGN section 10):
Distributed Map children (`execution:Parent/MapRunLabel:child`), nested executions (the child's
`input` names its parent in `AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID`), express executions and
redriven executions (`redriveCount`/`redriveDate`), in the shape Step Functions sends them (see
tests/samples/stepfunctions_status.jsonl)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

ACCOUNT = "123456789012"
REGION = "us-east-1"
STATUS_TYPE = "Step Functions Execution Status Change"
STARTED_BY = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"


def ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def execution_arn(machine: str, name: str, *, account: str = ACCOUNT) -> str:
    return f"arn:aws:states:{REGION}:{account}:execution:{machine}:{name}"


def job_id(machine: str, name: str, *, account: str = ACCOUNT) -> str:
    return f"{account}:{REGION}:{machine}:{name}"


def status_event(
    arn: str, status: str, *, start: datetime, stop: datetime | None = None,
    input: dict | None = None, error: str | None = None, redrive_count: int = 0,
    redrive_date: datetime | None = None, at: datetime | None = None,
) -> dict:  # fmt: skip
    """One "Step Functions Execution Status Change" envelope, as EventBridge delivers it."""
    parts = arn.split(":")
    account, machine = parts[4], parts[6]
    detail = {
        "executionArn": arn,
        "stateMachineArn": f"arn:aws:states:{REGION}:{account}:stateMachine:{machine}",
        "name": parts[7], "status": status, "startDate": ms(start),
        "stopDate": ms(stop) if stop else None,
        "input": json.dumps(input or {}), "inputDetails": {"included": True},
        "output": None if status != "SUCCEEDED" else "{}",
        "redriveCount": redrive_count, "redriveDate": ms(redrive_date) if redrive_date else None,
        "redriveStatus": "REDRIVABLE" if status == "FAILED" else "NOT_REDRIVABLE",
    }  # fmt: skip
    if error:
        detail.update(error=error, cause=f"{error} in state Work")
    redriven = redrive_date if status == "RUNNING" else None
    when = at or redriven or stop or start
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": STATUS_TYPE,
        "source": "aws.states", "account": account,
        "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION, "resources": [arn], "detail": detail,
    }  # fmt: skip


def run(arn: str, *, start: datetime, seconds: float, status: str = "SUCCEEDED", **kw) -> list:
    """RUNNING then the end status, `seconds` apart."""
    stop = start + timedelta(seconds=seconds)
    error = "States.TaskFailed" if status == "FAILED" else None
    return [
        status_event(arn, "RUNNING", start=start, **kw),
        status_event(arn, status, start=start, stop=stop, error=error, **kw),
    ]


def map_run(
    parent: str, label: str, children: int, *, start: datetime, failed: int = 0,
    running: int = 0, parent_arn: str | None = None,
) -> list[dict]:  # fmt: skip
    """A Distributed Map run's children: `failed` failed, `running` still running, the rest
    succeeded. With `parent_arn` each child's input names the parent execution."""
    events: list[dict] = []
    machine = f"{parent}/{label}"
    extra = {STARTED_BY: parent_arn} if parent_arn else {}
    for n in range(children):
        arn = execution_arn(machine, f"child-{n}")
        at = start + timedelta(milliseconds=n)
        item = {"item": n, **extra}
        if n < running:
            events.append(status_event(arn, "RUNNING", start=at, input=item))
            continue
        status = "FAILED" if n < running + failed else "SUCCEEDED"
        events += run(arn, start=at, seconds=1, status=status, input=item)
    return events


def bodies(envelopes: list[dict]) -> list[str]:
    return [json.dumps(envelope) for envelope in envelopes]


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)

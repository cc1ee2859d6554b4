"""Generated traffic shaped like the instrumentation kit's: jobs of a state machine whose Lambdas
consume one event type and emit another within milliseconds (`meta.fn`, `meta.incoming` with the
trigger's id, `meta.emittedAt`), Step Functions status events, and event types nothing handles."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ACCOUNT_A = "123456789012"
ACCOUNT_B = "210987654321"
REGION = "us-east-1"
STATUS_TYPE = "Step Functions Execution Status Change"


@dataclass(frozen=True)
class Step:
    """`fn` consumed the job's latest `consumes` event and emitted `emits` `ms` later."""

    fn: str
    consumes: str
    emits: str
    ms: int


def _envelope(
    *, detail_type: str, source: str, account: str, at: datetime, detail: dict, resources=()
) -> dict:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
        "account": account, "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION, "resources": list(resources), "detail": detail,
    }  # fmt: skip


def _epoch_ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def _status(arn: str, machine: str, account: str, status: str, start: datetime, stop) -> dict:
    detail = {
        "executionArn": arn, "name": arn.rsplit(":", 1)[1], "status": status,
        "stateMachineArn": f"arn:aws:states:{REGION}:{account}:stateMachine:{machine}",
        "startDate": _epoch_ms(start), "stopDate": _epoch_ms(stop) if stop else None,
    }  # fmt: skip
    return _envelope(
        detail_type=STATUS_TYPE, source="aws.states", account=account,
        at=stop or start, detail=detail, resources=[arn],
    )  # fmt: skip


def job_envelopes(
    *, machine: str, start: datetime, trigger: str, steps: list[Step], account: str = ACCOUNT_A,
    source: str = "shop", name: str | None = None, status: bool = True,
) -> list[dict]:  # fmt: skip
    """One job: the state machine puts `trigger`, then each step runs in order."""
    name = name or str(uuid.uuid4())
    arn = f"arn:aws:states:{REGION}:{account}:execution:{machine}:{name}"
    first = _envelope(
        detail_type=trigger, source=source, account=account, at=start,
        detail={"execution": arn, "meta": {"emittedAt": _epoch_ms(start)}},
    )  # fmt: skip
    seen = {trigger: (first, start)}
    envelopes = [first]
    for step in steps:
        cause, cause_at = seen[step.consumes]
        at = cause_at + timedelta(milliseconds=step.ms)
        meta = {
            "fn": step.fn, "emittedAt": _epoch_ms(at),
            "incoming": {"source": source, "detailType": step.consumes, "id": cause["id"]},
            "outgoing": {"source": source, "detailType": step.emits},
        }  # fmt: skip
        envelope = _envelope(
            detail_type=step.emits, source=source, account=account, at=at,
            detail={"execution": arn, "meta": meta},
        )  # fmt: skip
        seen[step.emits] = (envelope, at)
        envelopes.append(envelope)
    if status:
        stop = max(at for _, at in seen.values()) + timedelta(milliseconds=40)
        envelopes.insert(0, _status(arn, machine, account, "RUNNING", start, None))
        envelopes.append(_status(arn, machine, account, "SUCCEEDED", start, stop))
    return envelopes


def orphan_envelope(*, detail_type: str, source: str, at: datetime, account=ACCOUNT_A) -> dict:
    """An event with no job and no function: nothing consumes it, no producer is inferred."""
    return _envelope(
        detail_type=detail_type, source=source, account=account, at=at, detail={"level": "info"}
    )


def bodies(envelopes: list[dict]) -> list[str]:
    return [json.dumps(envelope) for envelope in envelopes]

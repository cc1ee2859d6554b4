"""Hand-built jobs of one state machine, "Orders", whose events name their workflow states the
ways real traffic does (issue 25, "The job view, by state"):

- `Validate`: the state machine puts `validate` with `stateName` (an `events:putEvents` task);
  `validateFn` answers with the kit's `meta` and no state of its own.
- `Enrich`: the state machine puts `enrich` carrying the whole context object under
  `executionContext.context` (`$$.State.Name`); `enrichFn` answers `enriched`, which `auditFn`
  (another Lambda, no state anywhere in its events) consumes: it still runs for `Enrich`.
- `Charge`: a Map, one `charge` per item (`{"item": NAME}`), answered by `chargeFn`.
- a `ping` no state names, answered by `pingFn`: it keeps its function lane.
- a failing job puts `ship` (`Ship`) that no one answers, then FAILED.

The order of `Validate` and `Enrich` and of the Map's items is a parameter, so two jobs can show
their states in different orders.
"""

from __future__ import annotations

import json
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
MACHINE = "Orders"
T0 = 1795165200000  # 2026-11-20T08:20:00Z, epoch ms


def job_id(name: str) -> str:
    return f"{ACCOUNT}:{REGION}:{MACHINE}:{name}"


def _arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{MACHINE}:{name}"


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Job:
    def __init__(self, name: str, t0: int) -> None:
        self.name, self.t0, self.events = name, t0, []

    def add(self, key: str, detail_type: str, at: int, detail: dict, source: str = "project"):
        self.events.append({
            "version": "0", "id": f"{self.name}-{key}", "detail-type": detail_type,
            "source": source, "account": ACCOUNT, "time": _iso(self.t0 + at), "region": REGION,
            "resources": [], "detail": detail,
        })  # fmt: skip
        return f"{self.name}-{key}"

    def put(self, key: str, detail_type: str, at: int, state: str | None, **fields) -> str:
        """An event the state machine puts, naming its state by `stateName`."""
        detail = {**fields, "execution": _arn(self.name), "TaskToken": f"tok-{self.name}-{key}",
                  "meta": {"emittedAt": self.t0 + at}}  # fmt: skip
        if state:
            detail["stateName"] = state
        return self.add(key, detail_type, at, detail)

    def answer(
        self, key: str, detail_type: str, at: int, fn: str, cause: tuple[str, str], **fields
    ):
        """A Lambda's answer, as the kit writes it (no state of its own)."""
        meta = {"fn": fn, "emittedAt": self.t0 + at, "stateMachine": MACHINE, "job": self.name,
                "incoming": {"account": ACCOUNT, "source": "project", "detailType": cause[1],
                             "id": cause[0]},
                "outgoing": {"source": "project", "detailType": detail_type}}  # fmt: skip
        return self.add(
            key, detail_type, at, {**fields, "execution": _arn(self.name), "meta": meta}
        )

    def status(self, status: str, at: int, **extra) -> None:
        detail = {"executionArn": _arn(self.name), "name": self.name, "status": status,
                  "stateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{MACHINE}",
                  "startDate": self.t0, "stopDate": None if status == "RUNNING" else self.t0 + at,
                  **extra}  # fmt: skip
        self.add(f"status-{status}", "Step Functions Execution Status Change", at, detail,
                 source="aws.states")  # fmt: skip


def orders_job(
    name: str,
    *,
    first: str = "Validate",
    items: tuple[str, ...] = ("ann", "bob"),
    fail: bool = False,
    t0: int = T0,
    slow: int = 0,
) -> list[dict[str, Any]]:
    """One job's envelopes; `first` runs first of Validate and Enrich; `slow` ms more per item."""
    job, at = _Job(name, t0), 0
    job.status("RUNNING", 0)
    for state in (first, "Enrich" if first == "Validate" else "Validate"):
        at += 1000
        if state == "Validate":
            trigger = job.put("validate", "validate", at, "Validate")
            job.answer("validated", "validated", at + 300, "validateFn", (trigger, "validate"))
        else:
            context = {
                "context": {
                    "Execution": {"Id": _arn(name), "Name": name},
                    "State": {"Name": "Enrich", "EnteredTime": _iso(t0 + at)},
                }
            }
            trigger = job.put("enrich", "enrich", at, None, executionContext=context)
            done = job.answer("enriched", "enriched", at + 200, "enrichFn", (trigger, "enrich"))
            job.answer("audited", "audited", at + 500, "auditFn", (done, "enriched"))
        at += 600
    for n, item in enumerate(items):
        at += 1000
        trigger = job.put(f"charge-{item}", "charge", at, "Charge", item=item)
        took = 100 * (n + 1) + slow
        job.answer(
            f"charged-{item}", "charged", at + took, "chargeFn", (trigger, "charge"), item=item
        )
    at += 1000
    ping = job.put("ping", "ping", at, None)
    job.answer("pong", "pong", at + 50, "pingFn", (ping, "ping"))
    at += 1000
    if fail:
        job.put("ship", "ship", at, "Ship")
        job.status("FAILED", at + 2000, error="States.Timeout", cause="Ship timed out")
    else:
        job.status("SUCCEEDED", at)
    return job.events


def bodies(*jobs: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(event) for job in jobs for event in job]

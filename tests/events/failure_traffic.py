"""Failing jobs of a "Checkout" state machine, shaped like real traffic (issue 27, failure groups).

Each job: RUNNING; the state machine puts `reserve` (`stateName: Reserve`, a task token: it waits
for the answer) that `reserveFn` answers; then puts `charge` (`Charge`). A job that fails in
Charge gets no answer (the Lambda raised) and ends FAILED with the Lambda's error type and its
JSON cause (`errorMessage` with the order id, `requestId`, `stackTrace`), as Step Functions
reports an unhandled `States.TaskFailed`.
A job that times out in Ship ends TIMED_OUT with `States.Timeout` and no cause.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

ACCOUNT_A = "123456789012"
ACCOUNT_B = "210987654321"
REGION = "us-east-1"
MACHINE = "Checkout"


def job_id(name: str, account: str = ACCOUNT_A, machine: str = MACHINE) -> str:
    return f"{account}:{REGION}:{machine}:{name}"


def lambda_cause(order: int, message: str = "Order {} not found in table checkout-orders") -> str:
    return json.dumps({
        "errorMessage": message.format(order),
        "errorType": "OrderNotFound", "requestId": str(uuid.uuid4()),
        "stackTrace": ['  File "/var/task/charge.py", line 31, in handler\n'
                       "    raise OrderNotFound(order_id)\n"],
    })  # fmt: skip


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def checkout_job(
    name: str, *, start: datetime, outcome: str = "charge", account: str = ACCOUNT_A,
    machine: str = MACHINE, order: int = 1000, message: str | None = None,
) -> list[dict]:  # fmt: skip
    """`outcome`: "charge" (FAILED in Charge), "ship" (TIMED_OUT in Ship) or "ok"."""
    arn = f"arn:aws:states:{REGION}:{account}:execution:{machine}:{name}"
    events: list[dict] = []

    def add(key, source, detail_type, ms, detail):
        events.append({
            "version": "0", "id": f"{name}-{key}-{account}", "detail-type": detail_type,
            "source": source, "account": account, "time": _iso(start + timedelta(milliseconds=ms)),
            "region": REGION, "resources": [arn] if source == "aws.states" else [],
            "detail": detail,
        })  # fmt: skip

    def status(ms, value, **extra):
        stop = (
            None
            if value == "RUNNING"
            else int((start + timedelta(milliseconds=ms)).timestamp() * 1000)
        )
        add(f"status-{value}", "aws.states", "Step Functions Execution Status Change", ms, {
            "executionArn": arn, "name": name, "status": value,
            "stateMachineArn": f"arn:aws:states:{REGION}:{account}:stateMachine:{machine}",
            "startDate": int(start.timestamp() * 1000), "stopDate": stop, "input": "{}",
            "output": None, **extra,
        })  # fmt: skip

    def put(key, ms, state):
        """A `.waitForTaskToken` events:putEvents task of the state machine, naming its state."""
        add(key, "checkout", key, ms, {
            "execution": arn, "stateName": state, "orderId": order,
            "TaskToken": f"AQCEAAAAKgAAAAMAAAAA{uuid.uuid4().hex}",
            "meta": {"emittedAt": int(start.timestamp() * 1000) + ms},
        })  # fmt: skip

    def answer(key, ms, fn, trigger):
        add(key, "checkout", key, ms, {"execution": arn, "orderId": order, "meta": {
            "fn": fn, "stateMachine": machine, "job": name,
            "incoming": {"account": account, "source": "checkout", "detailType": trigger,
                         "id": f"{name}-{trigger}-{account}"},
            "outgoing": {"source": "checkout", "detailType": key}}})  # fmt: skip

    status(0, "RUNNING")
    put("reserve", 100, "Reserve")
    answer("reserved", 400, "reserveFn", "reserve")
    put("charge", 500, "Charge")
    if outcome == "charge":
        status(
            3500,
            "FAILED",
            error="OrderNotFound",
            cause=lambda_cause(order, *([message] if message else [])),
        )
        return events
    answer("charged", 900, "chargeFn", "charge")
    put("ship", 1000, "Ship")
    if outcome == "ship":
        status(61_000, "TIMED_OUT", error="States.Timeout")
        return events
    answer("shipped", 1500, "shipFn", "ship")
    status(1600, "SUCCEEDED")
    return events


def traffic(now: datetime) -> list[dict]:
    """Account A: three Charge failures (different orders), one Ship timeout, two successes;
    account B: a Charge failure of its own."""
    ago = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
    jobs = [
        checkout_job("c-1", start=ago(300), order=8412931),
        checkout_job("c-2", start=ago(120), order=77),
        checkout_job("c-3", start=ago(30), order=5120044),
        checkout_job("t-1", start=ago(60), outcome="ship"),
        checkout_job("ok-1", start=ago(50), outcome="ok"),
        checkout_job("ok-2", start=ago(20), outcome="ok"),
        checkout_job("b-1", start=ago(40), account=ACCOUNT_B, order=991),
    ]
    return [event for job in jobs for event in job]

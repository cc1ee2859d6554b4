"""The traffic of issue 25 "Time": answers whose producer clock reads before their trigger's
delivery. Shared by the API, socket and browser tests.

Step Functions puts a trigger on the bus with no producer clock, so its `at` is SQS's
SentTimestamp: it is sent some 300 ms into a second. The Lambda answering it stamps
`meta.emittedAt` 2 ms into that same second (its clock reads behind the delivery's). Three
answers, one per pairing rule: `meta.incoming.id` (rule 1), a `TaskToken` (rule 2), and only
`meta.incoming`'s source and detail-type (rule 3).
"""

from __future__ import annotations

import math
import time
import uuid
from datetime import UTC, datetime

from infra.instrument import event_detail

ACCOUNT = "123456789012"
MACHINE = "SkewedMachine"
INTO_SECOND = 0.3  # when the triggers are sent, in their second
TOKEN = "token-of-GetProfile"
ANSWERED_BY = {  # trigger detail-type: (answer detail-type, fn, pairing rule)
    "getUsers": ("done", "getMultipleFn", "id"),
    "getUserProfile": ("getUserCookies", "processSingleFn", "token"),
    "generateReport": ("reportDone", "postProcessAllFn", "order"),
}


def arn(name: str) -> str:
    return f"arn:aws:states:us-east-1:{ACCOUNT}:execution:{MACHINE}:{name}"


def job_id(name: str) -> str:
    return f"{ACCOUNT}:us-east-1:{MACHINE}:{name}"


def envelope(detail_type: str, detail: dict, *, second: int, source: str = "project") -> dict:
    """What EventBridge delivers: `time` is the whole second the event was put in."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
        "account": ACCOUNT, "region": "us-east-1", "resources": [], "detail": detail,
        "time": datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }  # fmt: skip


def status(name: str, state: str, *, started: float, stopped: float | None = None) -> dict:
    detail = {
        "executionArn": arn(name), "name": name, "status": state,
        "startDate": round(started * 1000), "stopDate": round(stopped * 1000) if stopped else None,
    }  # fmt: skip
    second = math.floor(stopped or started)
    return envelope("Step Functions Execution Status Change", detail, second=second,
                    source="aws.states")  # fmt: skip


def second_to_send_in() -> int:
    """Waits until the clock is INTO_SECOND into a second and returns that second: what is sent
    now gets a SentTimestamp of at least 300 ms into it (later on a busy machine, which the
    delivery clock accepts for two seconds: events.domain.clock)."""
    now = time.time()
    second, wait = math.floor(now), INTO_SECOND - (now - math.floor(now))
    if wait < 0:
        second, wait = second + 1, wait + 1
    time.sleep(wait)
    return second


def triggers(name: str, second: int) -> list[dict]:
    """The execution's start and the three triggers the state machine puts (no meta)."""
    running = status(name, "RUNNING", started=second - 0.5)
    put = [
        envelope(detail_type, {"execution": arn(name), "stateName": detail_type}, second=second)
        for detail_type in ANSWERED_BY
    ]
    put[1]["detail"]["TaskToken"] = TOKEN
    return [running, *put]


def answers(name: str, sent: list[dict], second: int) -> list[dict]:
    """Each trigger's answer, stamped 2 ms (and on) into the triggers' second, and the stop."""
    found = []
    for offset, trigger in enumerate(sent[1:]):
        detail_type, fn, rule = ANSWERED_BY[trigger["detail-type"]]
        clock = second + 0.002 + offset / 1000
        detail = event_detail(trigger, detail_type, {}, source="project", fn=fn,
                              clock=lambda clock=clock: clock)  # fmt: skip
        if rule != "id":
            del detail["meta"]["incoming"]["id"]
        if rule == "order":
            detail.pop("TaskToken", None)
        found.append(envelope(detail_type, detail, second=second))
    found.append(status(name, "SUCCEEDED", started=second - 0.5, stopped=time.time()))
    return found


def trigger_of(answer: dict, sent: list[dict]) -> dict:
    incoming = answer["detail"]["meta"]["incoming"]["detailType"]
    return next(envelope_ for envelope_ in sent if envelope_["detail-type"] == incoming)

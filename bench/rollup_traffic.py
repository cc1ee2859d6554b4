"""Realistic traffic for the architecture rollups (bench/rollups.py and their tests). Pure.

Several accounts and state machines; per job a `start` event, Step Functions status events,
events the state machine puts (with task tokens) and the Lambdas' answers, stamped to the
millisecond (`meta.emittedAt`, sub-second latencies). Answers name their trigger by id, or by
task token only, or by neither (the three pairing rules of events.domain.timeline). Some jobs fail
mid flight (a Lambda never answers, the execution FAILED); some answers name a trigger that was
lost (never delivered). `deliveries` then cuts the events into SQS-sized batches, redelivers
some (duplicates) and swaps neighbours (an answer may arrive before its trigger).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from events.domain.envelope import NormalisedEvent, parse_envelope

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
MACHINES = ("EventDrivenMachine", "OrderMachine")
STATUS = "Step Functions Execution Status Change"


class _Job:
    def __init__(self, rng: random.Random, start: datetime, account: str, machine: str) -> None:
        self.rng, self.account, self.machine = rng, account, machine
        self.name = str(uuid.UUID(int=rng.getrandbits(128)))
        self.arn = f"arn:aws:states:us-east-1:{account}:execution:{machine}:{self.name}"
        self.clock = start
        self.envelopes: list[dict[str, Any]] = []
        self.lost: set[str] = set()

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128)))

    def envelope(self, at: datetime, detail_type: str, detail: dict, source: str = "project"):
        envelope = {
            "version": "0", "id": self._id(), "detail-type": detail_type, "source": source,
            "account": self.account, "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1", "resources": [], "detail": detail,
        }  # fmt: skip
        self.envelopes.append(envelope)
        return envelope

    def status(self, at: datetime, status: str) -> None:
        stop = None if status == "RUNNING" else int(at.timestamp() * 1000)
        detail = {"executionArn": self.arn, "status": status, "name": self.name,
                  "startDate": int(self.clock.timestamp() * 1000), "stopDate": stop}  # fmt: skip
        self.envelope(at, STATUS, detail, source="aws.states")

    def put(self, at: datetime, detail_type: str, step: str) -> dict:
        token = "".join(self.rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", k=20))
        detail = {"execution": self.arn, "stateName": step, "TaskToken": token}
        return self.envelope(at, detail_type, detail)

    def answer(self, cause: dict, fn: str, detail_type: str) -> dict:
        """A Lambda's answer to `cause`, 5 ms to 1.5 s later (sometimes a few seconds)."""
        started = cause.get("_at") or _time(cause)
        ms = self.rng.randint(5, 1500) if self.rng.random() < 0.9 else self.rng.randint(1500, 9000)
        at = started + timedelta(milliseconds=ms)
        style = self.rng.random()
        incoming = {"account": self.account, "source": "project",
                    "detailType": cause["detail-type"]}  # fmt: skip
        if style < 0.7:
            incoming["id"] = cause["id"]
        meta = {"incoming": incoming, "outgoing": {"source": "project", "detailType": detail_type},
                "fn": fn, "stateMachine": self.machine, "job": self.name,
                "emittedAt": int(at.timestamp() * 1000)}  # fmt: skip
        detail = {"execution": self.arn, "stateName": cause["detail"]["stateName"], "meta": meta}
        if style < 0.85 and "TaskToken" in cause["detail"]:
            detail["TaskToken"] = cause["detail"]["TaskToken"]
        answer = self.envelope(at, detail_type, detail)
        answer["_at"] = at
        return answer

    def build(self) -> list[dict]:
        self.envelope(self.clock, "start", {})
        self.status(self.clock, "RUNNING")
        users = self.put(self.clock + timedelta(seconds=self.rng.randint(0, 1)), "getUsers", "Get")
        done = self.answer(users, f"{self.machine}-getMultipleFn", "done")
        at = done["_at"]
        for index in range(self.rng.randint(0, 6)):
            profile = self.put(at + timedelta(seconds=self.rng.randint(0, 1)), "getUserProfile",
                               f"Process{index}")  # fmt: skip
            if self.rng.random() < 0.03:  # fails mid-flight: the Lambda never answers
                self.status(at + timedelta(seconds=5), "FAILED")
                return self._clean()
            cookies = self.answer(profile, "processSingleFn", "getUserCookies")
            if self.rng.random() < 0.02:  # the trigger is lost: its answer waits for ever
                self.lost.add(profile["id"])
            self.answer(cookies, "postProcessSingleFn", "done")
            self.answer(cookies, "sideEffectFn", "async.done")
            at = cookies["_at"]
        report = self.put(at + timedelta(seconds=1), "generateReport", "Report")
        finished = self.answer(report, "postProcessAllFn", "done")
        self.status(finished["_at"] + timedelta(milliseconds=200), "SUCCEEDED")
        return self._clean()

    def _clean(self) -> list[dict]:
        for envelope in self.envelopes:
            envelope.pop("_at", None)
        return [envelope for envelope in self.envelopes if envelope["id"] not in self.lost]


def envelopes(count: int, *, start: datetime, seconds: int, seed: int = 7) -> list[dict]:
    """At least `count` envelopes of jobs started evenly over `seconds` from `start`."""
    rng = random.Random(seed)
    jobs: list[list[dict]] = []
    total, per_job = 0, 22
    step = seconds / max(1, count // per_job)
    index = 0
    while total < count:
        began = start + timedelta(seconds=int(index * step))
        job = _Job(rng, began, rng.choice(ACCOUNTS), rng.choice(MACHINES)).build()
        jobs.append(job)
        total += len(job)
        index += 1
    found = [envelope for job in jobs for envelope in job]
    return sorted(found, key=lambda envelope: envelope["time"])[:count]


def events(count: int, *, start: datetime, seconds: int, seed: int = 7) -> list[NormalisedEvent]:
    """The envelopes, parsed; each received a second after its time."""
    return [
        parse_envelope(
            envelope,
            default_account=envelope["account"],
            received_at=_time(envelope) + timedelta(seconds=1),
        )  # fmt: skip
        for envelope in envelopes(count, start=start, seconds=seconds, seed=seed)
    ]


def deliveries(
    found: list[NormalisedEvent], *, seed: int = 11, size: int = 10, swaps: float = 0.1
) -> Iterator[list[NormalisedEvent]]:
    """SQS-like batches: neighbours swapped now and then, a few batches delivered twice."""
    rng = random.Random(seed)
    ordered = list(found)
    for i in range(0, len(ordered) - 1, 2):
        if rng.random() < swaps:
            ordered[i], ordered[i + 1] = ordered[i + 1], ordered[i]
    for start in range(0, len(ordered), size):
        batch = ordered[start : start + size]
        yield batch
        if rng.random() < 0.05:
            yield batch  # redelivered


def _time(envelope: dict) -> datetime:
    return datetime.fromisoformat(envelope["time"].replace("Z", "+00:00")).astimezone(UTC)

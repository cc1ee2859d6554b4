"""How job_timeline and infer_architecture grow with the number of events (pure, no Django).

Run as `python bench/timeline_architecture.py`. Synthetic traffic has the demo workflow's shape
(DESIGN section 7), in whole seconds, with a third of the Lambda events naming their trigger's id,
a third carrying only a TaskToken and a third neither, so every pairing rule is exercised.
`run()` returns `{name: {"value", "unit", "target", "higher_is_better"}}` for `make bench`.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from events.domain.architecture import infer_architecture  # noqa: E402
from events.domain.envelope import NormalisedEvent, parse_envelope  # noqa: E402
from events.domain.timeline import job_timeline  # noqa: E402

ACCOUNT = "123456789012"
MACHINE = "EventDrivenMachine"
EPOCH = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
REPEATS = 3
# Seconds a size may take, far above what a laptop needs, so a regression to O(n^2) fails loudly.
TARGETS = {"timeline_1k": 0.5, "timeline_10k": 3.0, "architecture_10k": 3.0}
TARGETS |= {"architecture_100k": 30.0}
GROWTH_TARGET = 1.5


class _Job:
    """Builds the envelopes of one demo execution."""

    def __init__(self, rng: random.Random, start: datetime, names: int) -> None:
        self.rng, self.clock, self.names = rng, start, names
        self.name = str(uuid.UUID(int=rng.getrandbits(128)))
        self.arn = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:{MACHINE}:{self.name}"
        self.envelopes: list[dict[str, Any]] = []
        self.spans = 0

    def envelope(self, at: datetime, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
        envelope = {
            "version": "0",
            "id": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "detail-type": detail_type,
            "source": "aws.states" if "executionArn" in detail else "project",
            "account": ACCOUNT,
            "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
        self.envelopes.append(envelope)
        return envelope

    def status(self, at: datetime, status: str) -> None:
        stop = int(at.timestamp() * 1000) if status != "RUNNING" else None
        detail = {"executionArn": self.arn, "status": status, "stopDate": stop}
        detail["startDate"] = int(self.clock.timestamp() * 1000)
        self.envelope(at, "Step Functions Execution Status Change", detail)

    def put(self, at: datetime, detail_type: str, step: str, **extra: Any) -> dict[str, Any]:
        token = "".join(self.rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=24))
        detail = {"execution": self.arn, "stateName": step, "TaskToken": token, **extra}
        return self.envelope(at, detail_type, detail)

    def answer(self, at: datetime, cause: dict[str, Any], fn: str, detail_type: str) -> dict:
        """A Lambda's event: by turns with the trigger's id, with its TaskToken only, or bare."""
        style, self.spans = self.spans % 3, self.spans + 1
        incoming = {"account": ACCOUNT, "source": "project", "detailType": cause["detail-type"]}
        if style == 0:
            incoming["id"] = cause["id"]
        meta = {"incoming": incoming, "outgoing": {"source": "project", "detailType": detail_type}}
        meta |= {"fn": fn, "stateMachine": MACHINE, "job": self.name}
        detail = {"execution": self.arn, "stateName": cause["detail"]["stateName"], "meta": meta}
        if style < 2:
            detail["TaskToken"] = cause["detail"]["TaskToken"]
        return self.envelope(at, detail_type, detail)

    def later(self, at: datetime, most: int = 6) -> datetime:
        return at + timedelta(seconds=self.rng.randint(0, most))

    def build(self) -> list[dict[str, Any]]:
        self.envelope(self.clock, "start", {})
        self.status(self.clock, "RUNNING")
        users = self.put(self.later(self.clock, 1), "getUsers", "GetMultiple")
        done = self.answer(self.later(time_of(users)), users, "getMultipleFn", "done")
        free = [time_of(done), time_of(done)]
        for index in range(self.names):
            free.sort()
            free[0] = self.one_name(free[0], index)
        report = self.put(self.later(max(free), 2), "generateReport", "PostProcessAll")
        finished = self.answer(self.later(time_of(report)), report, "postProcessAllFn", "done")
        self.status(self.later(time_of(finished), 1), "SUCCEEDED")
        return self.envelopes

    def one_name(self, at: datetime, index: int) -> datetime:
        """The work for one name; returns when its slot is free again."""
        profile = self.put(self.later(at, 1), "getUserProfile", "ProcessMultiple", name=index)
        cookies = self.answer(
            self.later(time_of(profile)), profile, "processSingleFn", "getUserCookies"
        )
        done = self.answer(self.later(time_of(cookies)), cookies, "postProcessSingleFn", "done")
        self.answer(self.later(time_of(cookies), 15), cookies, "sideEffectFn", "async.done")
        return time_of(done)


def time_of(envelope: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(envelope["time"].replace("Z", "+00:00"))


def parse_sorted(envelopes: list[dict[str, Any]]) -> list[NormalisedEvent]:
    events = [parse_envelope(envelope, default_account=ACCOUNT) for envelope in envelopes]
    return sorted(events, key=lambda event: event.time)


def one_job(size: int, seed: int = 1) -> list[NormalisedEvent]:
    """The events of one job with about `size` events (none without a job)."""
    job = _Job(random.Random(seed), EPOCH, names=max(0, (size - 6) // 4))
    return [event for event in parse_sorted(job.build()) if event.job]


def window(size: int, seed: int = 2) -> list[NormalisedEvent]:
    """At least `size` events of many jobs (0 to 19 names each), started a few seconds apart."""
    rng, envelopes, start = random.Random(seed), [], EPOCH
    while len(envelopes) < size:
        envelopes += _Job(rng, start, names=rng.randint(0, 19)).build()
        start += timedelta(seconds=rng.randint(0, 5))
    return parse_sorted(envelopes)


def best_of(action: Callable[[], Any]) -> float:
    timings = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        action()
        timings.append(time.perf_counter() - began)
    return min(timings)


def growth(small: tuple[int, float], large: tuple[int, float]) -> float:
    """t(large)/t(small) over n log n's ratio: about 1 for n log n, about 10x that for n^2."""
    (n1, t1), (n2, t2) = small, large
    return (t2 / t1) / ((n2 * math.log(n2)) / (n1 * math.log(n1)))


def measure(name: str, events: list[NormalisedEvent], action: Callable) -> tuple[int, float]:
    seconds = best_of(lambda: action(events))
    print(f"{name:<20} {len(events):>7} events  {seconds:8.4f} s", flush=True)
    return len(events), seconds


def same_second(size: int, seed: int = 3) -> list[NormalisedEvent]:
    """One job of about `size` events all in one second, with no ids or TaskTokens: the worst
    case for pairing by order."""
    job = _Job(random.Random(seed), EPOCH, names=max(0, (size - 6) // 4))
    envelopes = job.build()
    for envelope in envelopes:
        envelope["time"] = EPOCH.strftime("%Y-%m-%dT%H:%M:%SZ")
        envelope["detail"].pop("TaskToken", None)
        envelope["detail"].get("meta", {}).get("incoming", {}).pop("id", None)
    return [event for event in parse_sorted(envelopes) if event.job]


def sort_floor(events: list[NormalisedEvent]) -> float:
    """The limit: one Python sort of the same events by (time, id), best of REPEATS."""
    return best_of(lambda: sorted(events, key=lambda event: (event.time, event.id)))


def run() -> dict[str, dict[str, Any]]:
    """Times both functions at two sizes each (and the same-second worst case), each against
    a sort of the same events, and reports seconds and growth."""
    from bench.common import figure, limit

    sizes = {
        "timeline_1k": (one_job(1_000), job_timeline),
        "timeline_10k": (one_job(10_000), job_timeline),
        "timeline_10k_same_second": (same_second(10_000), job_timeline),
        "architecture_10k": (window(10_000), infer_architecture),
        "architecture_100k": (window(100_000), infer_architecture),
    }
    measured = {name: measure(name, events, action) for name, (events, action) in sizes.items()}
    results = {}
    for name, (count, seconds) in measured.items():
        floor = sort_floor(sizes[name][0])
        results[name] = figure(
            seconds, "s", target=TARGETS.get(name, TARGETS["timeline_10k"]), target_on="value",
            higher_is_better=False,
            limit=limit(f"sort_{count}_events", floor, "s",
                        "sorted() of the same events by (time, id), best of 3, same run"),
        )  # fmt: skip
    for kind, small, large in (("timeline", "1k", "10k"), ("architecture", "10k", "100k")):
        ratio = growth(measured[f"{kind}_{small}"], measured[f"{kind}_{large}"])
        print(f"{kind} growth {small}->{large}: {ratio:.2f} x n log n", flush=True)
        results[f"{kind}_growth"] = figure(
            measured[f"{kind}_{large}"][1], "s", target=GROWTH_TARGET, higher_is_better=False,
            ratio=ratio, limit=limit(
                f"{kind}_{small}_scaled_n_log_n",
                measured[f"{kind}_{large}"][1] / ratio, "s",
                f"t({small}) x n log n growth to {large}: ratio 1 is n log n, 10 quadratic"),
        )  # fmt: skip
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))

"""Demo traffic: the workflow of DESIGN section 7, put on an EventBridge bus (`manage.py simulate`).

Two halves:
- a pure, seeded plan (`plan_job`, `iter_jobs`, `plan_jobs`): per job, every event with its
  simulated time, what emits it and which event triggered it. Same seed, same traffic;
- a sender (`run_traffic`, infra.traffic_send) that walks the plan in time order and puts it in
  batches of up to 10.
  EventBridge assigns envelope ids, so an event emitted by a "Lambda" is only built, with the
  instrumentation kit's `event_detail`, once its trigger has been sent and its id is known: that
  is how every Lambda event gets `meta.incoming.id`.

Envelope times follow the simulated clock (`start` + the planned offset); `speed` only scales
the real waiting between events (1 = real time, 10 = ten times faster, 0 = no waiting at all).
Lambdas work for tens to hundreds of milliseconds, as real ones do, and the kit stamps their events'
`meta.emittedAt` with the simulated clock, so the demo's timelines show milliseconds that
EventBridge's whole-second `time` cannot.

Status events (`aws.states`, "Step Functions Execution Status Change") are put like the others so
the demo has them; on real AWS only Step Functions may use that source, PutEvents refuses them
(they are then counted in `TrafficStats.status_rejected`); `status_events=False` leaves them
out.
"""

from __future__ import annotations

import heapq
import logging
import random
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

logger = logging.getLogger(__name__)

SOURCE = "project"
STATE_MACHINE = "EventDrivenMachine"
STATUS_SOURCE = "aws.states"
STATUS_DETAIL_TYPE = "Step Functions Execution Status Change"
DEFAULT_ACCOUNT = "123456789012"
MAX_NAMES = 19
MAP_CONCURRENCY = 2
BATCH_SIZE = 10
RETRIES = 3
SLACK_SECONDS = 0.05  # events due this close together go out in one batch
# How long each Lambda works (seconds, uniform between the two): tens to hundreds of ms.
LAMBDA_WORK = {
    "getMultipleFn": (0.05, 0.6),
    "processSingleFn": (0.03, 0.4),
    "postProcessSingleFn": (0.02, 0.3),
    "sideEffectFn": (0.05, 0.9),
    "postProcessAllFn": (0.1, 0.8),
}

NAMES = (
    "Ada Lovelace", "Alan Turing", "Grace Hopper", "Ken Thompson", "Dennis Ritchie",
    "Barbara Liskov", "Edsger Dijkstra", "Margaret Hamilton", "John Backus", "Jean Sammet",
    "Tony Hoare", "Radia Perlman", "Leslie Lamport", "Katherine Johnson", "Donald Knuth",
    "Frances Allen", "Niklaus Wirth", "Adele Goldberg", "John McCarthy", "Sophie Wilson",
    "Butler Lampson", "Hedy Lamarr", "Vint Cerf", "Karen Sparck Jones",
)  # fmt: skip
FAILURES = (
    ("States.TaskFailed", "The state {state} failed: upstream timed out"),
    ("States.Timeout", "The state {state} timed out waiting for its task token"),
    ("UserServiceError", "The state {state} failed: the user service answered 503"),
)
TOKEN_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class PlannedEvent:
    """One event of the plan.

    `detail` is the whole detail of events put by the state machine, by Step Functions or by the
    caller; for an event emitted by a Lambda (`fn` set) it is the payload handed to the kit, and
    `trigger` is the `key` (in the same job) of the event whose handling emits it.
    """

    job: int
    seq: int
    key: str
    offset: float  # seconds after the plan's start, on the simulated clock
    time: datetime
    source: str
    detail_type: str
    detail: dict[str, Any]
    resources: tuple[str, ...] = ()
    fn: str | None = None
    trigger: str | None = None
    terminal: bool = False  # the job's SUCCEEDED or FAILED status event

    @property
    def sort_key(self) -> tuple[float, int, int]:
        return (self.offset, self.job, self.seq)


@dataclass(frozen=True)
class JobPlan:
    """One execution of the workflow; `names` are those getMultipleFn announced (if it did)."""

    index: int
    name: str
    execution_arn: str
    names: tuple[str, ...]
    start: float
    end: float  # offset of the terminal status event
    failed: bool
    events: tuple[PlannedEvent, ...]


@dataclass
class TrafficStats:
    events_sent: int = 0
    jobs_started: int = 0
    jobs_done: int = 0
    jobs_failed: int = 0
    status_rejected: int = 0
    seed: int | None = None


class TrafficError(RuntimeError):
    """EventBridge kept refusing events of the demo workflow."""


# --- the plan (pure) -------------------------------------------------------------------------


class _JobBuilder:
    """Collects one job's events while its workflow is simulated."""

    def __init__(self, index: int, *, seed: int, start: float, base: datetime, arns: dict) -> None:
        self.index, self.start, self.base = index, start, base
        self.rng = random.Random(f"{seed}/{index}")
        self.name = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.machine_arn = arns["machine"]
        self.arn = f"{arns['execution_prefix']}:{self.name}"
        self.events: list[PlannedEvent] = []
        self.names: list[str] = []
        self.running_at = 0.0
        self.failed = False

    def after(self, at: float, low: float, high: float) -> float:
        """A moment a random delay after `at`, to the millisecond."""
        return round(at + self.rng.uniform(low, high), 3)

    def token(self) -> str:
        return "AAAAKg" + "".join(self.rng.choices(TOKEN_ALPHABET, k=40))

    def add(self, key: str, at: float, detail_type: str, detail: dict, **extra: Any) -> None:
        offset = round(self.start + at, 3)
        self.events.append(
            PlannedEvent(
                job=self.index,
                seq=len(self.events),
                key=key,
                offset=offset,
                time=self.base + timedelta(seconds=offset),
                source=extra.pop("source", SOURCE),
                detail_type=detail_type,
                detail=detail,
                **extra,
            )
        )

    def put_by_machine(self, key: str, at: float, detail_type: str, state: str, **fields) -> None:
        """An event the state machine puts itself (`events:putEvents.waitForTaskToken`)."""
        detail = {**fields, "execution": self.arn, "stateName": state, "TaskToken": self.token()}
        self.add(key, at, detail_type, detail, resources=(self.machine_arn, self.arn))

    def status(self, at: float, status: str, *, error: tuple[str, str] | None = None) -> None:
        detail = {
            "executionArn": self.arn,
            "stateMachineArn": self.machine_arn,
            "name": self.name,
            "status": status,
            "startDate": self._ms(self.running_at),
            "stopDate": None if status == "RUNNING" else self._ms(at),
            "input": "{}",
            "inputDetails": {"included": True},
            "output": '{"ok": true}' if status == "SUCCEEDED" else None,
            "outputDetails": {"included": True},
        }
        if error:
            detail["error"], detail["cause"] = error
        terminal = status != "RUNNING"
        self.add(
            f"status/{status}",
            at,
            STATUS_DETAIL_TYPE,
            detail,
            source=STATUS_SOURCE,
            resources=(self.arn,),
            terminal=terminal,
        )

    def fail(self, at: float, state: str) -> float:
        error, cause = self.rng.choice(FAILURES)
        stop = self.after(at, 3.0, 10.0)
        self.status(stop, "FAILED", error=(error, cause.format(state=state)))
        self.failed = True
        return stop

    def _ms(self, at: float) -> int:
        return int((self.base.timestamp() + self.start + at) * 1000)


def _simulate(job: _JobBuilder, fail_rate: float) -> float:
    """Run one job's workflow; returns the offset (from the job's start) of its last status."""
    rng = job.rng
    names = rng.sample(NAMES, rng.randint(0, MAX_NAMES))
    failing = rng.randrange(len(names) + 2) if rng.random() < fail_rate else None
    job.add("start", 0.0, "start", {})
    job.running_at = job.after(0.0, 0.3, 1.5)
    job.status(job.running_at, "RUNNING")
    at = job.after(job.running_at, 0.1, 1.0)
    job.put_by_machine("getUsers", at, "getUsers", "GetMultiple")
    if failing == 0:
        return job.fail(at, "GetMultiple")
    answered = job.after(at, *LAMBDA_WORK["getMultipleFn"])
    job.add(
        "getUsers/done", answered, "done", {"names": names}, fn="getMultipleFn", trigger="getUsers"
    )
    job.names = names
    at = _process_names(job, names, ready=answered, failing=failing)
    if job.failed:
        return at
    job.put_by_machine("generateReport", at, "generateReport", "PostProcessAll", names=names)
    if failing == len(names) + 1:
        return job.fail(at, "PostProcessAll")
    done = job.after(at, *LAMBDA_WORK["postProcessAllFn"])
    total = rng.randint(len(names), 9 * len(names) + 1)
    job.add(
        "generateReport/done",
        done,
        "done",
        {"totalCookiesConsumed": total, "names": names},
        fn="postProcessAllFn",
        trigger="generateReport",
    )
    stop = job.after(done, 0.3, 1.5)
    job.status(stop, "SUCCEEDED")
    return stop


def _process_names(
    job: _JobBuilder, names: list[str], *, ready: float, failing: int | None
) -> float:
    """The ProcessMultiple Map, at most `MAP_CONCURRENCY` names at a time.

    Returns when the state machine moves on, or the FAILED time when a name's task fails
    (names already started still finish their Lambda work, as real Lambdas would).
    """
    slots = [job.after(ready, 0.3, 1.5) for _ in range(MAP_CONCURRENCY)]
    heapq.heapify(slots)
    stop = None
    for index, name in enumerate(names, start=1):
        begin = heapq.heappop(slots)
        if stop is not None and begin >= stop:
            break
        key = f"getUserProfile/{index}"
        job.put_by_machine(key, begin, "getUserProfile", "ProcessMultiple", name=name)
        if index == failing:
            stop = job.fail(begin, "ProcessMultiple")
            heapq.heappush(slots, stop)
            continue
        heapq.heappush(slots, _process_one(job, key, name, begin))
    return stop if stop is not None else job.after(max(slots), 0.0, 0.5)


def _process_one(job: _JobBuilder, key: str, name: str, begin: float) -> float:
    """One name's Lambda chain; returns when the state machine has its answer."""
    profile = {"profile": f"https://bucket.example/{job.name}/basic-{name}.json", "name": name}
    cookies = job.after(begin, *LAMBDA_WORK["processSingleFn"])
    job.add(f"{key}/cookies", cookies, "getUserCookies", profile, fn="processSingleFn", trigger=key)
    processed = {"processed": name, **profile}
    done = job.after(cookies, *LAMBDA_WORK["postProcessSingleFn"])
    job.add(
        f"{key}/done", done, "done", processed, fn="postProcessSingleFn", trigger=f"{key}/cookies"
    )
    side = job.after(cookies, *LAMBDA_WORK["sideEffectFn"])
    job.add(
        f"{key}/async", side, "async.done", processed, fn="sideEffectFn", trigger=f"{key}/cookies"
    )
    return job.after(done, 0.3, 1.5)


def plan_job(
    index: int,
    *,
    seed: int,
    fail_rate: float,
    account: str = DEFAULT_ACCOUNT,
    region: str = "us-east-1",
    start: datetime,
    offset: float = 0.0,
) -> JobPlan:
    """Job number `index` of a seeded plan, starting `offset` seconds after `start`.

    Its content depends only on (`seed`, `index`), never on the other jobs.
    """
    prefix = f"arn:aws:states:{region}:{account}"
    arns = {
        "machine": f"{prefix}:stateMachine:{STATE_MACHINE}",
        "execution_prefix": f"{prefix}:execution:{STATE_MACHINE}",
    }
    job = _JobBuilder(index, seed=seed, start=offset, base=start, arns=arns)
    end = _simulate(job, fail_rate)
    events = tuple(sorted(job.events, key=lambda event: event.sort_key))
    return JobPlan(
        index=index,
        name=job.name,
        execution_arn=job.arn,
        names=tuple(job.names),
        start=offset,
        end=round(offset + end, 3),
        failed=job.failed,
        events=events,
    )


def iter_jobs(
    *,
    seed: int,
    fail_rate: float,
    start: datetime,
    jobs: int | None = None,
    concurrency: int = 1,
    account: str = DEFAULT_ACCOUNT,
    region: str = "us-east-1",
) -> Iterator[JobPlan]:
    """Jobs in order of their start (`jobs=None`: without end), at most `concurrency` at once.

    A job starts a short random gap after a running one ends (its terminal status event).
    """
    gaps = random.Random(f"{seed}/schedule")
    slots = [0.0] * max(1, concurrency)
    last_start, index = 0.0, 0
    while jobs is None or index < jobs:
        gap = gaps.uniform(0.5, 3.0) if index else 0.0  # the first job starts at once
        last_start = round(max(heapq.heappop(slots), last_start) + gap, 3)
        plan = plan_job(
            index,
            seed=seed,
            fail_rate=fail_rate,
            account=account,
            region=region,
            start=start,
            offset=last_start,
        )
        heapq.heappush(slots, plan.end)
        yield plan
        index += 1


def plan_jobs(
    *,
    jobs: int,
    seed: int,
    fail_rate: float,
    account: str = DEFAULT_ACCOUNT,
    region: str = "us-east-1",
    start: datetime,
    concurrency: int = 1,
) -> list[PlannedEvent]:
    """Every event of `jobs` jobs, in the order they are sent (time, then job, then sequence)."""
    plans = iter_jobs(
        seed=seed,
        fail_rate=fail_rate,
        start=start,
        jobs=jobs,
        concurrency=concurrency,
        account=account,
        region=region,
    )
    return list(events_in_order(plans))


def events_in_order(plans: Iterator[JobPlan]) -> Iterator[PlannedEvent]:
    """Merge jobs (given in order of start) into one time-ordered stream, pulling them lazily."""
    heap: list[tuple[tuple[float, int, int], PlannedEvent]] = []
    upcoming = next(plans, None)
    while heap or upcoming:
        while upcoming and (not heap or upcoming.start <= heap[0][0][0]):
            for event in upcoming.events:
                heapq.heappush(heap, (event.sort_key, event))
            upcoming = next(plans, None)
        yield heapq.heappop(heap)[1]

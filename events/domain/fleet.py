"""Fleet health over job summaries (pure; DESIGN section 9 "Fleet").

- `duration_ms`: stopped - started; now - started while the job has no terminal status; None when
  the start is unknown (a job without a status event).
- Percentiles are nearest-rank: the smallest value with at least q of the values at or below it,
  so every percentile is a duration some job really had.
- A job is stuck when a rule in `STUCK_RULES` gives a reason. The one rule here: it has no
  terminal status and has run longer than `factor` times the p99 of its state machine's
  succeeded jobs (judged only with at least MIN_SAMPLES of them). The other rule of DESIGN
  section 9 (a pending trigger waited longer than `factor` times the p99 of its lane's spans)
  needs the timeline's pending spans; it joins `STUCK_RULES` as another `Rule` once they exist.
- `metrics`: per bucket (aligned to the epoch, so the same bucket always has the same bounds)
  the jobs started in it, and the jobs finished in it: succeeded, failed, the failure rate
  (failed of finished), their p50/p95/p99 durations (p99: what the stuck rule judges by) and
  the failures by error. `auto_bucket` picks a size when the caller names none.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from events.domain.correlation import TERMINAL_STATUSES
from events.domain.summary import JobSummary

MIN_SAMPLES = 5  # succeeded jobs a state machine needs before its p99 judges anything
FAILED_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
MAX_BUCKETS = 500
MAX_BUCKET = timedelta(days=366)
BUCKET = re.compile(r"[1-9][0-9]{0,5}[mhd]", re.ASCII)
UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
AUTO_BUCKETS = ("1m", "5m", "15m", "30m", "1h", "3h", "6h", "12h", "1d", "7d", "30d", "366d")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Health:
    """What the job list adds to a summary: its duration and whether it is stuck."""

    duration_ms: int | None
    stuck: bool
    stuck_reason: str | None = None


@dataclass(frozen=True)
class Baseline:
    """What a state machine's recent history says is normal."""

    p99_ms: int | None  # None: fewer than MIN_SAMPLES succeeded jobs
    samples: int


Rule = Callable[[JobSummary, int | None, Baseline, float], str | None]


def duration_ms(job: JobSummary, now: datetime) -> int | None:
    if job.started_at is None:
        return None
    if job.stopped_at is not None:
        end = job.stopped_at
    elif job.status in TERMINAL_STATUSES:
        return None  # finished, but its stop time was never seen
    else:
        end = now
    return max(0, (end - job.started_at) // timedelta(milliseconds=1))


def duration_within(value: int | None, low: int | None, high: int | None) -> bool:
    """Whether a duration is in [low, high]; an unknown one never is when either bound is set."""
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def percentile(values: Sequence[int], q: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def baseline(succeeded: Iterable[JobSummary]) -> Baseline:
    durations = [d for job in succeeded if (d := _finished_ms(job)) is not None]
    p99 = percentile(durations, 0.99) if len(durations) >= MIN_SAMPLES else None
    return Baseline(p99_ms=p99, samples=len(durations))


def ran_too_long(job: JobSummary, ran: int | None, normal: Baseline, factor: float) -> str | None:
    if job.status in TERMINAL_STATUSES or ran is None or not normal.p99_ms:
        return None
    if ran <= factor * normal.p99_ms:
        return None
    ratio = f"{ran / normal.p99_ms:.1f}".removesuffix(".0")
    return f"running {human_ms(ran)}, {ratio}x the p99 of {human_ms(normal.p99_ms)}"


STUCK_RULES: tuple[Rule, ...] = (ran_too_long,)


def health(job: JobSummary, *, normal: Baseline, factor: float, now: datetime) -> Health:
    ran = duration_ms(job, now)
    reasons = [reason for rule in STUCK_RULES if (reason := rule(job, ran, normal, factor))]
    return Health(duration_ms=ran, stuck=bool(reasons), stuck_reason="; ".join(reasons) or None)


def human_ms(value: int) -> str:
    if value < 1000:
        return f"{value} ms"
    if value < 60_000:
        return f"{value / 1000:.3g} s"
    if value < 3_600_000:
        return f"{round(value / 60_000)} min"
    return f"{value / 3_600_000:.1f} h".replace(".0 h", " h")


# ---- metrics -----------------------------------------------------------------------------------


def parse_bucket(text: str) -> timedelta:
    """`15m`, `1h`, `1d`: ValueError for anything else, or a bucket over MAX_BUCKET."""
    if not BUCKET.fullmatch(text):
        raise ValueError("must be a whole number of minutes, hours or days, e.g. 15m, 1h, 1d")
    size = int(text[:-1]) * UNITS[text[-1]]
    if size > MAX_BUCKET:
        raise ValueError(f"must be at most {MAX_BUCKET.days}d")
    return size


def auto_bucket(since: datetime, until: datetime) -> tuple[str, timedelta]:
    """The smallest of AUTO_BUCKETS that gives at most MAX_BUCKETS buckets over [since, until)
    (as Grafana picks an interval from its maximum data points); the largest when none fits."""
    for text in AUTO_BUCKETS:
        size = parse_bucket(text)
        first = since - (since - EPOCH) % size
        if (until - first) / size <= MAX_BUCKETS:
            return text, size
    return AUTO_BUCKETS[-1], parse_bucket(AUTO_BUCKETS[-1])


def bucket_starts(since: datetime, until: datetime, size: timedelta) -> list[datetime]:
    """The starts of the epoch-aligned buckets that [since, until) touches; ValueError when
    there are none (until <= since), more than MAX_BUCKETS, or they leave the calendar."""
    if until <= since:
        raise ValueError("until must be after since")
    try:
        first = since - (since - EPOCH) % size
        count = math.ceil((until - first) / size)
        if count > MAX_BUCKETS:
            raise ValueError(f"gives {count} buckets, at most {MAX_BUCKETS}: use a larger bucket")
        first + count * size  # noqa: B018  (the last bucket's end must be a date too)
    except OverflowError:
        raise ValueError("the buckets fall outside the calendar") from None
    return [first + n * size for n in range(count)]


def metrics(jobs: Iterable[JobSummary], *, starts: list[datetime], size: timedelta) -> dict:
    """Per bucket: started, succeeded, failed, p50_ms/p95_ms of the jobs finished in it and its
    failures by error; then the same over the whole range."""
    rows = [_Bucket() for _ in starts]
    total = _Bucket()
    low, high = starts[0], starts[-1] + size
    for job in jobs:
        if job.started_at and low <= job.started_at < high:
            rows[(job.started_at - low) // size].started += 1
            total.started += 1
        if job.stopped_at and low <= job.stopped_at < high:
            rows[(job.stopped_at - low) // size].finish(job)
            total.finish(job)
    buckets = [
        {"start": start, "end": start + size, **row.answer()}
        for start, row in zip(starts, rows, strict=True)
    ]
    return {"buckets": buckets, "total": total.answer()}


class _Bucket:
    def __init__(self) -> None:
        self.started = self.succeeded = self.failed = 0
        self.durations: list[int] = []
        self.errors: Counter[str | None] = Counter()

    def finish(self, job: JobSummary) -> None:
        if job.status == "SUCCEEDED":
            self.succeeded += 1
        elif job.status in FAILED_STATUSES:
            self.failed += 1
            self.errors[job.error] += 1
        if (ran := _finished_ms(job)) is not None:
            self.durations.append(ran)

    def failure_rate(self) -> float | None:
        """Failed of the jobs finished (succeeded or failed), 0..1; None when none finished."""
        finished = self.succeeded + self.failed
        return round(self.failed / finished, 4) if finished else None

    def answer(self) -> dict:
        errors = sorted(self.errors.items(), key=lambda item: (-item[1], item[0] or ""))
        return {
            "started": self.started,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "p50_ms": percentile(self.durations, 0.50),
            "p95_ms": percentile(self.durations, 0.95),
            "p99_ms": percentile(self.durations, 0.99),
            "failure_rate": self.failure_rate(),
            "errors": [{"error": error, "count": count} for error, count in errors],
        }


def _finished_ms(job: JobSummary) -> int | None:
    if job.started_at is None or job.stopped_at is None:
        return None
    return max(0, (job.stopped_at - job.started_at) // timedelta(milliseconds=1))

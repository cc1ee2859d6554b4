"""What every bench module reports: a figure, the limit it was measured against, their ratio.

Each figure of `make bench` is compared with a limit measured on the same machine in the same
run (a bare drain of the queue, a minimal `websockets` broadcaster, an index-only query of the
same rows, ...).  An entry keeps both, so bench/results/latest.json says what bounds each one:

    {"value": 31000.0, "unit": "frames/s",
     "limit": {"name": "websockets_broadcaster", "value": 52000.0, "unit": "frames/s",
               "how": "a minimal websockets broadcaster, same clients and frames",
               "kind": "measured"},
     "ratio": 0.6, "target": 0.5, "target_on": "ratio", "higher_is_better": true}

A few limits are not measured but fixed: the machine's core count, one core for a one-process
server, an exact answer's 1.0.  Their `kind` is "constant" (made by `constant()`), every other
one's "measured", so a reader never takes a ratio to a constant for one to a run's own ceiling.

`target_on` says whether the target applies to the ratio or to the value itself (a latency
under 250 ms, say); `higher_is_better` is about whichever one the target applies to.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

CPUS = len(os.sched_getaffinity(0))


def percentile(values: list[float], pct: float) -> float:
    """Exact nearest-rank percentile: the smallest value with at least pct% of values <= it."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


MEASURED, CONSTANT = "measured", "constant"


def limit(name: str, value: float, unit: str, how: str, kind: str = MEASURED) -> dict[str, Any]:
    """A limit measured in the same run (or, with kind=CONSTANT, a fixed one: see constant())."""
    if kind not in (MEASURED, CONSTANT):
        raise ValueError(f"a limit's kind is {MEASURED!r} or {CONSTANT!r}, not {kind!r}")
    return {"name": name, "value": _round(value), "unit": unit, "how": how, "kind": kind}


def constant(name: str, value: float, unit: str, how: str) -> dict[str, Any]:
    """A limit that no run measured (the machine's cores, one core, an exact 1.0): labelled so
    in latest.json and docs/PERFORMANCE.md, since its ratio is no ratio to a measured ceiling."""
    return limit(name, value, unit, how, kind=CONSTANT)


def figure(
    value: float, unit: str, *, limit: dict[str, Any], target: float | None = None,
    target_on: str = "ratio", higher_is_better: bool = True, ratio: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A figure against its limit; the ratio is value / limit unless given (a growth, say)."""
    if ratio is None:
        ratio = value / limit["value"] if limit["value"] else float("nan")
    return {
        "value": _round(value), "unit": unit, "limit": limit, "ratio": _round(ratio),
        "target": target, "target_on": target_on, "higher_is_better": higher_is_better,
    }  # fmt: skip


def met(entry: dict[str, Any]) -> bool | None:
    target = entry.get("target")
    value = entry.get("ratio") if entry.get("target_on", "ratio") == "ratio" else entry["value"]
    if target is None or value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value >= target if entry.get("higher_is_better") else value <= target


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far, from /proc/stat: every process on it,
    the one measured, its clients, its servers and anything else, counted alike."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def machine_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How many of the machine's cores were busy, on average, between two machine_cpu()."""
    return (after[0] - before[0]) / max(1, after[1] - before[1]) * CPUS


def _round(value: float) -> float:
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.4g}") if abs(value) < 1e4 else round(value, 1)
    return value

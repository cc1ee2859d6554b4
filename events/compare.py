"""Two jobs side by side, step by step (DESIGN section 9, "Job view"). Pure.

A step is a span of the timeline. Steps are matched by lane and order: the nth span of a lane in
job A (by start) with the nth span of that lane in job B. The lane is the span's fn, or
`awaiting <detail-type>` for a pending span. Each matched step gives both durations in ms and
`diff_ms` (B minus A; null when either is pending), and `fields`: the detail fields whose values
differ between the two steps' end events (their triggers for pending steps), as dot-separated
paths into nested objects (lists are compared whole), a value null when the field is absent.
Fields that differ between any two runs are left out: the execution, the task token, the
trigger's envelope id, the producer's clock and the job's own name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from .envelope import NormalisedEvent
from .timeline import job_timeline

VOLATILE = frozenset(
    {
        "execution", "executionArn", "executionContext", "TaskToken", "meta.incoming.id",
        "meta.emittedAt", "meta.job", "meta.replayOf",
    }
)  # fmt: skip
VOLATILE_KEYS = frozenset({"TaskToken", "emittedAt"})  # wherever they are nested
ABSENT = object()


def _lane(span: dict[str, Any]) -> str:
    return span["fn"] if span["fn"] is not None else span["lane"]


def _lanes(spans: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    lanes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in sorted(spans, key=lambda span: span["start"]):  # stable: timeline order on ties
        lanes[_lane(span)].append(span)
    return lanes


def _side(span: dict[str, Any]) -> dict[str, Any]:
    keys = ("start", "end", "duration_ms", "skew_ms", "status", "start_event", "end_event")
    return {key: span[key] for key in keys}


def _volatile(path: str) -> bool:
    parts = path.split(".")
    prefixes = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
    return bool(prefixes & VOLATILE) or parts[-1] in VOLATILE_KEYS


def flatten(detail: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dot path, value) of every leaf of nested objects; lists and scalars are leaves."""
    if isinstance(detail, dict) and (detail or not prefix):
        for key, value in detail.items():
            yield from flatten(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, detail


def field_changes(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """The detail fields that differ (volatile ones left out), by path."""
    fields_a, fields_b = dict(flatten(a)), dict(flatten(b))
    changes = []
    for path in sorted(fields_a.keys() | fields_b.keys()):
        value_a, value_b = fields_a.get(path, ABSENT), fields_b.get(path, ABSENT)
        if value_a != value_b and not _volatile(path):
            changes.append(
                {
                    "path": path,
                    "a": None if value_a is ABSENT else value_a,
                    "b": None if value_b is ABSENT else value_b,
                }
            )
    return changes


def _detail(span: dict[str, Any], events: dict[str, NormalisedEvent]) -> dict[str, Any]:
    event = events.get(span["end_event"] or span["start_event"] or "")
    return event.detail if event else {}


def _step(lane: str, n: int, a: dict, b: dict, events: tuple[dict, dict]) -> dict:
    ms_a, ms_b = a["duration_ms"], b["duration_ms"]
    return {
        "lane": lane,
        "n": n,
        "a": _side(a),
        "b": _side(b),
        "diff_ms": ms_b - ms_a if ms_a is not None and ms_b is not None else None,
        "fields": field_changes(_detail(a, events[0]), _detail(b, events[1])),
    }


def compare_jobs(a: Sequence[NormalisedEvent], b: Sequence[NormalisedEvent]) -> dict[str, Any]:
    """`steps` matched in both jobs, `only_a` and `only_b`: the steps one side lacks."""
    events = ({event.id: event for event in a}, {event.id: event for event in b})
    lanes_a, lanes_b = _lanes(job_timeline(a)["spans"]), _lanes(job_timeline(b)["spans"])
    steps, only_a, only_b = [], [], []
    for lane in [*lanes_a, *(lane for lane in lanes_b if lane not in lanes_a)]:
        spans_a, spans_b = lanes_a.get(lane, []), lanes_b.get(lane, [])
        for n in range(max(len(spans_a), len(spans_b))):
            if n < len(spans_a) and n < len(spans_b):
                steps.append(_step(lane, n, spans_a[n], spans_b[n], events))
            elif n < len(spans_a):
                only_a.append({"lane": lane, "n": n, **_side(spans_a[n])})
            else:
                only_b.append({"lane": lane, "n": n, **_side(spans_b[n])})
    return {"steps": steps, "only_a": only_a, "only_b": only_b}

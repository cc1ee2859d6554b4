"""Two jobs side by side, step by step (DESIGN section 9, "Job view"; issue 25). Pure.

A step is a span of the timeline. Its lane is its state (events.domain.lanes; null when unknown) and
its work: the span's fn, or `awaiting <detail-type>` for a pending span (`lane` in the answer). In a
lane where each job has at most one step, the two pair. Repeated steps (Map iterations) pair by
their item, not by position: the detail of the event the state machine put to start the step's
chain (the user name of the demo's `getUserProfile`), volatile fields, `stateName` and `meta` left
out; the nth occurrence of an item in A with its nth in B; an item only one side has is a step
only that side has. `n` is the step's rank in its lane in A (`n_b` in B).

Each matched step gives both durations in ms and `diff_ms` (B minus A). A duration that cannot be
compared is never subtracted nor summed: a pending span (no answer) or one whose ends come from
clocks that disagree (`skew_ms`, "clock skew N ms"); then `diff_ms` is null and `why` says so.
`totals` sums the comparable matched steps of each side and lists what it left out and why.
`fields`: the detail fields whose values differ between the two steps' end events (their
triggers for pending steps), as dot-separated paths into nested objects (lists are compared
whole), a value null when the field is absent. Fields that differ between any two runs are left
out: the execution, the task token, the trigger's envelope id, the producer's clock and the job's
own name.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from events.domain.causality import FAILURES
from events.domain.envelope import NormalisedEvent
from events.domain.lanes import work_name
from events.domain.summary import JobSummary
from events.domain.timeline import job_timeline

VOLATILE = frozenset(
    {
        "execution", "executionArn", "executionContext", "TaskToken", "meta.incoming.id",
        "meta.emittedAt", "meta.job", "meta.replayOf",
    }
)  # fmt: skip
VOLATILE_KEYS = frozenset({"TaskToken", "emittedAt"})  # wherever they are nested
ABSENT = object()


def _lane(span: dict[str, Any]) -> tuple[str | None, str]:
    """A step's place: its state (None when unknown) and its work (fn, or `awaiting ...`)."""
    return span.get("state"), work_name(span)


def _lanes(spans: list[dict[str, Any]]) -> dict[tuple[str | None, str], list[dict[str, Any]]]:
    lanes: dict[tuple[str | None, str], list[dict[str, Any]]] = defaultdict(list)
    for span in sorted(spans, key=lambda span: span["start"]):  # stable: timeline order on ties
        lanes[_lane(span)].append(span)
    return lanes


def skew_of(span: dict[str, Any]) -> int | None:
    """The span's clock skew in ms when its two ends come from clocks that disagree."""
    skew = span.get("skew_ms")
    return skew if isinstance(skew, int) and skew > 0 else None


def why_not(span: dict[str, Any]) -> str | None:
    """Why a span's duration cannot be compared or summed, or None when it can."""
    if skew_of(span) is not None:
        return f"clock skew {skew_of(span)} ms"
    if span["duration_ms"] is None:
        return "no answer" if span["status"] == "pending" else "no duration"
    return None


def comparable_ms(span: dict[str, Any]) -> int | None:
    return None if why_not(span) else span["duration_ms"]


def _side(span: dict[str, Any]) -> dict[str, Any]:
    keys = ("start", "end", "duration_ms", "status", "start_event", "end_event")
    return {**{key: span[key] for key in keys}, "skew_ms": skew_of(span), "why": why_not(span)}


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


class _Items:
    """The item a span works on: the detail of the event the state machine put to start its
    chain (a Map iteration's `getUserProfile` with its user name), volatile fields and the state
    name left out. Repeated steps are paired by it."""

    def __init__(self, spans: list[dict[str, Any]], events: dict[str, NormalisedEvent]) -> None:
        self.events = events
        self.trigger_of = {s["end_event"]: s["start_event"] for s in spans if s["end_event"]}

    def root(self, span: dict[str, Any]) -> NormalisedEvent | None:
        event_id, seen = span["start_event"], set()
        while event_id in self.trigger_of and event_id not in seen:
            seen.add(event_id)
            event_id = self.trigger_of[event_id]
        return self.events.get(event_id or "")

    def of(self, span: dict[str, Any]) -> str | None:
        event = self.root(span)
        if event is None:
            return None
        fields = [
            f"{path}={value if isinstance(value, str) else json.dumps(value, sort_keys=True)}"
            for path, value in flatten(event.detail)
            if path and not _volatile(path) and path != "stateName" and not path.startswith("meta")
        ]
        return ", ".join(sorted(fields)) or None


def _keyed(spans: list[dict[str, Any]], items: _Items, by_item: bool) -> dict[tuple, int]:
    """{pairing key: index in `spans`}: (item, its nth occurrence), or (None, n) by position."""
    keys: dict[tuple, int] = {}
    counts: dict[str | None, int] = defaultdict(int)
    for i, span in enumerate(spans):
        item = items.of(span) if by_item else None
        keys[(item, counts[item])] = i
        counts[item] += 1
    return keys


def _step(lane: tuple[str | None, str], pair: tuple[dict, dict], ns: tuple[int, int],
          item: str | None, events: tuple[dict, dict]) -> dict:  # fmt: skip
    a, b = pair
    ms_a, ms_b = comparable_ms(a), comparable_ms(b)
    whys = [f"{side}: {why}" for side, why in (("a", why_not(a)), ("b", why_not(b))) if why]
    return {
        "state": lane[0],
        "lane": lane[1],
        "colour": a.get("colour"),
        "n": ns[0],
        "n_b": ns[1],
        "item": item,
        "a": _side(a),
        "b": _side(b),
        "diff_ms": ms_b - ms_a if ms_a is not None and ms_b is not None else None,
        "why": "; ".join(whys) or None,
        "fields": field_changes(_detail(a, events[0]), _detail(b, events[1])),
    }


def _lone(lane: tuple[str | None, str], n: int, item: str | None, span: dict) -> dict:
    return {"state": lane[0], "lane": lane[1], "colour": span.get("colour"), "n": n,
            "item": item, **_side(span)}  # fmt: skip


def _totals(steps: list[dict], only_a: list[dict], only_b: list[dict]) -> dict[str, Any]:
    """The matched steps' durations summed, and what was left out of the sums and why."""
    summed = [step for step in steps if step["diff_ms"] is not None]
    left_out = [
        {"state": step["state"], "lane": step["lane"], "n": step["n"], "item": step["item"],
         "why": step["why"]}
        for step in steps if step["diff_ms"] is None
    ]  # fmt: skip
    a_ms = sum(step["a"]["duration_ms"] for step in summed)
    b_ms = sum(step["b"]["duration_ms"] for step in summed)
    return {"a_ms": a_ms, "b_ms": b_ms, "diff_ms": b_ms - a_ms, "steps": len(summed),
            "left_out": left_out, "only_a": len(only_a), "only_b": len(only_b)}  # fmt: skip


def _order(lanes_a: dict, lanes_b: dict, spans: list[dict[str, Any]]) -> list[tuple]:
    """Lanes in the timeline's order (state lanes in the state machine's order), A's first."""
    place = {_lane(s): (s.get("fn_lane", 0), s.get("sub_lane", 0)) for s in reversed(spans)}
    names = [*lanes_a, *(lane for lane in lanes_b if lane not in lanes_a)]
    return sorted(names, key=lambda lane: place.get(lane, (10**9, 0)))


def compare_jobs(
    a: Sequence[NormalisedEvent], b: Sequence[NormalisedEvent], state_order: Sequence[str] = ()
) -> dict[str, Any]:
    """`steps` matched in both jobs, `only_a` and `only_b`: the steps one side lacks; `totals`."""
    return compare_spans(
        job_timeline(a, state_order=state_order)["spans"],
        job_timeline(b, state_order=state_order)["spans"],
        ({event.id: event for event in a}, {event.id: event for event in b}),
    )


def compare_spans(
    spans_a: list[dict[str, Any]],
    spans_b: list[dict[str, Any]],
    events: tuple[dict[str, NormalisedEvent], dict[str, NormalisedEvent]],
) -> dict[str, Any]:
    """compare_jobs over two timelines' spans and each job's events by id (see the docstring).

    A lane's steps pair by position when each side has at most one; repeated ones (Map
    iterations) pair by their item, the nth occurrence of an item with its nth on the other side.
    """
    items = (_Items(spans_a, events[0]), _Items(spans_b, events[1]))
    lanes_a, lanes_b = _lanes(spans_a), _lanes(spans_b)
    steps, only_a, only_b = [], [], []
    for lane in _order(lanes_a, lanes_b, [*spans_a, *spans_b]):
        side_a, side_b = lanes_a.get(lane, []), lanes_b.get(lane, [])
        by_item = max(len(side_a), len(side_b)) > 1
        keys_a, keys_b = _keyed(side_a, items[0], by_item), _keyed(side_b, items[1], by_item)
        for key, i in keys_a.items():
            if key in keys_b:
                j = keys_b[key]
                steps.append(_step(lane, (side_a[i], side_b[j]), (i, j), key[0], events))
            else:
                only_a.append(_lone(lane, i, key[0], side_a[i]))
        only_b += [_lone(lane, j, k[0], side_b[j]) for k, j in keys_b.items() if k not in keys_a]
    totals = _totals(steps, only_a, only_b)
    return {"steps": steps, "only_a": only_a, "only_b": only_b, "totals": totals}


def _outcome(status: str | None) -> str:
    if status == "SUCCEEDED":
        return "succeeded"
    return "failed" if status in FAILURES else "unfinished"


def partner(job: JobSummary, jobs: Sequence[JobSummary]) -> JobSummary | None:
    """What to compare `job` with by default, among `jobs` (newest first, of its state machine):
    the newest other job with the other outcome (a success for a failure, a failure for a
    success; a success for a job still running), else the newest other job."""
    wanted = "failed" if _outcome(job.status) == "succeeded" else "succeeded"
    others = [other for other in jobs if other.id != job.id]
    matching = [other for other in others if _outcome(other.status) == wanted]
    return (matching or others or [None])[0]

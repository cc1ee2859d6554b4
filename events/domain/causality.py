"""What a job is still waiting for, how each span ended, and its critical path (DESIGN section 9).

Pure, over one job's events and its paired spans (events.domain.timeline builds the answer from
these).

**Pending.** An event awaits an answer when it is not a Step Functions status event, no span
starts at it, and either (a) its source and detail-type are what some span of the job consumes
(`meta.incoming` of a span's end event), or (b) the state machine put it itself (no `meta.fn`)
with a `TaskToken`: the state machine waits for its callback, even when no span of this job shows
who consumes that type (the only `generateReport` of a job that failed waiting for it). Each such
event is a pending span: no fn, no end, lane `awaiting <detail-type>`.

**Status.** `pending` for those; `failed` for a span that was running when the execution stopped
as FAILED, TIMED_OUT or ABORTED: it started at or before the stop and ended at or after it (work
that ended at the failure's very instant is taken as the work the failure interrupted, since
clocks of whole seconds cannot tell them apart); `ok` otherwise.

**Critical path.** Each span has at most one cause, the span it follows:
1. the span whose end event is its trigger (the trigger was emitted by that work);
2. when its trigger was put by the state machine itself, the span whose answer last went back to
   the state machine (an end event no span consumes) at or before the trigger: the callback that
   released the state machine to put it.
Spans with no trigger (open) or another trigger start a chain. The job ends when its execution
stopped or, while it runs (or without status events), at its last event; a pending span "ends"
there too. A chain's length is the time from its first span's start to its last span's end; only
chains that end by the job's end count (work that ended later, such as an asynchronous side
effect still running after the execution stopped, did not hold the job up), unless none does.
The critical path is the longest chain; ties go to the chain of more spans, then to the one whose
last span comes first in `spans`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from events.domain.clock import ENVELOPE
from events.domain.envelope import NormalisedEvent, iso

STEP_FUNCTIONS = "aws.states"
FAILURES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
OK, FAILED, PENDING = "ok", "failed", "pending"


class PairedSpan(Protocol):
    """What `pending_rows` reads of a span (events.domain.timeline.Span has it). A protocol rather
    than an import of Span: timeline imports this module, and the layers allow no cycle."""

    @property
    def start_event(self) -> NormalisedEvent | None: ...

    @property
    def end_event(self) -> NormalisedEvent: ...


@dataclass(frozen=True)
class Link:
    """What the critical path needs of a span: its times and the events at its two ends."""

    start: datetime
    end: datetime | None  # None for a pending span
    trigger: NormalisedEvent | None
    end_event: NormalisedEvent | None


def _type(event: NormalisedEvent) -> tuple[str, str]:
    return event.source, event.detail_type


def _has_token(event: NormalisedEvent) -> bool:
    token = event.detail.get("TaskToken")
    return isinstance(token, str) and bool(token)


def _put_by_state_machine(event: NormalisedEvent) -> bool:
    return event.fn is None and event.source != STEP_FUNCTIONS


def awaited_triggers(
    events: Sequence[NormalisedEvent], answered: set[str], consumed: set[tuple[str, str]]
) -> list[NormalisedEvent]:
    """The events (in the given order) that wait for an answer no span gave.

    `answered`: ids of the events spans started at; `consumed`: (source, detail-type) pairs some
    span of the job consumes.
    """
    return [
        event
        for event in events
        if event.source != STEP_FUNCTIONS
        and event.id not in answered
        and (_type(event) in consumed or (_put_by_state_machine(event) and _has_token(event)))
    ]


def step_of(event: NormalisedEvent | None) -> str | None:
    name = event.detail.get("stateName") if event else None
    return name if isinstance(name, str) and name else None


def pending_dict(trigger: NormalisedEvent, fn_lane: int, sub_lane: int) -> dict[str, Any]:
    """A trigger nobody answered: no fn, no end, in the lane of what it awaits."""
    return {
        "fn": None,
        "start": iso(trigger.at),
        "end": None,
        "start_event": trigger.id,
        "end_event": None,
        "incoming": {"source": trigger.source, "detailType": trigger.detail_type},
        "outgoing": None,
        "open": False,
        "lane": f"awaiting {trigger.detail_type}",
        "fn_lane": fn_lane,
        "sub_lane": sub_lane,
        "step": step_of(trigger),
        "duration_ms": None,
        "skew_ms": None,
        "approx": trigger.at_source == ENVELOPE,
        "paired_by": None,
        "status": PENDING,
    }


def pending_rows(
    events: list[NormalisedEvent], spans: Sequence[PairedSpan], first_lane: int
) -> list[tuple[dict[str, Any], Link]]:
    """The pending spans, by trigger time, one group of rows per awaited detail-type."""
    answered = {span.start_event.id for span in spans if span.start_event}
    consumed = {
        (event.incoming["source"], event.incoming["detailType"])
        for event in (span.end_event for span in spans)
        if event.incoming
    }
    groups: dict[str, list[int]] = {}
    rows = []
    for trigger in awaited_triggers(events, answered, consumed):
        group = groups.setdefault(trigger.detail_type, [first_lane + len(groups), 0])
        rows.append(
            (
                pending_dict(trigger, group[0], group[1]),
                Link(start=trigger.at, end=None, trigger=trigger, end_event=None),
            )
        )
        group[1] += 1
    return rows


def span_status(start: datetime, end: datetime, failure_stop: datetime | None) -> str:
    """`failed` when the span was running when the execution failed, else `ok`."""
    if failure_stop is not None and start <= failure_stop <= end:
        return FAILED
    return OK


def _causes(links: Sequence[Link]) -> list[int | None]:
    """The index of the span each span follows (rules 1 and 2 of the docstring), or None."""
    ended_by = {link.end_event.id: i for i, link in enumerate(links) if link.end_event}
    starts = {link.trigger.id for link in links if link.trigger and link.end is not None}
    callbacks = sorted(
        (link.end, i)
        for i, link in enumerate(links)
        if link.end is not None and link.end_event and link.end_event.id not in starts
    )
    callback_ends = [end for end, _ in callbacks]
    causes: list[int | None] = []
    for i, link in enumerate(links):
        trigger, cause = link.trigger, None
        if trigger is not None and trigger.id in ended_by and ended_by[trigger.id] != i:
            cause = ended_by[trigger.id]
        elif trigger is not None and _put_by_state_machine(trigger):
            before = [j for _, j in callbacks[: bisect_right(callback_ends, trigger.at)][-2:]]
            before = [j for j in before if j != i]
            cause = before[-1] if before else None
        causes.append(cause)
    return causes


def _roots(causes: list[int | None]) -> tuple[list[int], list[int]]:
    """For each span, the first span of its chain and the chain's number of spans."""
    root: list[int | None] = [None] * len(causes)
    size = [0] * len(causes)
    for i in range(len(causes)):
        walk, at = [], i
        while at is not None and root[at] is None and at not in walk:
            walk.append(at)
            at = causes[at]
        # `at` is now a span already known, or None (a chain's start; or a cycle, which real
        # data cannot make, cut here)
        known = at is not None and root[at] is not None
        base_root, base_size = (root[at], size[at]) if known else (walk[-1], 0)
        for depth, j in enumerate(reversed(walk), start=1):
            root[j], size[j] = base_root, base_size + depth
    return [r if r is not None else i for i, r in enumerate(root)], size


def _chain(causes: list[int | None], last: int) -> list[int]:
    chain, seen, at = [], set(), last
    while at is not None and at not in seen:
        seen.add(at)
        chain.append(at)
        at = causes[at]
    return chain[::-1]


def critical_path(links: Sequence[Link], job_end: datetime | None) -> list[int]:
    """Indices into `links` of the longest cause-to-effect chain, first span first."""
    causes = _causes(links)
    roots, sizes = _roots(causes)
    ends = [link.end or job_end for link in links]
    within = [
        i for i, end in enumerate(ends) if end is not None and (job_end is None or end <= job_end)
    ]
    best: tuple[float, int, int] | None = None
    for i in within or [i for i, end in enumerate(ends) if end is not None]:
        length = (ends[i] - links[roots[i]].start).total_seconds()
        rank = (length, sizes[i], -i)
        if best is None or rank > best:
            best = rank
    return _chain(causes, -best[2]) if best else []

"""Spans of work and the execution bar of one job, from its events alone (DESIGN section 3). Pure.

A span ends at the event that carries `meta.fn` and starts at the event that triggered it, found by:
1. `meta.incoming.id` equal to an observed event's id;
2. the same `TaskToken` as an event of the incoming source and detail-type;
3. the latest earlier-or-same-time event of the incoming source and detail-type not yet used as a
   start by the same fn (a trigger timed by its delivery counts from its envelope's second on:
   see "Clocks that disagree" below).
When the end event names its trigger's id and that id was not observed, the trigger is known to be
missing, so rules 2 and 3 are not tried: the span is open rather than paired with the wrong event.
Exact rules run over the whole job before the order rule, so a guess never takes an event that an
exact match needs.

Spans also get a `status` (`ok`, `failed`, `pending`), the job's unanswered triggers become
pending spans, and the answer names its `critical_path`: the rules are in events.domain.causality.

Times are each event's `at`, its best clock (events.domain.clock): milliseconds when a producer,
Step Functions or SQS said so. A span both of whose ends only have the envelope's whole seconds is
flagged `approx`, so that it is not shown with a precision it does not have.

**Clocks that disagree.** A trigger the state machine put has no producer clock: its `at` is
when SQS got it (or the envelope's second), while its answer carries the Lambda's own clock,
which can read earlier. So rules 2 and 3 look for a trigger by the earliest instant it may have
been put (its envelope second, for a delivery clock), preferring one whose `at` is not after the
end's; and a span that would run backwards is not a negative duration: it has `skew_ms` (how
far the two clocks disagree), a `duration_ms` of None and an `end` bounded at its `start`.

**Causal order** (`in_order`): an answer is never listed before its trigger. Each event's order
time is its `at`, or just after its trigger's order time when that is later; every list of a
job's events (events.read.selectors.job_event_list: the job page, the original shapes' `sk`, the
export, the job socket's snapshot) uses it. Spans are paired over events by `at`.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from events.domain import causality, lanes
from events.domain.clock import DELIVERY, ENVELOPE
from events.domain.correlation import TERMINAL_STATUSES, Execution
from events.domain.envelope import NormalisedEvent, iso

TriggerKey = tuple[Hashable, ...]
KeyOf = Callable[[NormalisedEvent], TriggerKey | None]
INSTANT = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Span:
    """One unit of work of `fn`; `start_event` is None when its trigger was not observed."""

    fn: str
    start: datetime
    end: datetime
    start_event: NormalisedEvent | None
    end_event: NormalisedEvent
    paired_by: str | None
    approx: bool = False  # both ends known to the whole second only

    @property
    def open(self) -> bool:
        return self.start_event is None

    @property
    def skew_ms(self) -> int | None:
        """How far the two ends' clocks disagree when the span would run backwards, else None."""
        behind = _ms_between(self.end, self.start)
        return behind if behind > 0 else None

    @property
    def duration_ms(self) -> int | None:
        """End minus start in ms; None when the clocks disagree (never below zero)."""
        return None if self.skew_ms else _ms_between(self.start, self.end)

    @property
    def shown_end(self) -> datetime:
        """The end a page draws: a skewed span is drawn at its start, zero wide."""
        return max(self.start, self.end)


def _ms_between(start: datetime, end: datetime) -> int:
    return round((end - start).total_seconds() * 1000)


@dataclass
class _Pairing:
    """Working state of one job's pairing: events in order, and what is paired so far."""

    events: list[NormalisedEvent]
    starts: dict[int, tuple[int, str]]
    used: set[tuple[str, int]]

    def pair(self, end: int, start: int, rule: str) -> None:
        self.starts[end] = (start, rule)
        self.used.add((self.events[end].fn or "", start))


def by_at(events: Iterable[NormalisedEvent]) -> list[NormalisedEvent]:
    """Events by `at` (their best clock), keeping the given (arrival) order among ties."""
    return sorted(events, key=lambda event: event.at)


def in_order(events: Iterable[NormalisedEvent]) -> list[NormalisedEvent]:
    """A job's events in causal order: by order time (`order_times`), then `at`, then as given."""
    ordered = by_at(events)
    times = order_times(ordered)
    return sorted(ordered, key=lambda event: times[event.id])


def triggers_of(events: Iterable[NormalisedEvent]) -> dict[str, NormalisedEvent]:
    """{answer's id: its trigger} of the spans the events pair (rules 1 to 3)."""
    return {span.end_event.id: span.start_event for span in pair_spans(events) if span.start_event}


def order_times(events: Sequence[NormalisedEvent]) -> dict[str, datetime]:
    """{event id: order time}: its `at`, or 1 ms after its trigger's order time when that is
    later (triggers as the spans pair them), so no answer sorts before what it answers."""
    trigger_of = triggers_of(events)
    times: dict[str, datetime] = {}
    for event in events:
        chain, seen, at = [], set(), event
        while at is not None and at.id not in times and at.id not in seen:
            chain.append(at)
            seen.add(at.id)
            at = trigger_of.get(at.id)
        base = times.get(at.id) if at is not None else None  # None: a chain's start, or a cycle
        for member in reversed(chain):
            base = member.at if base is None else max(member.at, base + INSTANT)
            times[member.id] = base
    return times


def _type_of(event: NormalisedEvent) -> tuple[str, str]:
    return event.source, event.detail_type


def _incoming_type(event: NormalisedEvent) -> tuple[str, str] | None:
    incoming = event.incoming
    return (incoming["source"], incoming["detailType"]) if incoming else None


def task_token(event: NormalisedEvent) -> str | None:
    """The event's `TaskToken`, by which rule 2 pairs a callback with its trigger."""
    token = event.detail.get("TaskToken")
    return token if isinstance(token, str) and token else None


def _by_id(pairing: _Pairing, ends: list[int]) -> list[int]:
    """Rule 1; returns the ends left for the other rules (those that give no trigger id)."""
    index = {event.id: i for i, event in enumerate(pairing.events)}
    left = []
    for end in ends:
        wanted = pairing.events[end].correlation.incoming_id
        if wanted is None:
            left.append(end)
        elif wanted in index and index[wanted] != end:
            pairing.pair(end, index[wanted], "id")
    return left


def _token_trigger(event: NormalisedEvent) -> TriggerKey | None:
    token = task_token(event)
    return (token, *_type_of(event)) if token else None


def _token_wanted(event: NormalisedEvent) -> TriggerKey | None:
    token, incoming = task_token(event), _incoming_type(event)
    return (token, *incoming) if token and incoming else None


def _order_trigger(event: NormalisedEvent) -> TriggerKey:
    return _type_of(event)


def _order_wanted(event: NormalisedEvent) -> TriggerKey | None:
    return _incoming_type(event)


def put_since(event: NormalisedEvent) -> datetime:
    """The earliest instant the event may have been put: a delivery clock only says when SQS
    got it, so it may have been put from the start of its envelope's second on."""
    return min(event.at, event.time) if event.at_source == DELIVERY else event.at


def _pop(stack: list[int], fn: str, end: int, pairing: _Pairing) -> int | None:
    """The latest candidate on `stack` that is not `end` itself nor already a start of `fn`,
    preferring one whose `at` is not after the end's (a candidate's clock reads later than the
    end's only when the two disagree)."""
    events, used = pairing.events, pairing.used
    while stack and (fn, stack[-1]) in used:
        stack.pop()  # a start of this fn already: never a candidate again
    latest = None
    for n in range(len(stack) - 1, -1, -1):
        if stack[n] == end or (fn, stack[n]) in used:
            continue
        if events[stack[n]].at <= events[end].at:
            return stack.pop(n)
        latest = n if latest is None else latest
    return None if latest is None else stack.pop(latest)


class _Sweep:
    """Pairs ends with the latest earlier-or-same-time event whose trigger key they want.

    One pass in time order with a LIFO stack per (fn, key): linear in events times the number of
    fns that consume one event type. Within one second, an end first looks at what arrived before
    it, then at what arrived later in that second.
    """

    def __init__(self, pairing: _Pairing, rule: str, keys: tuple[KeyOf, KeyOf]) -> None:
        self.pairing, self.rule = pairing, rule
        self.trigger_key, self.wanted_key = keys
        self.wanted: dict[int, TriggerKey | None] = {}
        self.consumers: dict[TriggerKey, set[str]] = defaultdict(set)
        self.stacks: dict[tuple[str, TriggerKey], list[int]] = defaultdict(list)

    def want(self, ends: list[int]) -> None:
        for end in ends:
            event = self.pairing.events[end]
            key = self.wanted[end] = self.wanted_key(event)
            if key is not None:
                self.consumers[key].add(event.fn or "")

    def push(self, candidate: int) -> None:
        key = self.trigger_key(self.pairing.events[candidate])
        for fn in self.consumers.get(key, ()) if key else ():
            self.stacks[(fn, key)].append(candidate)

    def resolve(self, end: int) -> bool:
        fn, key = self.pairing.events[end].fn or "", self.wanted[end]
        if key is None:
            return False
        found = _pop(self.stacks[(fn, key)], fn, end, self.pairing)
        if found is not None:
            self.pairing.pair(end, found, self.rule)
        return found is not None

    def run(self, ends: list[int]) -> list[int]:
        """Pairs what it can of `ends`; returns the ends left unpaired.

        Every event is a candidate from `put_since` on; an end looks for its trigger at its `at`.
        """
        self.want(ends)
        events, left = self.pairing.events, []
        steps = sorted(
            [(put_since(event), i, 0) for i, event in enumerate(events)]
            + [(events[i].at, i, 1) for i in self.wanted]
        )
        for _, group in groupby(steps, key=lambda step: step[0]):
            waiting = []
            for _, i, resolving in group:
                if not resolving:
                    self.push(i)
                elif not self.resolve(i):
                    waiting.append(i)
            left.extend(end for end in waiting if not self.resolve(end))
        return left


def pair_spans(events: Iterable[NormalisedEvent]) -> list[Span]:
    """The spans of one job's events (or of any group of events that share a job), by end order."""
    ordered = by_at(events)
    pairing = _Pairing(events=ordered, starts={}, used=set())
    ends = [i for i, event in enumerate(ordered) if event.fn]
    left = _by_id(pairing, ends)
    left = _Sweep(pairing, "token", (_token_trigger, _token_wanted)).run(left)
    _Sweep(pairing, "order", (_order_trigger, _order_wanted)).run(left)
    return [_span(pairing, end) for end in ends]


def _span(pairing: _Pairing, end: int) -> Span:
    end_event = pairing.events[end]
    start, rule = pairing.starts.get(end, (None, None))
    start_event = pairing.events[start] if start is not None else None
    first = pairing.events[0]  # an open span starts at the job's first event
    start_source = (start_event or first).at_source
    return Span(
        fn=end_event.fn or "",
        start=(start_event or first).at,
        end=end_event.at,
        start_event=start_event,
        end_event=end_event,
        paired_by=rule,
        approx=start_source == end_event.at_source == ENVELOPE,
    )


@dataclass(frozen=True)
class Lane:
    lane: int
    fn_lane: int
    sub_lane: int


def assign_lanes(spans: Sequence[Span]) -> list[Lane]:
    """A lane per span: one group of rows per fn (by first start), concurrent spans stacked."""
    by_fn: dict[str, list[int]] = defaultdict(list)
    for i in sorted(range(len(spans)), key=lambda i: (spans[i].start, spans[i].end, i)):
        by_fn[spans[i].fn].append(i)
    lanes: list[Lane | None] = [None] * len(spans)
    offset = 0
    for fn_lane, members in enumerate(by_fn.values()):
        subs = _stack([spans[i] for i in members])
        for i, sub in zip(members, subs, strict=True):
            lanes[i] = Lane(lane=offset + sub, fn_lane=fn_lane, sub_lane=sub)
        offset += max(subs) + 1
    return [lane for lane in lanes if lane is not None]


def _stack(spans: list[Span]) -> list[int]:
    """Sub-lanes for spans sorted by start: the lowest row free when each span starts.

    A span that ends when the next one starts leaves its row free, except a zero-length one: it is
    drawn with some width, so it is treated as lasting a millisecond.
    """
    busy: list[tuple[datetime, int]] = []
    free: list[int] = []
    rows: list[int] = []
    for span in spans:
        while busy and busy[0][0] <= span.start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        row = heapq.heappop(free) if free else len(busy)
        heapq.heappush(busy, (max(span.start + INSTANT, span.end), row))
        rows.append(row)
    return rows


def _statuses(events: Sequence[NormalisedEvent]) -> list[tuple[datetime, Execution]]:
    """(event `at`, execution) of the Step Functions status events of the latest attempt (a
    redriven execution runs again: its earlier failure is not how it ends), in order."""
    found = ((event.at, event.correlation.execution) for event in events)
    rows = [(time, execution) for time, execution in found if execution and execution.status]
    last = max((execution.attempt for _, execution in rows), default=0)
    return [(time, execution) for time, execution in rows if execution.attempt == last]


def execution_bar(events: Sequence[NormalisedEvent]) -> dict[str, Any]:
    """Start, stop, status, error and cause of the job's execution.

    From Step Functions status events when there are any: a terminal status wins over RUNNING
    whatever order they came in. Otherwise start and stop are the first and last event times.
    """
    ordered = by_at(events)
    statuses = _statuses(ordered)
    if not statuses:
        first, last = (ordered[0].at, ordered[-1].at) if ordered else (None, None)
        return {
            "start": iso(first),
            "stop": iso(last),
            "status": None,
            "error": None,
            "cause": None,
        }
    terminal = [row for row in statuses if row[1].status in TERMINAL_STATUSES]
    seen_at, chosen = terminal[-1] if terminal else statuses[-1]
    started = [execution.started_at for _, execution in statuses if execution.started_at]
    return {
        "start": iso(min(started) if started else statuses[0][0]),
        "stop": iso(chosen.stopped_at or seen_at) if terminal else None,
        "status": chosen.status,
        "error": chosen.error,
        "cause": chosen.cause,
    }


def _step(span: Span) -> str | None:
    return causality.step_of(span.end_event) or causality.step_of(span.start_event)


def execution_stop(events: Sequence[NormalisedEvent]) -> tuple[str, datetime] | None:
    """(terminal status, when) of the execution's stop, as the bar shows it; None while it runs."""
    terminal = [row for row in _statuses(by_at(events)) if row[1].status in TERMINAL_STATUSES]
    if not terminal:
        return None
    seen_at, execution = terminal[-1]
    return execution.status or "", execution.stopped_at or seen_at


def span_dict(span: Span, lane: Lane, status: str = causality.OK) -> dict[str, Any]:
    end_event = span.end_event
    return {
        "fn": span.fn,
        "start": iso(span.start),
        "end": iso(span.shown_end),
        "start_event": span.start_event.id if span.start_event else None,
        "end_event": end_event.id,
        "incoming": dict(end_event.incoming) if end_event.incoming else None,
        "outgoing": dict(end_event.outgoing or _outgoing_of(end_event)),
        "open": span.open,
        "lane": lane.lane,
        "fn_lane": lane.fn_lane,
        "sub_lane": lane.sub_lane,
        "step": _step(span),
        "duration_ms": span.duration_ms,
        "skew_ms": span.skew_ms,
        "approx": span.approx,
        "paired_by": span.paired_by,
        "status": status,
    }


def _outgoing_of(event: NormalisedEvent) -> dict[str, str]:
    return {"source": event.source, "detailType": event.detail_type}


def _link(start: datetime, span: Span | None, trigger: NormalisedEvent | None) -> causality.Link:
    end_event = span.end_event if span else None
    return causality.Link(
        start=start, end=span.shown_end if span else None, trigger=trigger, end_event=end_event
    )


def _state_lanes(
    items: list[tuple[dict[str, Any], causality.Link]],
    spans: Sequence[Span],
    order: Sequence[str],
    job_end: datetime | None,
) -> None:
    """Sets each item's `state`, `lane`, `colour`, `fn_lane`, `sub_lane`, `row`
    (events.domain.lanes)."""
    finder = lanes.StateFinder({span.end_event.id: span.start_event for span in spans})
    rows = [
        lanes.Row(
            state=finder.of_span(link.trigger, link.end_event),
            fn=item["fn"],
            awaiting=link.trigger.detail_type if link.end_event is None and link.trigger else None,
            start=link.start,
            end=link.end,
        )
        for item, link in items
    ]
    for (item, _), placed in zip(items, lanes.lay_out(rows, order, job_end), strict=True):
        item.update(placed)


def job_timeline(
    events: Sequence[NormalisedEvent], state_order: Sequence[str] = ()
) -> dict[str, Any]:
    """The `/api/jobs/<job id>/timeline` answer without its "job" key (DESIGN sections 6, 9).

    `state_order`: the state machine's lane order (events.domain.lanes.lane_order); states it does
    not name come after its own, by first start.
    """
    ordered = by_at(events)
    spans = pair_spans(ordered)
    lanes = assign_lanes(spans)
    rows = sorted(zip(spans, lanes, strict=True), key=lambda row: (row[0].start, row[1].lane))
    stopped = execution_stop(ordered)
    failed_at = stopped[1] if stopped and stopped[0] in causality.FAILURES else None
    items = [
        (
            span_dict(span, lane, causality.span_status(span.start, span.shown_end, failed_at)),
            _link(span.start, span, span.start_event),
        )
        for span, lane in rows
    ]
    items += causality.pending_rows(
        ordered, spans, first_lane=max((lane.fn_lane for lane in lanes), default=-1) + 1
    )
    execution = execution_bar(ordered)
    job_end = stopped[1] if stopped else (ordered[-1].at if ordered else None)
    _state_lanes(items, spans, state_order, job_end)
    return {
        "spans": [item for item, _ in items],
        "execution": execution,
        "critical_path": causality.critical_path([link for _, link in items], job_end),
    }

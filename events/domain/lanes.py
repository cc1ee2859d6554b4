"""Which workflow state each span of a job ran in, and the job view's lanes by state. Pure.

**A span's state.** An event names its state with `detail.stateName` (what a state machine's
`events:putEvents` task carries, and what the instrumentation kit carries over into a Lambda's
answer) or with the execution context the kit injects: `detail.executionContext.context.State.Name`
(the whole `$$`) or `detail.executionContext.State.Name`. A span runs in the state that put its
trigger: its state is its trigger's state, and a trigger that names none but was itself the answer
of another span takes that span's state (a Lambda triggered by another Lambda's event still runs
for the same state). A span whose trigger is unknown or has no state takes its answer's own state,
if it names one. A pending span's state is its trigger's.

**Lanes.** `lane` is the state name where it is known, else the fn (work with no known state keeps
its function lane), else `awaiting <detail-type>` for a pending span with no known state. Inside a
state lane the rows are grouped by fn (the Lambda is the lane's sub-label), pending work last, as
`awaiting <detail-type>`; concurrent spans of one group stack on rows.

**Fixed per state machine.** The same state gets the same colour and the same place on every job
of its state machine, and on the compare page:
- colour = CRC-32 of the name (state, else fn) modulo the palette's 8 colours (the palette whose
  contrast the browser tests check), taking the next free colour when an earlier name has it:
  the states in the state machine's lane order first, then the other names by name. So states
  of one state machine differ in colour (up to 8 of them), and a state keeps its colour on every
  job that has the same lane order;
- order = the state lanes first, by `lane_order` of the state machine's recent jobs (the mean
  position at which each state was first seen in them, ties by name), states no recent job shows
  after them by first start; then the function lanes without a state, then pending lanes without a
  state, each by first start.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from events.domain.envelope import NormalisedEvent

PALETTE = 8
INSTANT = timedelta(milliseconds=1)


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def event_state(event: NormalisedEvent | None) -> str | None:
    """The state the event says it belongs to, or None."""
    if event is None:
        return None
    detail = event.detail
    found = _name(detail.get("stateName"))
    context = detail.get("executionContext")
    holders = [context.get("context"), context] if isinstance(context, dict) else []
    for holder in holders:
        state = holder.get("State") if isinstance(holder, dict) else None
        found = found or (_name(state.get("Name")) if isinstance(state, dict) else None)
    return found


class StateFinder:
    """States of events and of the spans that end at them, through the chain of triggers."""

    def __init__(self, ends: dict[str, NormalisedEvent | None]) -> None:
        # answer event id -> its span's trigger (None when the trigger was not observed)
        self.ends = ends
        self.memo: dict[str, str | None] = {}

    def of_event(self, event: NormalisedEvent | None) -> str | None:
        """The event's own state, else (for an answer) the state of the span it ended."""
        seen: list[str] = []
        while event is not None and event.id not in self.memo and event.id not in seen:
            own = event_state(event)
            if own is not None or event.id not in self.ends:
                self.memo[event.id] = own
                break
            seen.append(event.id)
            event = self.ends[event.id]
        found = self.memo.get(event.id) if event is not None else None
        for event_id in seen:
            self.memo[event_id] = found
        return found

    def of_span(
        self, trigger: NormalisedEvent | None, answer: NormalisedEvent | None
    ) -> str | None:
        """The trigger's state (through its chain), else the answer's own."""
        return self.of_event(trigger) or event_state(answer)


def work_name(span: dict[str, Any]) -> str:
    """A timeline span's fn, or `awaiting <detail-type>` for pending work: its sub-label."""
    if span["fn"] is not None:
        return span["fn"]
    return f"awaiting {(span['incoming'] or {}).get('detailType', '')}"


def colour(name: str | None) -> int | None:
    """The palette index a state (or fn) asks for: the same on every job and page."""
    if name is None:
        return None
    return zlib.crc32(name.encode("utf-8", "surrogatepass")) % PALETTE


def palette(names: Sequence[str]) -> dict[str, int]:
    """A colour per name, in the given order: its own, else the next one no earlier name has."""
    taken: dict[int, str] = {}
    out: dict[str, int] = {}
    for name in dict.fromkeys(names):
        wanted = colour(name) or 0
        for step in range(PALETTE if len(taken) < PALETTE else 1):
            if (wanted + step) % PALETTE not in taken:
                wanted = (wanted + step) % PALETTE
                break
        taken.setdefault(wanted, name)
        out[name] = wanted
    return out


def first_seen_states(events: Iterable[NormalisedEvent]) -> list[str]:
    """The states named by the events (in the given order), each once, as first seen."""
    seen: dict[str, None] = {}
    for event in events:
        state = event_state(event)
        if state is not None:
            seen.setdefault(state)
    return list(seen)


def lane_order(sequences: Iterable[Sequence[str]]) -> list[str]:
    """One order of states for several jobs: by mean first-seen position, ties by name.

    The same set of jobs gives the same order whichever of them is shown.
    """
    positions: dict[str, list[int]] = {}
    for sequence in sequences:
        for i, state in enumerate(sequence):
            positions.setdefault(state, []).append(i)
    mean = {state: sum(found) / len(found) for state, found in positions.items()}
    return sorted(positions, key=lambda state: (mean[state], state))


@dataclass(frozen=True)
class Row:
    """What lays a span out: its state, its group inside the lane and its time."""

    state: str | None
    fn: str | None
    awaiting: str | None  # the detail-type a pending span waits for
    start: datetime
    end: datetime | None  # None: pending, runs to the job's end


def _lane(row: Row) -> str:
    return row.state or row.fn or f"awaiting {row.awaiting}"


def _sub(row: Row) -> tuple[int, str]:
    return (0, row.fn) if row.fn else (1, f"awaiting {row.awaiting}")


def _lane_rank(row: Row, order: dict[str, int]) -> tuple[int, int]:
    if row.state is not None:
        return (0, order.get(row.state, len(order)))
    return (1, 0) if row.fn else (2, 0)


def _stack(rows: list[Row], members: list[int], job_end: datetime | None) -> list[int]:
    """Sub-rows for members sorted by start: the lowest row free when each one starts."""
    busy: list[tuple[datetime, int]] = []
    free: list[int] = []
    out = []
    for i in members:
        row = rows[i]
        while busy and busy[0][0] <= row.start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        at = heapq.heappop(free) if free else len(busy)
        end = row.end or max(job_end or row.start, row.start)
        heapq.heappush(busy, (max(row.start + INSTANT, end), at))
        out.append(at)
    return out


def lay_out(
    rows: Sequence[Row], order: Sequence[str], job_end: datetime | None
) -> list[dict[str, Any]]:
    """Per row: `state`, `lane`, `colour`, `fn_lane` (the lane's place), `sub_lane` (the row in
    its lane) and `row` (the row in the whole chart); see the module docstring."""
    rank = {state: i for i, state in enumerate(order)}
    by_time = sorted(range(len(rows)), key=lambda i: (rows[i].start, i))
    lanes: dict[str, dict[tuple[int, str], list[int]]] = {}
    for i in by_time:
        lanes.setdefault(_lane(rows[i]), {}).setdefault(_sub(rows[i]), []).append(i)
    first = {lane: n for n, lane in enumerate(lanes)}
    ranked = sorted(
        lanes, key=lambda lane: (*_lane_rank(_any(rows, lanes[lane]), rank), first[lane])
    )
    named = {row.state or row.fn for row in rows} - {None}
    colours = palette([*order, *sorted(name for name in named if name not in order)])
    out: list[dict[str, Any]] = [{} for _ in rows]
    offset = 0
    for lane_n, lane in enumerate(ranked):
        base = 0
        for sub in sorted(lanes[lane], key=lambda sub: (sub[0], lanes[lane][sub][0])):
            members = lanes[lane][sub]
            stacked = _stack(list(rows), members, job_end)
            for i, at in zip(members, stacked, strict=True):
                placed = _placed(rows[i], lane, lane_n, base + at, offset + base + at)
                out[i] = {**placed, "colour": colours.get(rows[i].state or rows[i].fn or "")}
            base += max(stacked) + 1
        offset += base
    return out


def _placed(row: Row, lane: str, lane_n: int, sub: int, at: int) -> dict[str, Any]:
    return {"state": row.state, "lane": lane, "fn_lane": lane_n, "sub_lane": sub, "row": at}


def _any(rows: Sequence[Row], subs: dict[tuple[int, str], list[int]]) -> Row:
    return rows[next(iter(subs.values()))[0]]

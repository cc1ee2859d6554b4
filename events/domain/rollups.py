"""Architecture rollups: what each event adds to the architecture, per time bucket. Pure.

The answer of events.domain.architecture over a window is a sum over its events, except three parts:
- an event type, fn and edge count is one per event (a span is counted by its end event), so a
  rollup adds them per bucket of the event's envelope `time` (the field windows filter on);
- a state machine's count is the number of distinct jobs it put events for: a rollup keeps one
  `job` row per (bucket, job), counted distinct over the window;
- an edge's latency is that of the span ending at the event, known once both ends are stored:
  it goes to the sketch (events.domain.sketch) of the end event's buckets.

Rows are keyed by (width, bucket, account, state machine of the event's job, kind, source,
target): kinds `event` (source, detail-type; count 0 for a type only named as a trigger),
`fn` (name), `edge` (node ids, with a sketch) and `job` (machine, job id). Buckets are kept at
two widths, minutes and hours, so a day is read as about 24 hour rows per key plus the minutes
at its ends (`pieces`).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from events.domain import sketch as sk
from events.domain.architecture import event_node_id, graph_nodes
from events.domain.envelope import NormalisedEvent
from events.domain.timeline import Span, pair_spans

MINUTE, HOUR = 60, 3600
WIDTHS = (MINUTE, HOUR)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Key = tuple[int, int, str, str, str, str, str]  # width, bucket, account, sm, kind, src, tgt


def floor(moment: datetime, width: int) -> datetime:
    return EPOCH + timedelta(seconds=bucket_of(moment, width))


def bucket_of(moment: datetime, width: int) -> int:
    """The epoch second that starts the bucket of `moment`."""
    seconds = int((moment - EPOCH).total_seconds())
    return seconds - seconds % width


def epoch(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds())


def ceil(moment: datetime, width: int) -> datetime:
    low = floor(moment, width)
    return low if low == moment else low + timedelta(seconds=width)


def row_key(key: Key) -> str:
    """The one-column unique key of a rollup row (a digest of its key fields)."""
    text = "\x1f".join(str(part) for part in key)
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def machine_of(event: NormalisedEvent) -> str:
    execution = event.correlation.execution
    return execution.state_machine if execution else "unknown"


def job_machine(event: NormalisedEvent) -> str:
    """The state machine a window's `state_machine` filter matches (that of the event's job)."""
    return machine_of(event) if event.job else ""


def span_edges(event: NormalisedEvent) -> list[tuple[str, str]]:
    """The edges whose latency is that of the span ending at `event` (an event with a fn)."""
    fn = f"fn:{event.fn}"
    edges = []
    if event.incoming:
        consumed = event_node_id(event.incoming["source"], event.incoming["detailType"])
        edges.append((consumed, fn))
    edges.append((fn, event_node_id(event.source, event.detail_type)))
    return edges


def counted(event: NormalisedEvent) -> list[tuple[str, str, str, int]]:
    """(kind, source, target, count) of what one event adds to the architecture."""
    rows = [("event", event.source, event.detail_type, 1)]
    if event.job and not event.fn:
        machine = machine_of(event)
        rows.append(("edge", f"sm:{machine}", event_node_id(event.source, event.detail_type), 1))
        rows.append(("job", machine, event.job, 1))
    if event.fn:
        rows.append(("fn", event.fn, "", 1))
        if event.incoming:
            rows.append(("event", event.incoming["source"], event.incoming["detailType"], 0))
        rows.extend(("edge", source, target, 1) for source, target in span_edges(event))
    return rows


@dataclass
class Deltas:
    """What a set of events adds to the rollup rows: {key: count} and {key: sketch}."""

    counts: Counter[Key] = field(default_factory=Counter)
    sketches: dict[Key, sk.Sketch] = field(default_factory=lambda: defaultdict(dict))

    def keys(self) -> list[Key]:
        return sorted(set(self.counts) | set(self.sketches), key=lambda key: row_key(key))

    def count(self, event: NormalisedEvent) -> None:
        for width in WIDTHS:
            head = (width, bucket_of(event.time, width), event.account, job_machine(event))
            for kind, source, target, count in counted(event):
                self.counts[(*head, kind, source, target)] += count

    def latency(self, event: NormalisedEvent, latency_ms: int) -> None:
        """The latency of the span ending at `event`."""
        self.add_latency(
            event.time, event.account, job_machine(event), span_edges(event), latency_ms
        )

    def add_latency(
        self, time: datetime, account: str, machine: str, edges: Iterable[Iterable[str]],
        latency_ms: int,
    ) -> None:  # fmt: skip
        for width in WIDTHS:
            head = (width, bucket_of(time, width), account, machine)
            for source, target in edges:
                sk.add(self.sketches[(*head, "edge", source, target)], latency_ms)


def span_latency(span: Span) -> int | None:
    return None if span.open else span.duration_ms


def job_deltas(events: list[NormalisedEvent], deltas: Deltas, keep=lambda event: True) -> None:
    """Adds one job's events (every event of the job, for pairing) to `deltas`, only those
    `keep` accepts."""
    for event in events:
        if keep(event):
            deltas.count(event)
    for span in pair_spans(events):
        latency = span_latency(span)
        if latency is not None and keep(span.end_event):
            deltas.latency(span.end_event, latency)


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """A part of a window: rollup rows of one width over [since, until), or raw events."""

    width: int | None  # None: raw events
    since: datetime | None
    until: datetime | None


def pieces(since: datetime | None, until: datetime | None) -> list[Piece]:
    """The window [since, until) (None: unbounded) cut into hour rows, minute rows and raw
    events: whole hours from hour rows, whole minutes from minute rows, the seconds at either
    end from raw events."""
    lo = ceil(since, MINUTE) if since else None
    hi = floor(until, MINUTE) if until else None
    if lo is not None and hi is not None and lo >= hi:
        return [Piece(None, since, until)]
    found = []
    if since is not None and since < lo:
        found.append(Piece(None, since, lo))
    hour_lo = ceil(lo, HOUR) if lo else None
    hour_hi = floor(hi, HOUR) if hi else None
    if hour_lo is None or hour_hi is None or hour_lo < hour_hi:
        if lo is not None and lo < hour_lo:
            found.append(Piece(MINUTE, lo, hour_lo))
        found.append(Piece(HOUR, hour_lo, hour_hi))
        if hi is not None and hour_hi < hi:
            found.append(Piece(MINUTE, hour_hi, hi))
    else:
        found.append(Piece(MINUTE, lo, hi))
    if until is not None and hi < until:
        found.append(Piece(None, hi, until))
    return [piece for piece in found if piece.since is None or piece.until is None
            or piece.since < piece.until]  # fmt: skip


@dataclass
class Totals:
    """The architecture of a window, summed from rollup rows and raw events."""

    event_types: Counter[tuple[str, str]] = field(default_factory=Counter)
    fns: Counter[str] = field(default_factory=Counter)
    machines: Counter[str] = field(default_factory=Counter)
    edges: Counter[tuple[str, str]] = field(default_factory=Counter)
    sketches: dict[tuple[str, str], sk.Sketch] = field(default_factory=lambda: defaultdict(dict))

    def add_row(self, kind: str, source: str, target: str, count: int, sketch: Any) -> None:
        if kind == "event":
            self.event_types[(source, target)] += count
        elif kind == "fn":
            self.fns[source] += count
        elif kind == "edge":
            self.edges[(source, target)] += count
            if sketch:
                sk.merge(self.sketches[(source, target)], sketch)

    def add_raw(self, events: Iterable[NormalisedEvent]) -> dict[str, set[str]]:
        """Adds raw events (paired per job among themselves, as events.domain.architecture does);
        returns the jobs each machine put events for, for the caller to count distinct."""
        jobs: dict[str | None, list[NormalisedEvent]] = defaultdict(list)
        for event in events:
            jobs[event.job].append(event)
        deltas = Deltas()
        for job_events in jobs.values():
            job_deltas(job_events, deltas)
        machines: dict[str, set[str]] = defaultdict(set)
        for key, count in deltas.counts.items():
            width, _, _, _, kind, source, target = key
            if width != MINUTE:
                continue
            if kind == "job":
                machines[source].add(target)
            else:
                self.add_row(kind, source, target, count, None)
        for key, sketch in deltas.sketches.items():
            if key[0] == MINUTE:
                sk.merge(self.sketches[(key[5], key[6])], sketch)
        return machines

    def graph(self) -> dict[str, list[dict[str, Any]]]:
        """The events.domain.architecture answer (same nodes, edges and counts)."""
        nodes = graph_nodes(self.machines, self.fns, dict(self.event_types), self.edges)
        edges = []
        for source, target in sorted(self.edges):
            p50, p95 = sk.quantiles(self.sketches.get((source, target), {}), (0.50, 0.95))
            edges.append(
                {"source": source, "target": target, "count": self.edges[(source, target)],
                 "p50_ms": p50, "p95_ms": p95}
            )  # fmt: skip
        return {"nodes": nodes, "edges": edges}

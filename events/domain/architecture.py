"""The architecture that a window of events reveals (DESIGN sections 3 and 6). Pure.

Nodes are event types (`event:<source>/<detail-type>`), functions (`fn:<name>`) and state machines
(`sm:<name>`). Every edge stands for events that were seen:
- `event type -> fn`: a span of the fn whose `meta.incoming` names that type;
- `fn -> event type`: the event that ended the span (the type of the event itself);
- `state machine -> event type`: an event with a job but no `meta.fn`, so put by the state machine
  (Step Functions status events included).
Edge latencies are the durations of the spans behind the edge, paired per job as in the timeline;
open spans count but give no latency. An event type nothing was seen to consume is a sink; one whose
producer was never seen is unknown. Nothing else is inferred.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from events.domain.envelope import NormalisedEvent
from events.domain.timeline import Span, pair_spans

KIND_ORDER = {"state_machine": 0, "event": 1, "fn": 2}


def event_node_id(source: str, detail_type: str) -> str:
    return f"event:{source}/{detail_type}"


def percentile(ordered: list[int], share: float) -> int | None:
    """Nearest-rank percentile of an ascending list (an observed value), None when empty."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class _Graph:
    """Counts gathered one job at a time."""

    event_types: Counter[tuple[str, str]] = field(default_factory=Counter)
    fns: Counter[str] = field(default_factory=Counter)
    machines: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    edge_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    latencies: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    referenced: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add_job(self, events: list[NormalisedEvent]) -> None:
        for event in events:
            self.event_types[(event.source, event.detail_type)] += 1
            if event.job and not event.fn:
                self._add_put_by_machine(event)
        for span in pair_spans(events):
            self._add_span(span)

    def _add_put_by_machine(self, event: NormalisedEvent) -> None:
        execution = event.correlation.execution
        machine = execution.state_machine if execution else "unknown"
        self.machines[machine].add(event.job or "")
        self._add_edge(f"sm:{machine}", self._event(event.source, event.detail_type), None)

    def _add_span(self, span: Span) -> None:
        end = span.end_event
        latency = None if span.open else span.duration_ms
        self.fns[span.fn] += 1
        if end.incoming:
            consumed = self._event(end.incoming["source"], end.incoming["detailType"])
            self._add_edge(consumed, f"fn:{span.fn}", latency)
        self._add_edge(f"fn:{span.fn}", self._event(end.source, end.detail_type), latency)

    def _event(self, source: str, detail_type: str) -> str:
        """The node id of an event type that an edge touches (it may never have been seen)."""
        node_id = event_node_id(source, detail_type)
        self.referenced[node_id] = (source, detail_type)
        return node_id

    def _add_edge(self, source: str, target: str, latency: int | None) -> None:
        self.edge_counts[(source, target)] += 1
        if latency is not None:
            self.latencies[(source, target)].append(latency)

    def edges(self) -> list[dict[str, Any]]:
        return [self._edge(key) for key in sorted(self.edge_counts)]

    def _edge(self, key: tuple[str, str]) -> dict[str, Any]:
        ordered = sorted(self.latencies.get(key, ()))
        return {
            "source": key[0],
            "target": key[1],
            "count": self.edge_counts[key],
            "p50_ms": percentile(ordered, 0.50),
            "p95_ms": percentile(ordered, 0.95),
        }

    def nodes(self) -> list[dict[str, Any]]:
        types = dict(self.event_types)
        for key in self.referenced.values():
            types.setdefault(key, 0)
        machines = {name: len(jobs) for name, jobs in self.machines.items()}
        return graph_nodes(machines, self.fns, types, self.edge_counts)


def graph_nodes(
    machines: dict[str, int], fns: dict[str, int], event_types: dict[tuple[str, str], int],
    edges: Iterable[tuple[str, str]],
) -> list[dict[str, Any]]:  # fmt: skip
    """The nodes of an architecture, in the order the page lists them: state machines (with
    their job counts), event types and functions (with their event counts). An event type no
    edge starts from is a sink; one no edge leads to is unknown (its producer was never seen)."""
    edges = list(edges)
    sources = {source for source, _ in edges}
    targets = {target for _, target in edges}
    labels = _event_labels(event_types)
    nodes = [
        *(_node(f"sm:{name}", "state_machine", name, count) for name, count in machines.items()),
        *(_node(f"fn:{name}", "fn", name, count) for name, count in fns.items()),
        *(
            _node(
                event_node_id(*key),
                "event",
                labels[key],
                count,
                sink=event_node_id(*key) not in sources,
                unknown=event_node_id(*key) not in targets,
            )
            for key, count in event_types.items()
        ),
    ]
    return sorted(nodes, key=lambda node: (KIND_ORDER[node["kind"]], node["id"]))


def _node(
    node_id: str, kind: str, label: str, count: int, *, sink: bool = False, unknown: bool = False
) -> dict[str, Any]:
    return {
        "id": node_id,
        "kind": kind,
        "label": label,
        "count": count,
        "sink": sink,
        "unknown": unknown,
    }


def _event_labels(types: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The detail-type, or `source/detail-type` when several sources share that detail-type."""
    keys = list(types)
    sources_per_type = Counter(detail_type for _, detail_type in keys)
    return {
        (source, detail_type): (
            detail_type if sources_per_type[detail_type] == 1 else f"{source}/{detail_type}"
        )
        for source, detail_type in keys
    }


def group_by_job(events: Iterable[NormalisedEvent]) -> dict[str | None, list[NormalisedEvent]]:
    """Events per job id (None for events without a job), keeping their order."""
    jobs: dict[str | None, list[NormalisedEvent]] = defaultdict(list)
    for event in events:
        jobs[event.job].append(event)
    return jobs


def infer_architecture(events: Iterable[NormalisedEvent]) -> dict[str, list[dict[str, Any]]]:
    """The `/api/architecture` answer: `{"nodes": [...], "edges": [...]}` (DESIGN section 6)."""
    graph = _Graph()
    for job_events in group_by_job(events).values():
        graph.add_job(job_events)
    return {"nodes": graph.nodes(), "edges": graph.edges()}

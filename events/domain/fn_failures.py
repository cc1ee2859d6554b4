"""Function failure rates on the architecture graph (issue 27). Pure.

A function's run (a span, events.domain.timeline) failed when its job's execution failed
(FAILED, TIMED_OUT, ABORTED) while it ran: the rule the timeline colours a span red by
(events.domain.causality.span_status). A function node's `failure_rate` is its failed runs over
its runs in the window (the node's `count`); `failed` says how many. Only the jobs that failed
are read for it (their runs are the only ones that can have failed), so the numbers are exact
up to the number of failed jobs read (`failures_sampled` when more failed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from events.domain import causality
from events.domain.envelope import NormalisedEvent
from events.domain.timeline import by_at, execution_stop, pair_spans


def failed_runs(events: Sequence[NormalisedEvent]) -> Counter[str]:
    """Per function, the runs of one job that were running when its execution failed."""
    ordered = by_at(events)
    stopped = execution_stop(ordered)
    if not stopped or stopped[0] not in causality.FAILURES:
        return Counter()
    failed_at = stopped[1]
    return Counter(
        span.fn for span in pair_spans(ordered)
        if causality.span_status(span.start, span.shown_end, failed_at) == causality.FAILED
    )  # fmt: skip


def with_failure_rates(
    graph: dict[str, Any], jobs: Iterable[Sequence[NormalisedEvent]], *, sampled: bool = False
) -> dict[str, Any]:
    """The graph with `failed` and `failure_rate` (0..1, None without runs) on each function
    node, from the events of the window's failed jobs."""
    failed: Counter[str] = Counter()
    for events in jobs:
        failed += failed_runs(events)
    nodes = [_rated(node, failed) for node in graph["nodes"]]
    return {**graph, "nodes": nodes, "failures_sampled": sampled}


def _rated(node: dict[str, Any], failed: Counter[str]) -> dict[str, Any]:
    if node["kind"] != "fn":
        return node
    runs, bad = node["count"], min(failed[node["label"]], node["count"])
    return {**node, "failed": bad, "failure_rate": round(bad / runs, 4) if runs else None}

"""What changed in the architecture between two windows (DESIGN section 9). Pure.

The two graphs are `infer_architecture` answers (events.domain.architecture), one for the window
looked at and one for the base window it is compared with. Nodes and edges are matched by their ids
(`source`, `target` for an edge), so:
- a node or edge only the window has is added; one only the base has is removed (with its base
  numbers: the page draws it from them);
- an edge both have "moved" when both windows measured a p95 and it moved by more than half of
  the base's: |p95 - base p95| > base p95 / 2. A p95 that only one side measured (open spans give
  no latency) is not a move: nothing was compared.
Nothing else is compared: counts always change between two windows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Graph = dict[str, list[dict[str, Any]]]
MOVE_SHARE = 0.5
DIFF_KEYS = ("nodes_added", "nodes_removed", "edges_added", "edges_removed", "edges_moved")


def _edge_key(edge: dict[str, Any]) -> tuple[str, str]:
    return edge["source"], edge["target"]


def p95_moved(base_ms: int | None, now_ms: int | None) -> bool:
    """True when both are measured and `now_ms` is off `base_ms` by more than half of it."""
    if base_ms is None or now_ms is None:
        return False
    return abs(now_ms - base_ms) > base_ms * MOVE_SHARE


def _moved(edge: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": edge["source"],
        "target": edge["target"],
        "count": edge["count"],
        "base_count": base["count"],
        "p95_ms": edge["p95_ms"],
        "base_p95_ms": base["p95_ms"],
    }


def architecture_diff(*, graph: Graph, base: Graph) -> dict[str, Any]:
    """The `/api/architecture/diff` answer, each list in the graphs' own order. A base without
    a node (no events: before the retention, or traffic began since) compares with nothing:
    every list is empty and `comparable` is False, as the schemas' drift says."""
    if not base["nodes"]:
        empty: dict[str, Any] = {key: [] for key in DIFF_KEYS}
        return {**empty, "comparable": False}
    nodes = {node["id"] for node in graph["nodes"]}
    base_nodes = {node["id"] for node in base["nodes"]}
    base_edges = {_edge_key(edge): edge for edge in base["edges"]}
    edges = {_edge_key(edge) for edge in graph["edges"]}
    return {
        "nodes_added": [node for node in graph["nodes"] if node["id"] not in base_nodes],
        "nodes_removed": [node for node in base["nodes"] if node["id"] not in nodes],
        "edges_added": [edge for edge in graph["edges"] if _edge_key(edge) not in base_edges],
        "edges_removed": [edge for edge in base["edges"] if _edge_key(edge) not in edges],
        "edges_moved": [
            _moved(edge, base_edges[_edge_key(edge)])
            for edge in graph["edges"]
            if _edge_key(edge) in base_edges
            and p95_moved(base_edges[_edge_key(edge)]["p95_ms"], edge["p95_ms"])
        ],
        "comparable": True,
    }


def previous_period(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The base window a diff compares with by default: as long as the window, just before it
    (from the first instant Python holds when that reaches further back)."""
    try:
        return since - (until - since), since
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC), since

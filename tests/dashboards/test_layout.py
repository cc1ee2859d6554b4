"""The layered layout of the architecture picture (dashboards/layout.py), pure."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from dashboards.layout import layered_layout
from events.architecture import infer_architecture
from events.envelope import parse_envelope

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def sample_graph() -> dict:
    lines = (SAMPLES / "part1_jobs.jsonl").read_text().splitlines()
    events = [
        parse_envelope(json.loads(line), default_account="123456789012")
        for line in lines
        if line.strip()
    ]
    return infer_architecture(events)


def node(node_id: str, kind: str = "fn") -> dict:
    return {"id": node_id, "kind": kind, "label": node_id.split(":")[-1]}


def edge(source: str, target: str) -> dict:
    return {"source": source, "target": target}


def overlaps(a, b) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def test_it_places_no_two_nodes_on_top_of_each_other():
    graph = sample_graph()
    layout = layered_layout(graph["nodes"], graph["edges"])
    assert len(layout.nodes) == len(graph["nodes"])
    for a, b in itertools.combinations(layout.nodes, 2):
        assert not overlaps(a, b), (a.id, b.id)


def test_it_draws_every_edge_of_a_dag_left_to_right():
    graph = sample_graph()
    layout = layered_layout(graph["nodes"], graph["edges"])
    boxes = {box.id: box for box in layout.nodes}
    for path in layout.edges:
        assert not path.back
        assert boxes[path.source].x + boxes[path.source].w < boxes[path.target].x
    assert len(layout.edges) == len(graph["edges"])


def test_it_is_deterministic_whatever_the_input_order():
    graph = sample_graph()
    first = layered_layout(graph["nodes"], graph["edges"])
    second = layered_layout(list(reversed(graph["nodes"])), list(reversed(graph["edges"])))
    assert [(n.id, n.x, n.y) for n in first.nodes] == [(n.id, n.x, n.y) for n in second.nodes]
    assert sorted(e.d for e in first.edges) == sorted(e.d for e in second.edges)


def test_it_keeps_everything_inside_the_picture():
    graph = sample_graph()
    layout = layered_layout(graph["nodes"], graph["edges"])
    for box in layout.nodes:
        assert 0 <= box.x and box.x + box.w <= layout.width
        assert 0 <= box.y and box.y + box.h <= layout.height


def test_it_routes_long_edges_through_the_layers_they_skip():
    nodes = [node("a"), node("b"), node("c")]
    layout = layered_layout(nodes, [edge("a", "b"), edge("b", "c"), edge("a", "c")])
    long = next(path for path in layout.edges if (path.source, path.target) == ("a", "c"))
    assert len(long.points) == 3


def test_it_reduces_crossings_with_barycentric_ordering():
    # a1 -> b2 and a2 -> b1 cross when b keeps its name order; the sweeps untangle them.
    nodes = [node("a1"), node("a2"), node("b1"), node("b2")]
    layout = layered_layout(nodes, [edge("a1", "b2"), edge("a2", "b1")])
    y = {box.id: box.y for box in layout.nodes}
    assert (y["a1"] < y["a2"]) == (y["b2"] < y["b1"])


def test_it_survives_a_cycle():
    nodes = [node("a"), node("b"), node("c")]
    layout = layered_layout(nodes, [edge("a", "b"), edge("b", "c"), edge("c", "a")])
    assert sum(1 for path in layout.edges if path.back) == 1
    for a, b in itertools.combinations(layout.nodes, 2):
        assert not overlaps(a, b)

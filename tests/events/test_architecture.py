"""The architecture graph inferred from events (events.domain.architecture), over the shared
samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from events.domain.architecture import infer_architecture, percentile
from events.domain.envelope import NormalisedEvent, parse_envelope

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
ACCOUNT = "123456789012"
SM = "sm:EventDrivenMachine"
STATUS = "event:aws.states/Step Functions Execution Status Change"
DEMO_EDGES = {
    (SM, "event:project/getUsers"),
    (SM, "event:project/getUserProfile"),
    (SM, "event:project/generateReport"),
    ("event:project/getUsers", "fn:getMultipleFn"),
    ("event:project/getUserProfile", "fn:processSingleFn"),
    ("event:project/generateReport", "fn:postProcessAllFn"),
    ("event:project/getUserCookies", "fn:postProcessSingleFn"),
    ("event:project/getUserCookies", "fn:sideEffectFn"),
    ("fn:getMultipleFn", "event:project/done"),
    ("fn:processSingleFn", "event:project/getUserCookies"),
    ("fn:postProcessSingleFn", "event:project/done"),
    ("fn:sideEffectFn", "event:project/async.done"),
    ("fn:postProcessAllFn", "event:project/done"),
}
WORKFLOW_SAMPLES = ("part1_jobs.jsonl", "part1_jobs_original_meta.jsonl")


def envelopes(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SAMPLES / name).read_text().splitlines() if line.strip()]


def events_of(name: str) -> list[NormalisedEvent]:
    return [parse_envelope(envelope, default_account=ACCOUNT) for envelope in envelopes(name)]


def edge_map(graph: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(edge["source"], edge["target"]): edge for edge in graph["edges"]}


def node_map(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["id"]: node for node in graph["nodes"]}


@pytest.mark.parametrize("name", WORKFLOW_SAMPLES)
def test_it_infers_exactly_the_demo_workflow(name: str) -> None:
    edges = set(edge_map(infer_architecture(events_of(name))))

    assert DEMO_EDGES <= edges
    assert edges - DEMO_EDGES == {(SM, STATUS)}


@pytest.mark.parametrize("name", WORKFLOW_SAMPLES)
def test_it_marks_sinks_and_unknown_producers(name: str) -> None:
    graph = infer_architecture(events_of(name))
    nodes = node_map(graph)

    sinks = {node_id for node_id, node in nodes.items() if node["sink"]}
    unknown = {node_id for node_id, node in nodes.items() if node["unknown"]}
    assert sinks == {
        "event:project/done",
        "event:project/async.done",
        "event:project/start",
        STATUS,
    }
    assert unknown == {"event:project/start"}
    assert not any(edge["target"].startswith("sm:") for edge in graph["edges"])
    assert (SM, "event:project/start") not in edge_map(graph)


def test_it_answers_the_architecture_shape() -> None:
    graph = infer_architecture(events_of("part1_jobs.jsonl"))

    assert set(graph) == {"nodes", "edges"}
    for node in graph["nodes"]:
        assert set(node) == {"id", "kind", "label", "count", "sink", "unknown"}
        assert node["kind"] in {"event", "fn", "state_machine"}
    for edge in graph["edges"]:
        assert set(edge) == {"source", "target", "count", "p50_ms", "p95_ms"}


def test_it_counts_nodes() -> None:
    nodes = node_map(infer_architecture(events_of("part1_jobs.jsonl")))

    assert nodes[SM] == {
        "id": SM,
        "kind": "state_machine",
        "label": "EventDrivenMachine",
        "count": 3,
        "sink": False,
        "unknown": False,
    }
    assert nodes["event:project/getUserCookies"]["count"] == 13
    assert nodes["event:project/done"]["count"] == 18
    assert nodes["event:project/start"]["count"] == 3
    assert nodes["event:project/done"]["label"] == "done"
    assert nodes["fn:processSingleFn"]["count"] == 13
    assert nodes["fn:postProcessAllFn"]["count"] == 2


def test_it_counts_and_measures_edges() -> None:
    edges = edge_map(infer_architecture(events_of("part1_jobs.jsonl")))

    getter = edges[("event:project/getUsers", "fn:getMultipleFn")]
    assert (getter["count"], getter["p50_ms"], getter["p95_ms"]) == (3, 6000, 8000)
    assert edges[("fn:getMultipleFn", "event:project/done")]["p95_ms"] == 8000
    assert edges[("event:project/getUserProfile", "fn:processSingleFn")]["count"] == 13
    assert edges[(SM, "event:project/getUserProfile")]["count"] == 13
    assert edges[(SM, STATUS)]["count"] == 6
    assert edges[(SM, "event:project/getUsers")]["p50_ms"] is None


def test_it_infers_no_edge_to_a_consumer_never_seen() -> None:
    events = [e for e in events_of("part1_jobs.jsonl") if e.fn != "postProcessAllFn"]
    graph = infer_architecture(events)

    assert "fn:postProcessAllFn" not in node_map(graph)
    assert node_map(graph)["event:project/generateReport"]["sink"] is True
    assert not any(target == "fn:postProcessAllFn" for _, target in edge_map(graph))


def test_it_keeps_a_consumed_type_whose_producer_was_never_seen() -> None:
    events = [e for e in events_of("part1_jobs.jsonl") if e.detail_type != "getUsers"]
    graph = infer_architecture(iter(events))

    node = node_map(graph)["event:project/getUsers"]
    assert (node["count"], node["unknown"], node["sink"]) == (0, True, False)
    edge = edge_map(graph)[("event:project/getUsers", "fn:getMultipleFn")]
    assert (edge["count"], edge["p50_ms"], edge["p95_ms"]) == (3, None, None)
    assert (SM, "event:project/getUsers") not in edge_map(graph)


def test_it_adds_status_events_to_their_state_machine() -> None:
    graph = infer_architecture(events_of("stepfunctions_status.jsonl"))

    assert set(edge_map(graph)) == {("sm:state-machine-name", STATUS)}
    assert node_map(graph)["sm:state-machine-name"]["count"] == 1


def test_it_answers_no_events() -> None:
    assert infer_architecture([]) == {"nodes": [], "edges": []}


def test_it_takes_the_nearest_rank_percentile() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7], 0.95) == 7
    assert percentile(list(range(1, 101)), 0.50) == 50
    assert percentile(list(range(1, 101)), 0.95) == 95

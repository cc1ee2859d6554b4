"""Two jobs side by side (events.compare), over the shared samples and hand-built details."""

from __future__ import annotations

import copy

from events.compare import compare_jobs, field_changes

from .test_timeline import JOB_FAILED, JOB_OK, envelopes, job_events

SAMPLES = "part1_jobs.jsonl"
BUCKET = "https://bucket.example"


def test_it_matches_steps_by_lane_and_order() -> None:
    result = compare_jobs(job_events(SAMPLES, JOB_OK), job_events(SAMPLES, JOB_FAILED))

    first = result["steps"][0]
    assert (first["lane"], first["n"]) == ("getMultipleFn", 0)
    assert (first["a"]["duration_ms"], first["b"]["duration_ms"], first["diff_ms"]) == (
        6000,
        8000,
        2000,
    )
    assert first["a"]["end_event"].startswith("7403e430")
    assert first["b"]["end_event"].startswith("c458272f")
    singles = [step for step in result["steps"] if step["lane"] == "processSingleFn"]
    assert [step["n"] for step in singles] == [0, 1, 2, 3]
    assert [step["diff_ms"] for step in singles] == [-9000, -5000, 0, 2000]


def test_it_lists_the_steps_only_one_side_has() -> None:
    result = compare_jobs(job_events(SAMPLES, JOB_OK), job_events(SAMPLES, JOB_FAILED))

    assert [(step["lane"], step["n"]) for step in result["only_a"]] == [("postProcessAllFn", 0)]
    only_b = [(step["lane"], step["n"], step["status"]) for step in result["only_b"]]
    assert ("processSingleFn", 5, "ok") in only_b
    assert ("sideEffectFn", 4, "failed") in only_b
    assert only_b[-1] == ("awaiting generateReport", 0, "pending")


def test_it_gives_the_detail_fields_that_differ_without_volatile_ones() -> None:
    result = compare_jobs(job_events(SAMPLES, JOB_OK), job_events(SAMPLES, JOB_FAILED))

    fields = {step["lane"] + str(step["n"]): step["fields"] for step in result["steps"]}
    assert fields["processSingleFn2"] == [
        {"path": "name", "a": "Jean Sammet", "b": "Radia Perlman"},
        {
            "path": "profile",
            "a": f"{BUCKET}/a6a3a450-6513-470e-a69e-0d37f2a74de4/basic-Jean Sammet.json",
            "b": f"{BUCKET}/b87e4e2b-537d-4128-83a9-e88963b759f5/basic-Radia Perlman.json",
        },
    ]
    paths = {field["path"] for step in result["steps"] for field in step["fields"]}
    assert not paths & {"execution", "TaskToken", "meta.incoming.id", "meta.job"}


def test_it_finds_nothing_between_a_job_and_itself() -> None:
    events = job_events(SAMPLES, JOB_FAILED)

    result = compare_jobs(events, events)

    assert result["only_a"] == result["only_b"] == []
    assert {step["diff_ms"] for step in result["steps"] if step["lane"][0] != "a"} == {0}
    assert all(step["fields"] == [] for step in result["steps"])


def test_it_compares_a_retried_step_with_its_new_values() -> None:
    raw = copy.deepcopy(envelopes(SAMPLES))
    done = next(e for e in raw if e["id"].startswith("7403e430"))
    done["detail"]["names"] = ["Someone Else"]
    done["detail"]["meta"]["emittedAt"] = 1

    result = compare_jobs(job_events(SAMPLES, JOB_OK), job_events("", JOB_OK, raw))

    assert result["steps"][0]["fields"] == [
        {
            "path": "names",
            "a": ["Ada Lovelace", "Ken Thompson", "Jean Sammet", "Tony Hoare"],
            "b": ["Someone Else"],
        }
    ]


def test_it_walks_nested_fields_and_names_absent_ones_null() -> None:
    a = {"order": {"total": 3, "lines": [1, 2]}, "meta": {"emittedAt": 1, "fn": "f"}, "x": 1}
    b = {"order": {"total": 4, "lines": [1, 2]}, "meta": {"emittedAt": 2, "fn": "f"}, "y": None}

    assert field_changes(a, b) == [
        {"path": "order.total", "a": 3, "b": 4},
        {"path": "x", "a": 1, "b": None},
        {"path": "y", "a": None, "b": None},
    ]
    assert field_changes({"a": {"TaskToken": "1"}}, {"a": {"TaskToken": "2"}}) == []

"""Two jobs side by side (events.domain.compare), over the shared samples and hand-built details."""

from __future__ import annotations

import copy

from events.domain.compare import compare_jobs, compare_spans, field_changes

from .test_timeline import JOB_FAILED, JOB_OK, envelopes, job_events

SAMPLES = "part1_jobs.jsonl"
BUCKET = "https://bucket.example"


def test_it_matches_single_steps_by_lane() -> None:
    result = compare_jobs(job_events(SAMPLES, JOB_OK), job_events(SAMPLES, JOB_FAILED))

    first = result["steps"][0]
    assert (first["state"], first["lane"], first["n"]) == ("GetMultiple", "getMultipleFn", 0)
    assert (first["a"]["duration_ms"], first["b"]["duration_ms"], first["diff_ms"]) == (
        6000,
        8000,
        2000,
    )
    assert first["a"]["end_event"].startswith("7403e430")
    assert first["b"]["end_event"].startswith("c458272f")


def test_it_pairs_map_iterations_by_their_item_not_by_position() -> None:
    """Job A processed Ada, Ken, Jean, Tony; job B Margaret, Ken, Radia, Jean, Leslie, Ada (in
    start order): each user's work pairs with the same user's, wherever it ran."""
    result = compare_jobs(job_events(SAMPLES, JOB_OK), job_events(SAMPLES, JOB_FAILED))

    singles = [step for step in result["steps"] if step["lane"] == "processSingleFn"]
    assert [(s["state"], s["item"], s["n"], s["n_b"]) for s in singles] == [
        ("ProcessMultiple", "name=Ada Lovelace", 0, 5),
        ("ProcessMultiple", "name=Ken Thompson", 1, 1),
        ("ProcessMultiple", "name=Jean Sammet", 2, 3),
    ]
    assert [step["diff_ms"] for step in singles] == [-9000, -5000, 0]
    # the answers' own details differ only by the job's name inside the profile's address
    assert {field["path"] for step in singles for field in step["fields"]} == {"profile"}
    # the user's chain of work pairs too: the side effect of B's Ada is the failed one
    effects = {s["item"]: s for s in result["steps"] if s["lane"] == "sideEffectFn"}
    assert effects["name=Ada Lovelace"]["b"]["status"] == "failed"


def test_it_lists_the_steps_only_one_side_has() -> None:
    result = compare_jobs(job_events(SAMPLES, JOB_OK), job_events(SAMPLES, JOB_FAILED))

    only_a = [(step["lane"], step["item"]) for step in result["only_a"]]
    assert only_a == [
        ("processSingleFn", "name=Tony Hoare"), ("sideEffectFn", "name=Tony Hoare"),
        ("postProcessSingleFn", "name=Tony Hoare"), ("postProcessAllFn", None),
    ]  # fmt: skip
    only_b = {(step["lane"], step["item"], step["status"]) for step in result["only_b"]}
    assert ("processSingleFn", "name=Radia Perlman", "ok") in only_b
    assert result["only_b"][-1]["lane"] == "awaiting generateReport"
    assert result["only_b"][-1]["status"] == "pending"
    assert result["totals"]["only_a"] == 4 and result["totals"]["only_b"] == len(only_b)


def test_it_gives_the_detail_fields_that_differ_without_volatile_ones() -> None:
    result = compare_jobs(job_events(SAMPLES, JOB_OK), job_events(SAMPLES, JOB_FAILED))

    fields = {step["lane"] + str(step["n"]): step["fields"] for step in result["steps"]}
    assert fields["processSingleFn2"] == [
        {
            "path": "profile",
            "a": f"{BUCKET}/a6a3a450-6513-470e-a69e-0d37f2a74de4/basic-Jean Sammet.json",
            "b": f"{BUCKET}/b87e4e2b-537d-4128-83a9-e88963b759f5/basic-Jean Sammet.json",
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


def span(fn: str, ms: int | None, *, skew: int | None = None, state: str = "Work") -> dict:
    """A timeline span as h4's timelines give it: `skew_ms` set when its clocks disagree."""
    return {
        "fn": fn, "state": state, "lane": state, "start": "2026-11-20T09:00:00.000Z",
        "end": "2026-11-20T09:00:01.000Z", "duration_ms": ms, "skew_ms": skew, "status": "ok",
        "start_event": None, "end_event": f"{fn}-{ms}-{skew}", "incoming": None,
        "fn_lane": 0, "sub_lane": 0,
    }  # fmt: skip


def test_it_never_subtracts_nor_sums_a_skewed_or_unknown_duration() -> None:
    spans_a = [span("loadFn", 400), span("saveFn", 0, skew=1500), span("sendFn", 100)]
    spans_b = [span("loadFn", 700), span("saveFn", 30), span("sendFn", None)]

    result = compare_spans(spans_a, spans_b, ({}, {}))

    steps = {step["lane"]: step for step in result["steps"]}
    assert steps["loadFn"]["diff_ms"] == 300 and steps["loadFn"]["why"] is None
    assert steps["saveFn"]["diff_ms"] is None
    assert steps["saveFn"]["why"] == "a: clock skew 1500 ms"
    assert steps["saveFn"]["a"]["skew_ms"] == 1500
    assert steps["sendFn"]["diff_ms"] is None and steps["sendFn"]["why"] == "b: no duration"
    totals = result["totals"]
    summed = (totals["a_ms"], totals["b_ms"], totals["diff_ms"], totals["steps"])
    assert summed == (400, 700, 300, 1)
    assert [(left["lane"], left["why"]) for left in totals["left_out"]] == [
        ("saveFn", "a: clock skew 1500 ms"), ("sendFn", "b: no duration"),
    ]  # fmt: skip


def test_it_leaves_a_pending_step_out_of_the_sums() -> None:
    pending = {**span("x", None), "fn": None, "status": "pending", "end_event": None,
               "start_event": "t", "incoming": {"source": "s", "detailType": "go"}}  # fmt: skip

    result = compare_spans([span("runFn", 50), pending], [span("runFn", 80), pending], ({}, {}))

    assert [step["why"] for step in result["steps"]] == [None, "a: no answer; b: no answer"]
    assert result["totals"]["diff_ms"] == 30

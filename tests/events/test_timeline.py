"""Spans, lanes and the execution bar of a job (events.timeline), over the shared samples."""

from __future__ import annotations

import copy
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from events.envelope import NormalisedEvent, parse_envelope
from events.timeline import job_timeline, pair_spans

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
ACCOUNT = "123456789012"
MACHINE = "EventDrivenMachine"
JOB_OK = f"123456789012:us-east-1:{MACHINE}:a6a3a450-6513-470e-a69e-0d37f2a74de4"
JOB_FAILED = f"123456789012:us-east-1:{MACHINE}:b87e4e2b-537d-4128-83a9-e88963b759f5"
JOB_ORIGINAL = f"123456789012:us-east-1:{MACHINE}:ec99108d-db5b-4fab-8f4d-3e27dda1494c"
JOB_ORIGINAL_SHORT = f"123456789012:us-east-1:{MACHINE}:d4b59c05-36cd-48a1-acfc-c3964671120d"
DEMO_COUNTS = {
    "getMultipleFn": 1,
    "processSingleFn": 4,
    "postProcessSingleFn": 4,
    "sideEffectFn": 4,
    "postProcessAllFn": 1,
}
SPAN_KEYS = {"fn", "start", "end", "start_event", "end_event", "incoming", "outgoing", "open"}


def envelopes(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SAMPLES / name).read_text().splitlines() if line.strip()]


def parse(raw: list[dict[str, Any]]) -> list[NormalisedEvent]:
    return [parse_envelope(envelope, default_account=ACCOUNT) for envelope in raw]


def job_events(
    name: str, job: str, raw: list[dict[str, Any]] | None = None
) -> list[NormalisedEvent]:
    return [event for event in parse(raw or envelopes(name)) if event.job == job]


def spans_of(timeline: dict[str, Any], fn: str) -> list[dict[str, Any]]:
    return [span for span in timeline["spans"] if span["fn"] == fn]


def by_end(timeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {span["end_event"][:8]: span for span in timeline["spans"]}


def test_it_answers_the_timeline_shape() -> None:
    timeline = job_timeline(job_events("part1_jobs.jsonl", JOB_OK))

    assert set(timeline) == {"spans", "execution"}
    assert set(timeline["execution"]) == {"start", "stop", "status", "error", "cause"}
    for span in timeline["spans"]:
        assert SPAN_KEYS | {"lane"} <= set(span)
        assert span["start"].endswith("Z") and span["end"].endswith("Z")
        assert isinstance(span["lane"], int)


def test_it_pairs_spans_by_incoming_id() -> None:
    events = job_events("part1_jobs.jsonl", JOB_OK)
    timeline = job_timeline(events)

    assert Counter(span["fn"] for span in timeline["spans"]) == DEMO_COUNTS
    first = spans_of(timeline, "getMultipleFn")[0]
    assert first["start_event"] == "1012f037-b64c-4422-8c38-fb2918f135d2"
    assert first["end_event"] == "7403e430-ec66-4787-95e7-61d17731af10"
    assert (first["start"], first["end"]) == ("2026-11-20T09:00:11Z", "2026-11-20T09:00:17Z")
    assert first["duration_ms"] == 6000
    assert first["step"] == "GetMultiple"
    assert first["incoming"] == {"source": "project", "detailType": "getUsers"}
    assert first["outgoing"] == {"source": "project", "detailType": "done"}
    assert by_end(timeline)["c7ac1491"]["start_event"].startswith("b0c4312d")
    assert by_end(timeline)["d37ee915"]["start_event"].startswith("ef02090b")


def test_it_pairs_every_span_with_the_event_it_names() -> None:
    events = parse(envelopes("part1_jobs.jsonl"))
    named = {event.id: event.correlation.incoming_id for event in events if event.fn}

    jobs = defaultdict(list)
    for event in events:
        jobs[event.job].append(event)

    spans = [span for job, members in jobs.items() if job for span in pair_spans(members)]

    assert len(spans) == len(named) == 44
    assert all(span.start_event.id == named[span.end_event.id] for span in spans)
    assert {span.paired_by for span in spans} == {"id"}


def test_it_pairs_original_meta_by_task_token() -> None:
    timeline = job_timeline(job_events("part1_jobs_original_meta.jsonl", JOB_ORIGINAL))
    spans = by_end(timeline)

    assert Counter(span["fn"] for span in timeline["spans"]) == DEMO_COUNTS
    assert {span["paired_by"] for span in timeline["spans"]} == {"token"}
    assert spans["902a174f"]["start_event"].startswith("6822a6b2")
    assert spans["bd4aeab0"]["start_event"].startswith("9c461cb5")
    assert spans["65151c40"]["start_event"].startswith("21870f0b")
    assert spans["0c228266"]["start_event"].startswith("bd4aeab0")
    assert spans["83b852d7"]["start_event"].startswith("b1b43d07")
    assert spans["46dc1a26"]["start_event"].startswith("d945bbf3")
    assert not any(span["open"] for span in timeline["spans"])


def test_it_pairs_a_job_without_names_by_token() -> None:
    timeline = job_timeline(job_events("part1_jobs_original_meta.jsonl", JOB_ORIGINAL_SHORT))

    assert [(span["fn"], span["start_event"][:8]) for span in timeline["spans"]] == [
        ("getMultipleFn", "b6d3e879"),
        ("postProcessAllFn", "5790db4f"),
    ]


def without_task_tokens(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    raw = copy.deepcopy(raw)
    for envelope in raw:
        envelope["detail"].pop("TaskToken", None)
    return raw


def test_it_pairs_by_order_without_task_tokens() -> None:
    raw = without_task_tokens(envelopes("part1_jobs_original_meta.jsonl"))
    events = job_events("", JOB_ORIGINAL, raw)
    spans = pair_spans(events)

    assert {span.paired_by for span in spans} == {"order"}
    assert Counter(span.fn for span in spans) == DEMO_COUNTS
    for span in spans:
        assert span.start_event is not None and span.start <= span.end
        incoming = span.end_event.incoming
        assert (span.start_event.source, span.start_event.detail_type) == (
            incoming["source"],
            incoming["detailType"],
        )
    starts = defaultdict(list)
    for span in spans:
        starts[span.fn].append(span.start_event.id)
    assert all(len(ids) == len(set(ids)) for ids in starts.values())
    ends = {span.end_event.id[:8]: span.start_event.id[:8] for span in spans}
    assert ends["bd4aeab0"] == "9c461cb5"
    assert ends["65151c40"] == "21870f0b"
    assert ends["46dc1a26"] == "d945bbf3"


def test_it_pairs_a_same_second_trigger_that_arrived_after_its_end() -> None:
    raw = without_task_tokens(envelopes("part1_jobs_original_meta.jsonl"))
    events = job_events("", JOB_ORIGINAL_SHORT, raw)
    report = next(event for event in events if event.detail_type == "generateReport")
    done = next(event for event in events if event.fn == "postProcessAllFn")
    swapped = [event for event in events if event.id != report.id]
    swapped.insert(swapped.index(done) + 1, _at(report, done.time))

    span = next(span for span in pair_spans(swapped) if span.fn == "postProcessAllFn")

    assert span.start_event is not None and span.start_event.id == report.id


def _at(event: NormalisedEvent, time: Any) -> NormalisedEvent:
    raw = dict(event.raw, time=time.isoformat().replace("+00:00", "Z"))
    return parse_envelope(raw, default_account=ACCOUNT)


def test_it_keeps_an_open_span_when_the_trigger_is_missing() -> None:
    raw = [e for e in envelopes("part1_jobs.jsonl") if e["id"][:8] not in ("1012f037", "a5aa3c81")]
    timeline = job_timeline(job_events("", JOB_OK, raw))
    spans = by_end(timeline)

    getter = spans["7403e430"]
    assert getter["open"] is True and getter["start_event"] is None
    assert getter["start"] == "2026-11-20T09:00:11Z"
    assert getter["paired_by"] is None
    assert spans["72158370"]["open"] is True
    assert spans["b0c4312d"]["start_event"].startswith("9c1caaf7")
    assert sum(span["open"] for span in timeline["spans"]) == 2


def test_it_keeps_an_open_span_when_the_work_names_no_trigger() -> None:
    raw = copy.deepcopy(envelopes("part1_jobs.jsonl"))
    done = next(e for e in raw if e["id"].startswith("7403e430"))
    del done["detail"]["meta"]["incoming"]

    span = spans_of(job_timeline(job_events("", JOB_OK, raw)), "getMultipleFn")[0]

    assert span["open"] is True and span["incoming"] is None
    assert span["outgoing"] == {"source": "project", "detailType": "done"}


def test_it_stacks_concurrent_spans_of_one_fn() -> None:
    timeline = job_timeline(job_events("part1_jobs.jsonl", JOB_OK))
    singles = spans_of(timeline, "processSingleFn")

    assert [span["sub_lane"] for span in singles[:2]] == [0, 1]
    assert singles[0]["lane"] != singles[1]["lane"]
    assert len({span["fn_lane"] for span in singles}) == 1
    assert {span["lane"] for span in singles} == {1, 2}
    assert spans_of(timeline, "getMultipleFn")[0]["lane"] == 0


def test_it_never_overlaps_spans_in_one_lane() -> None:
    for name in ("part1_jobs.jsonl", "part1_jobs_original_meta.jsonl"):
        for job in {event.job for event in parse(envelopes(name)) if event.job}:
            rows = defaultdict(list)
            for span in job_timeline(job_events(name, job))["spans"]:
                rows[span["lane"]].append(span)
            for spans in rows.values():
                assert len({span["fn"] for span in spans}) == 1
                ordered = sorted(spans, key=lambda span: span["start"])
                pairs = zip(ordered, ordered[1:], strict=False)
                assert all(a["end"] <= b["start"] for a, b in pairs)


def test_it_orders_lane_groups_by_first_start() -> None:
    timeline = job_timeline(job_events("part1_jobs.jsonl", JOB_OK))
    first_lane = {}
    for span in sorted(timeline["spans"], key=lambda span: span["lane"]):
        first_lane.setdefault(span["fn"], span["lane"])

    assert list(first_lane) == [
        "getMultipleFn",
        "processSingleFn",
        "sideEffectFn",
        "postProcessSingleFn",
        "postProcessAllFn",
    ]


def test_it_reports_the_failed_execution() -> None:
    execution = job_timeline(job_events("part1_jobs.jsonl", JOB_FAILED))["execution"]

    assert execution == {
        "start": "2026-11-20T09:01:54Z",
        "stop": "2026-11-20T09:02:41Z",
        "status": "FAILED",
        "error": "States.TaskFailed",
        "cause": "The state PostProcessAll failed: upstream timed out",
    }


def test_it_prefers_a_terminal_status_whatever_the_order() -> None:
    failed, running = reversed(parse(envelopes("stepfunctions_status.jsonl")))
    late_running = _at(running, failed.time.replace(second=59))

    execution = job_timeline([failed, late_running])["execution"]

    assert execution["status"] == "FAILED"
    assert execution["error"] == "States.Runtime"
    assert execution["start"] == "2019-02-26T23:54:31.984Z"
    assert execution["stop"] == "2019-02-26T23:54:36.881Z"


def test_it_leaves_a_running_execution_without_stop() -> None:
    running = job_events("part1_jobs.jsonl", JOB_OK)[:5]

    execution = job_timeline(running)["execution"]

    assert (execution["status"], execution["stop"]) == ("RUNNING", None)
    assert execution["start"] == "2026-11-20T09:00:11Z"


def test_it_spans_first_to_last_event_without_status_events() -> None:
    events = [e for e in job_events("part1_jobs.jsonl", JOB_OK) if e.source != "aws.states"]

    execution = job_timeline(events)["execution"]

    assert execution == {
        "start": "2026-11-20T09:00:11Z",
        "stop": "2026-11-20T09:00:51Z",
        "status": None,
        "error": None,
        "cause": None,
    }


def test_it_answers_an_empty_job() -> None:
    assert job_timeline([]) == {
        "spans": [],
        "execution": {"start": None, "stop": None, "status": None, "error": None, "cause": None},
    }

"""Spans, lanes and the execution bar of a job (events.domain.timeline), over the shared samples."""

from __future__ import annotations

import copy
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from events.domain.envelope import NormalisedEvent, parse_envelope
from events.domain.timeline import job_timeline, pair_spans

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
    return {span["end_event"][:8]: span for span in timeline["spans"] if span["end_event"]}


def test_it_answers_the_timeline_shape() -> None:
    timeline = job_timeline(job_events("part1_jobs.jsonl", JOB_OK))

    assert set(timeline) == {"spans", "execution", "critical_path"}
    assert set(timeline["execution"]) == {"start", "stop", "status", "error", "cause"}
    for span in timeline["spans"]:
        assert SPAN_KEYS | {"lane"} <= set(span)
        assert span["start"].endswith("Z") and span["end"].endswith("Z")
        assert span["lane"] == span["state"]  # every sample event names its state
        assert isinstance(span["row"], int)
        assert span["status"] == "ok"


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
    assert singles[0]["row"] != singles[1]["row"]
    assert len({span["fn_lane"] for span in singles}) == 1
    assert {span["row"] for span in singles} == {1, 2}
    assert spans_of(timeline, "getMultipleFn")[0]["row"] == 0


def test_it_never_overlaps_spans_in_one_lane() -> None:
    for name in ("part1_jobs.jsonl", "part1_jobs_original_meta.jsonl"):
        for job in {event.job for event in parse(envelopes(name)) if event.job}:
            rows = defaultdict(list)
            for span in job_timeline(job_events(name, job))["spans"]:
                rows[span["row"]].append(span)
            for spans in rows.values():
                assert len({span["fn"] for span in spans}) == 1
                ordered = sorted(spans, key=lambda span: span["start"])
                pairs = zip(ordered, ordered[1:], strict=False)
                assert all(a["end"] <= b["start"] for a, b in pairs)


def test_it_orders_lane_groups_by_first_start() -> None:
    timeline = job_timeline(job_events("part1_jobs.jsonl", JOB_OK))
    first_lane = {}
    for span in sorted(timeline["spans"], key=lambda span: span["row"]):
        first_lane.setdefault(span["fn"], span["row"])

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
        "critical_path": [],
    }


# --- status, pending triggers and the critical path (DESIGN section 9, "Job view") ------------


def path_of(timeline: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    """(fn, end event's first 8 characters) of each span on the critical path."""
    spans = timeline["spans"]
    return [(spans[i]["fn"], (spans[i]["end_event"] or "")[:8]) for i in timeline["critical_path"]]


def test_it_marks_the_trigger_the_failed_job_waited_for_pending() -> None:
    timeline = job_timeline(job_events("part1_jobs.jsonl", JOB_FAILED))

    pending = [span for span in timeline["spans"] if span["status"] == "pending"]

    assert len(pending) == 1
    assert pending[0] | {"fn_lane": 0} == {
        "fn": None, "start": "2026-11-20T09:02:35Z", "end": None,
        "start_event": "316a2a12-7243-447c-ab64-c5c48aa1a59c", "end_event": None,
        "incoming": {"source": "project", "detailType": "generateReport"},
        "outgoing": None, "open": False, "lane": "PostProcessAll", "fn_lane": 0,
        "sub_lane": 0, "step": "PostProcessAll", "duration_ms": None, "skew_ms": None,
        "approx": True, "paired_by": None, "status": "pending", "state": "PostProcessAll",
        "colour": pending[0]["colour"], "row": pending[0]["row"],
    }  # fmt: skip
    by_state = {span["state"]: span["colour"] for span in timeline["spans"]}
    assert len(set(by_state.values())) == len(by_state) == 3  # each state its own colour
    assert set(by_state.values()) <= set(range(8))
    assert pending[0]["fn_lane"] > max(s["fn_lane"] for s in timeline["spans"] if s["fn"])


def test_it_marks_the_work_running_when_the_execution_failed() -> None:
    timeline = job_timeline(job_events("part1_jobs.jsonl", JOB_FAILED))

    failed = [span for span in timeline["spans"] if span["status"] == "failed"]

    assert [(span["fn"], span["end_event"][:8]) for span in failed] == [
        ("sideEffectFn", "b5b94af3")  # 09:02:23 to 09:02:42, across the stop at 09:02:41
    ]
    finished = by_end(timeline)["72ee6a2e"]  # ended at 09:02:36, before the failure
    assert finished["status"] == "ok"


def test_it_marks_nothing_failed_or_pending_in_a_succeeded_job() -> None:
    timeline = job_timeline(job_events("part1_jobs.jsonl", JOB_OK))

    assert {span["status"] for span in timeline["spans"]} == {"ok"}
    assert all(span["fn"] for span in timeline["spans"])


def test_it_awaits_a_profile_no_single_fn_answered() -> None:
    raw = [e for e in envelopes("part1_jobs.jsonl") if not e["id"].startswith("ec032e6b")]

    timeline = job_timeline(job_events("", JOB_FAILED, raw))

    pending = {span["start_event"][:8]: span for span in timeline["spans"] if span["fn"] is None}
    assert set(pending) == {"aa50b96f", "316a2a12"}
    assert pending["aa50b96f"]["lane"] == "ProcessMultiple"
    assert pending["aa50b96f"]["incoming"]["detailType"] == "getUserProfile"
    assert pending["aa50b96f"]["fn_lane"] != pending["316a2a12"]["fn_lane"]
    assert pending["aa50b96f"]["status"] == "pending" and pending["aa50b96f"]["end"] is None


def test_it_awaits_the_get_users_of_a_job_that_failed_in_get_multiple() -> None:
    raw = envelopes("part1_jobs.jsonl")
    name = JOB_FAILED.rsplit(":", 1)[1]
    kept = [e for e in raw if name not in json.dumps(e) or e["time"] < "2026-11-20T09:02:00Z"]
    failure = copy.deepcopy(next(e for e in raw if e["id"].startswith("797b1538")))
    failure["time"] = "2026-11-20T09:02:01Z"
    failure["detail"]["stopDate"] = 1795165321000

    timeline = job_timeline(job_events("", JOB_FAILED, [*kept, failure]))

    assert [(s["lane"], s["start_event"][:8]) for s in timeline["spans"]] == [
        ("GetMultiple", "bab5b373")
    ]
    assert timeline["critical_path"] == [0]


def test_it_does_not_await_events_nothing_answers() -> None:
    timeline = job_timeline(job_events("part1_jobs.jsonl", JOB_OK))

    awaited = {span["lane"] for span in timeline["spans"] if span["status"] == "pending"}

    assert awaited == set()  # the `start`, the `done` callbacks, the side effects' answers


def test_it_follows_the_critical_path_of_the_samples() -> None:
    timeline = job_timeline(job_events("part1_jobs.jsonl", JOB_OK))

    assert path_of(timeline) == [
        ("getMultipleFn", "7403e430"),  # 09:00:11, its `done` releases the state machine
        ("processSingleFn", "b0c4312d"),
        ("postProcessSingleFn", "ad1b72db"),  # its `done` frees the Map for the next profile
        ("processSingleFn", "149e259b"),
        ("postProcessSingleFn", "325b55dd"),
        ("postProcessAllFn", "d37ee915"),  # 09:00:47, then the execution stops at :48
    ]


def test_it_ends_the_critical_path_of_a_failed_job_at_what_it_waited_for() -> None:
    timeline = job_timeline(job_events("part1_jobs.jsonl", JOB_FAILED))

    path = path_of(timeline)

    assert path[0] == ("getMultipleFn", "c458272f")
    assert path[-2:] == [("postProcessSingleFn", "3f3f37ea"), (None, "")]
    last = timeline["spans"][timeline["critical_path"][-1]]
    assert (last["lane"], last["incoming"]["detailType"]) == ("PostProcessAll", "generateReport")
    assert ("sideEffectFn", "b5b94af3") not in path  # it ended after the failure


ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:Built:job-1"
T0 = 1795165200000  # epoch ms


def built(event_id: str, detail_type: str, at: int, *, fn: str | None = None, cause=None):
    """An envelope of the hand-built job at `at` ms (the kit's clock); `cause` is the trigger."""
    detail: dict[str, Any] = {"execution": ARN, "meta": {"emittedAt": at}}
    if fn:
        detail["meta"] |= {"fn": fn, "outgoing": {"source": "project", "detailType": detail_type}}
    if cause:
        incoming = {"source": "project", "detailType": cause[1], "id": cause[0]}
        detail["meta"]["incoming"] = incoming
    if fn is None:
        detail["TaskToken"] = f"token-{event_id}"
    return {
        "version": "0", "id": event_id, "detail-type": detail_type, "source": "project",
        "account": ACCOUNT, "time": "2026-11-20T09:00:00Z", "region": "us-east-1",
        "resources": [], "detail": detail,
    }  # fmt: skip


def test_it_follows_the_longest_chain_of_a_hand_built_job() -> None:
    raw = [
        built("s1", "fetch", T0),  # the state machine asks for a fetch
        built("f1", "fetched", T0 + 100, fn="fetcher", cause=("s1", "fetch")),
        built("q1", "quick", T0 + 100, fn="quicky", cause=("s1", "fetch")),  # a short branch
        built("d1", "done", T0 + 900, fn="slow", cause=("f1", "fetched")),  # back to the SM
        built("d2", "done", T0 + 300, fn="fast", cause=("f1", "fetched")),
        built("s2", "report", T0 + 950),  # the SM, released by d1 (the latest callback)
        built("r1", "reported", T0 + 1200, fn="reporter", cause=("s2", "report")),
        built("x1", "late", T0 + 5000, fn="async", cause=("r1", "reported")),
    ]

    timeline = job_timeline(parse(raw))

    assert path_of(timeline) == [
        ("fetcher", "f1"), ("slow", "d1"), ("reporter", "r1"), ("async", "x1")
    ]  # fmt: skip
    assert {span["status"] for span in timeline["spans"]} == {"ok"}


def test_it_breaks_critical_path_ties_by_more_spans_then_order() -> None:
    raw = [
        built("s1", "go", T0),
        built("a1", "a-done", T0 + 500, fn="alone", cause=("s1", "go")),
        built("b1", "half", T0 + 200, fn="first", cause=("s1", "go")),
        built("b2", "b-done", T0 + 500, fn="second", cause=("b1", "half")),
        built("c1", "c-done", T0 + 500, fn="other", cause=("s1", "go")),
    ]

    timeline = job_timeline(parse(raw))

    assert path_of(timeline) == [("first", "b1"), ("second", "b2")]
    without_chain = job_timeline(parse([raw[0], raw[1], raw[4]]))
    assert path_of(without_chain) == [("alone", "a1")]


# --- clocks that disagree (issue 25 "Time"; tests/events/skew_traffic.py) ---------------------


def skewed_loop(name: str, seconds: list[int]) -> list[NormalisedEvent]:
    """Each second, the state machine puts generateReport (delivered 300 ms into the second) and
    postProcessAllFn answers it 2 ms into it, naming no trigger id (the order rule)."""
    from . import skew_traffic as traffic

    events = []
    for second in seconds:
        trigger = traffic.triggers(name, second)[3]
        answer = traffic.answers(name, [None, trigger], second)[0]
        events.append(parse_envelope(trigger, default_account=ACCOUNT,
                                     delivered_at=second * 1000 + 300))  # fmt: skip
        events.append(parse_envelope(answer, default_account=ACCOUNT))
    return events


def test_it_pairs_each_answer_stamped_before_its_triggers_delivery_with_that_trigger() -> None:
    events = skewed_loop("loop", [1_790_000_000, 1_790_000_001])

    spans = pair_spans(events)

    assert [(s.start_event.id, s.end_event.id) for s in spans] == [
        (events[0].id, events[1].id),
        (events[2].id, events[3].id),
    ]
    assert all(s.skew_ms == 298 and s.duration_ms is None for s in spans)


def test_a_span_running_backwards_has_skew_and_no_duration() -> None:
    events = skewed_loop("loop", [1_790_000_000])

    (span,) = job_timeline(events)["spans"]

    assert (span["skew_ms"], span["duration_ms"]) == (298, None)
    assert span["end"] == span["start"] == "2026-09-21T14:13:20.300Z"
    assert span["paired_by"] == "order"


def test_the_order_puts_an_answer_after_its_trigger_even_when_ids_are_forged() -> None:
    from events.domain.timeline import in_order

    events = skewed_loop("loop", [1_790_000_000])
    assert [e.id for e in in_order(events)] == [events[0].id, events[1].id]
    # two events naming each other as trigger: listed once each, nothing loops
    a = copy.deepcopy(skewed_loop("forged", [1_790_000_000])[1].raw)
    b = copy.deepcopy(a) | {"id": "forged-b"}
    b["detail"]["meta"]["incoming"]["id"] = a["id"]
    a["detail"]["meta"]["incoming"]["id"] = "forged-b"
    forged = parse([a, b])
    assert sorted(e.id for e in in_order(forged)) == sorted([a["id"], "forged-b"])

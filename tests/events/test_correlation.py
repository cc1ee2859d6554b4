"""Which job an event belongs to: DESIGN section 2's four rules, in order (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from events.domain.correlation import correlate, parse_execution_arn

STANDARD = "arn:aws:states:us-east-1:123456789012:execution:Machine:run-1"
EXPRESS = (
    "arn:aws:states:us-east-1:123456789012:express:Fast:run-2:5a1b2c3d-0000-4000-8000-00000000"
)
MAP_CHILD = "arn:aws:states:us-east-1:123456789012:execution:Machine/MapRun1:child-7"
OTHER = "arn:aws:states:us-east-1:123456789012:execution:Other:run-9"


def job(detail: dict, source: str = "project") -> str | None:
    return correlate(detail, source=source, account="123456789012", region="us-east-1").job


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (STANDARD, ("Machine", "run-1")),
        (EXPRESS, ("Fast", "run-2")),
        (MAP_CHILD, ("Machine/MapRun1", "child-7")),
        ("arn:aws:states:us-east-1:1:stateMachine:Machine", None),
        ("arn:aws:lambda:us-east-1:1:function:f:x:y", None),
        ("arn:aws:states:us-east-1:1:execution:Machine:run:extra", None),
        ("not an arn", None),
        (42, None),
    ],
)
def test_it_parses_execution_arns(arn, expected):
    assert parse_execution_arn(arn) == expected


def test_it_uses_rule_1_detail_execution():
    assert job({"execution": STANDARD}) == "123456789012:us-east-1:Machine:run-1"
    assert job({"execution": EXPRESS}) == "123456789012:us-east-1:Fast:run-2"


def test_it_uses_rule_2_status_events_with_their_status_and_times():
    detail = {
        "executionArn": STANDARD,
        "status": "FAILED",
        "startDate": 1795165211000,
        "stopDate": 1795165221000,
        "error": "Boom",
        "cause": "it broke",
    }
    found = correlate(detail, source="aws.states", account="123456789012", region="us-east-1")
    assert found.job == "123456789012:us-east-1:Machine:run-1"
    execution = found.execution
    assert (execution.status, execution.error, execution.cause) == ("FAILED", "Boom", "it broke")
    assert execution.started_at == datetime.fromtimestamp(1795165211, tz=UTC)
    assert execution.stopped_at == datetime.fromtimestamp(1795165221, tz=UTC)


def test_it_uses_rule_3_the_kit_context():
    assert (
        job({"executionContext": {"id": STANDARD, "name": "run-1"}})
        == "123456789012:us-east-1:Machine:run-1"
    )


def test_it_uses_rule_3_the_whole_context_object():
    context = {"context": {"Execution": {"Id": EXPRESS, "Name": "run-2"}}}
    assert job({"executionContext": context}) == "123456789012:us-east-1:Fast:run-2"


def test_it_gives_a_trimmed_context_the_unknown_machine():
    assert job({"executionContext": {"name": "run-3"}}) == "123456789012:us-east-1:unknown:run-3"


def test_it_gives_a_trimmed_context_the_meta_state_machine():
    detail = {"executionContext": {"name": "run-3"}, "meta": {"stateMachine": "Machine"}}
    assert job(detail) == "123456789012:us-east-1:Machine:run-3"


def test_it_uses_rule_4_meta_state_machine_and_job():
    assert (
        job({"meta": {"stateMachine": "Machine", "job": "run-4"}})
        == "123456789012:us-east-1:Machine:run-4"
    )


def test_it_applies_the_first_rule_that_matches():
    detail = {
        "execution": STANDARD,
        "executionArn": OTHER,
        "executionContext": {"id": OTHER},
        "meta": {"stateMachine": "Other", "job": "x"},
    }
    assert job(detail) == "123456789012:us-east-1:Machine:run-1"
    detail.pop("execution")
    assert job(detail, source="aws.states") == "123456789012:us-east-1:Other:run-9"


def test_it_falls_through_a_broken_rule_to_the_next():
    detail = {"execution": "garbage", "meta": {"stateMachine": "Machine", "job": "run-4"}}
    assert job(detail) == "123456789012:us-east-1:Machine:run-4"


def test_it_keeps_map_run_children_apart_from_their_parent():
    assert job({"execution": MAP_CHILD}) == "123456789012:us-east-1:Machine/MapRun1:child-7"


@pytest.mark.parametrize(
    "detail",
    [
        {},
        {"meta": {"stateMachine": "Machine"}},
        {"meta": {"job": "x:y", "stateMachine": "Machine"}},
        {"meta": "not a dict"},
        {"executionContext": {"name": "a:b"}},
        {"executionContext": "x"},
    ],
)
def test_it_leaves_uncorrelated_events_without_a_job(detail):
    assert job(detail) is None


def test_it_reads_fn_incoming_and_outgoing_from_meta():
    meta = {
        "fn": "processSingleFn",
        "incoming": {"source": "project", "detailType": "getUserProfile", "id": "e-1"},
        "outgoing": {"source": "project", "detailType": "getUserCookies"},
    }
    found = correlate(
        {"execution": STANDARD, "meta": meta}, source="project", account="1", region="r"
    )
    assert found.fn == "processSingleFn"
    assert found.incoming == {"source": "project", "detailType": "getUserProfile"}
    assert found.outgoing == {"source": "project", "detailType": "getUserCookies"}
    assert found.incoming_id == "e-1"

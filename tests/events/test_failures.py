"""events.domain.failures: masking real Step Functions and Lambda causes, fingerprints, groups."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from events.domain.failures import (
    Failure,
    failed_state,
    fingerprint,
    group_failures,
    normalise_cause,
)

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def lambda_cause(message: str, request_id: str, error_type: str = "OrderNotFound") -> str:
    """The cause of `States.TaskFailed` for a Lambda that raised, as Step Functions gives it."""
    return json.dumps({
        "errorMessage": message, "errorType": error_type, "requestId": request_id,
        "stackTrace": [
            f'  File "/var/task/handler.py", line {40 + len(message) % 7}, in handler\n'
            "    order = load(event[\"orderId\"])\n",
            '  File "/var/task/orders.py", line 17, in load\n    raise OrderNotFound(...)\n',
        ],
    })  # fmt: skip


def test_it_reduces_a_lambda_cause_to_its_type_and_masked_message():
    a = lambda_cause(
        "Order 8412931 not found in orders-prod", "2f3c1b9e-7a6d-4c0e-9b1f-3e2d5c4a1b0f"
    )
    b = lambda_cause("Order 77 not found in orders-prod", "c0ffee00-1111-4222-8333-944445555666")

    assert normalise_cause(a) == "OrderNotFound: Order <n> not found in orders-prod"
    assert normalise_cause(a) == normalise_cause(b)


def test_it_keeps_different_error_types_apart():
    a = lambda_cause("Order 1 not found", "2f3c1b9e-7a6d-4c0e-9b1f-3e2d5c4a1b0f")
    b = lambda_cause("Order 1 not found", "2f3c1b9e-7a6d-4c0e-9b1f-3e2d5c4a1b0f", "KeyError")

    assert normalise_cause(a) != normalise_cause(b)


def test_it_masks_the_event_id_of_a_states_runtime_cause():
    cause = (
        "An error occurred while executing the state 'Has Enricher?' (entered at the event id #{})"
    )

    assert normalise_cause(cause.format(2)) == cause.format("<n>")


def test_it_masks_an_executions_name_region_and_account_but_keeps_its_state_machine():
    cause = (
        "Execution arn:aws:states:eu-west-1:123456789012:execution:Orders:ord-20261120-8412 "
        "already exists"
    )

    assert normalise_cause(cause) == (
        "Execution arn:aws:states:<region>:<account>:execution:Orders:<id> already exists"
    )


def test_it_masks_timestamps_uuids_hex_ids_and_epochs():
    cause = (
        'Lambda.Unknown: returned {"errorMessage": "2026-11-20T08:21:04.123Z '
        '5f2b8c1e-0d3a-4b6f-9e7d-1a2b3c4d5e6f Task timed out after 3.00 seconds"} '
        "trace 1-6757a2f1-0a1b2c3d4e5f60718293a4b5 at 1795165200000 (1795165200)"
    )

    assert normalise_cause(cause) == (
        'Lambda.Unknown: returned {"errorMessage": "<time> <uuid> Task timed out after <n> '
        'seconds"} trace <n>-<hex>-<hex> at <time> (<time>)'
    )


def test_it_keeps_digits_that_are_part_of_a_name():
    assert normalise_cause("OrdersV2 step s3 failed for ORD12345") == (
        "OrdersV2 step s3 failed for ORD<n>"
    )


def test_an_absent_cause_is_empty_and_a_long_one_is_cut():
    assert normalise_cause(None) == ""
    assert len(normalise_cause("x" * 5000)) == 500


def test_a_fingerprint_is_stable_and_differs_by_each_part():
    base = fingerprint("Orders", "Ship", "States.Timeout", "")

    assert base == fingerprint("Orders", "Ship", "States.Timeout", "")
    assert len(base) == 16 and int(base, 16) >= 0
    others = {
        fingerprint("Payments", "Ship", "States.Timeout", ""),
        fingerprint("Orders", None, "States.Timeout", ""),
        fingerprint("Orders", "Ship", "States.TaskFailed", ""),
        fingerprint("Orders", "Ship", "States.Timeout", "x"),
    }
    assert base not in others and len(others) == 4


def span(state, status, start, kind="span"):
    return {"state": state, "step": None, "status": status, "start": start, "kind": kind}


def test_the_failed_state_is_the_pending_span_else_the_latest_failed_one():
    spans = [
        span("Validate", "ok", "2026-11-20T08:00:01Z"),
        span("Charge", "failed", "2026-11-20T08:00:02Z"),
        span("Ship", "pending", "2026-11-20T08:00:03Z"),
        span(None, "failed", "2026-11-20T08:00:09Z", kind="execution"),  # a child execution
    ]

    assert failed_state(spans, "TIMED_OUT") == "Ship"
    assert failed_state(spans[:2], "FAILED") == "Charge"
    assert failed_state(spans[:1], "FAILED") is None
    assert failed_state(spans, "SUCCEEDED") is None


def failure(job, at, *, state="Ship", error="States.TaskFailed", cause=None, machine="Orders"):
    return Failure(job=job, state_machine=machine, account="123456789012", state=state,
                   error=error, cause=cause, at=at)  # fmt: skip


def test_it_groups_by_key_counts_trends_and_keeps_the_newest_samples():
    cause = lambda_cause("Order {} not found", "2f3c1b9e-7a6d-4c0e-9b1f-3e2d5c4a1b0f")
    found = [
        failure(f"j{n}", T0 + timedelta(minutes=10 * n), cause=cause.replace("{}", str(1000 + n)))
        for n in range(7)
    ] + [
        failure("t1", T0 + timedelta(minutes=5), error="States.Timeout", state="Charge"),
        failure("old", T0 - timedelta(minutes=1)),
        failure("late", T0 + timedelta(hours=2)),
    ]

    groups = group_failures(found, since=T0, until=T0 + timedelta(hours=2), trend_buckets=4)

    assert [(g.error, g.count) for g in groups] == [("States.TaskFailed", 7), ("States.Timeout", 1)]
    first = groups[0]
    assert first.cause == "OrderNotFound: Order <n> not found"
    assert (first.first_seen, first.last_seen) == (T0, T0 + timedelta(minutes=60))
    assert first.sample_jobs == ["j6", "j5", "j4", "j3", "j2"]
    assert first.trend == [3, 3, 1, 0]
    assert first.id == fingerprint("Orders", "Ship", "States.TaskFailed", first.cause)

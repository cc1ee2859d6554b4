"""Function failure rates (events.domain.fn_failures, on GET /api/architecture): a run failed
when its job failed while it ran, as the timeline colours a span red."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.domain.architecture import infer_architecture
from events.domain.envelope import parse_envelope
from events.domain.fn_failures import failed_runs, with_failure_rates

from . import flows
from .conftest import ingest_bodies

START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
STEPS = [flows.Step("chargeFn", "orderPlaced", "payment.charged", 3_000),
         flows.Step("shipFn", "payment.charged", "order.shipped", 200)]  # fmt: skip


def pay_job(n: int, *, fail_after_ms: int | None = None, status: str = "FAILED") -> list[dict]:
    """A PayFlow job: chargeFn 3 s, then shipFn 200 ms; ends `status` after `fail_after_ms`."""
    envelopes = flows.job_envelopes(
        machine="PayFlow", start=START + timedelta(minutes=n), trigger="orderPlaced", steps=STEPS
    )
    if fail_after_ms is not None:
        stop = envelopes[-1]["detail"]
        stop["status"], stop["error"] = status, "Card.Declined"
        stop["stopDate"] = stop["startDate"] + fail_after_ms
    return envelopes


def events_of(envelopes: list[dict]):
    return [parse_envelope(envelope, default_account=flows.ACCOUNT_A) for envelope in envelopes]


def test_a_run_failed_when_its_job_failed_while_it_ran():
    assert failed_runs(events_of(pay_job(0, fail_after_ms=1_500))) == {"chargeFn": 1}
    assert failed_runs(events_of(pay_job(0, fail_after_ms=3_100))) == {"shipFn": 1}
    assert failed_runs(events_of(pay_job(0, fail_after_ms=1_500, status="TIMED_OUT"))) == {
        "chargeFn": 1}  # fmt: skip
    assert failed_runs(events_of(pay_job(0))) == {}  # succeeded: nothing failed


def test_function_nodes_get_failed_runs_and_a_rate_and_only_they():
    jobs = [pay_job(n) for n in range(3)] + [pay_job(3, fail_after_ms=1_500)]
    graph = infer_architecture(events_of([e for job in jobs for e in job]))

    rated = with_failure_rates(graph, [events_of(jobs[3])])

    nodes = {node["id"]: node for node in rated["nodes"]}
    assert (nodes["fn:chargeFn"]["failed"], nodes["fn:chargeFn"]["failure_rate"]) == (1, 0.25)
    assert (nodes["fn:shipFn"]["failed"], nodes["fn:shipFn"]["failure_rate"]) == (0, 0.0)
    assert all("failed" not in node for node in rated["nodes"] if node["kind"] != "fn")
    assert rated["edges"] == graph["edges"] and rated["failures_sampled"] is False


@pytest.mark.django_db
def test_the_architecture_api_gives_function_failure_rates_for_the_team(client, member, outsider):
    jobs = [pay_job(n) for n in range(3)] + [pay_job(3, fail_after_ms=1_500)]
    ingest_bodies(flows.bodies([e for job in jobs for e in job]))
    since = (START - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")

    client.force_login(member)
    body = client.get(f"/api/architecture?since={since}").json()
    client.force_login(outsider)
    theirs = client.get(f"/api/architecture?since={since}").json()

    nodes = {node["id"]: node for node in body["nodes"]}
    assert (nodes["fn:chargeFn"]["failed"], nodes["fn:chargeFn"]["failure_rate"]) == (1, 0.25)
    assert nodes["fn:shipFn"]["failure_rate"] == 0.0 and body["failures_sampled"] is False
    assert "fn:chargeFn" not in {node["id"] for node in theirs["nodes"]}


@pytest.mark.django_db
def test_it_reads_at_most_failed_jobs_and_says_the_rates_are_sampled(client, member, monkeypatch):
    monkeypatch.setattr("events.read.fn_failures.FAILED_JOBS", 2)
    jobs = [pay_job(n, fail_after_ms=1_500) for n in range(4)]
    ingest_bodies(flows.bodies([e for job in jobs for e in job]))
    since = (START - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")

    client.force_login(member)
    body = client.get(f"/api/architecture?since={since}").json()

    charge = next(node for node in body["nodes"] if node["id"] == "fn:chargeFn")
    assert body["failures_sampled"] is True
    assert (charge["failed"], charge["count"]) == (2, 4)  # the two newest failed jobs read

"""Real execution shapes end to end (DESIGN section 10): status events as Step Functions sends
them, through moto's SQS and the real worker, read back through the API and the pages.

moto's receive slows down with the queue's depth (FACTS.md), so the traffic is fed in small
rounds: send a few dozen, let the worker drain them, send the next."""

from __future__ import annotations

import io
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.core.management import call_command

from events.ingest.worker import Worker
from events.models import Job

from . import shapes_traffic as traffic
from .conftest import ingest_bodies

worker_db = pytest.mark.django_db(transaction=True)
ROUND = 40  # messages per round: moto drains a shallow queue fast


def feed(queue, envelopes: list[dict]) -> None:
    """Every envelope through SQS and the worker, the queue kept shallow; stored or fail."""
    worker = Worker(client=queue.client, url=queue.url, wait_seconds=0)
    try:
        for start in range(0, len(envelopes), ROUND):
            queue.send(traffic.bodies(envelopes[start : start + ROUND]))
            while queue.depth():
                worker.poll(wait_seconds=0)
    finally:
        worker.close()
    assert worker.totals.stored == len(envelopes), worker.totals.summary()


def run_span(timeline: dict, child: str) -> dict:
    return next(span for span in timeline["spans"] if span.get("child") == child)


@worker_db
def test_it_shows_a_2000_child_map_run_as_one_row_with_its_counts(sqs_queue, client, superuser):
    start = traffic.now() - timedelta(minutes=30)
    parent_arn = traffic.execution_arn("Fanout", "batch-9")
    children = traffic.map_run(
        "Fanout", "items", 2000, start=start + timedelta(seconds=1), failed=7, running=13,
        parent_arn=parent_arn,
    )  # fmt: skip
    # Most children's RUNNING is left out: one event each keeps the run quick to feed.
    children = [e for e in children if e["detail"]["status"] != "RUNNING" or
                e["detail"]["name"] in {f"child-{n}" for n in range(13)}]  # fmt: skip
    parent = traffic.run(parent_arn, start=start, seconds=1200)
    feed(sqs_queue, [parent[0], *children, parent[1]])
    client.force_login(superuser)

    rows = client.get("/api/jobs?limit=50").json()["results"]
    assert [row["state_machine"] for row in rows] == ["Fanout", "Fanout/items"]
    counts = {"label": "items", "running": 13, "succeeded": 1980, "failed": 7}
    assert rows[1]["map_run"] == counts
    parent_id = traffic.job_id("Fanout", "batch-9")
    assert rows[1]["parent"] == parent_id
    latest = client.get("/api/latest").json()["latest"]
    assert len(latest) == 2
    # The home page: one row for the run, linking to its 2,000 children.
    home = client.get("/").content.decode()
    assert home.count("map-run-link") == 1
    assert "1980 succeeded" in home
    children_page = client.get(f"/?map_run={quote('Fanout/items', safe='')}").content.decode()
    assert "1–50 of 2,000" in children_page  # one row per child
    # The parent's timeline has the run as one span that opens a child; its page lists it.
    timeline = client.get(f"/api/jobs/{parent_id}/timeline").json()
    span = next(s for s in timeline["spans"] if s.get("map_run"))
    assert span["map_run"] == counts
    assert span["child"].startswith(traffic.job_id("Fanout/items", "child-"))
    assert "Map Run <a" in client.get(f"/jobs/{parent_id}/").content.decode()


@worker_db
def test_it_links_a_nested_execution_and_its_parent_both_ways(sqs_queue, client, superuser):
    start = traffic.now() - timedelta(minutes=10)
    parent_arn = traffic.execution_arn("Orders", "order-42")
    child_arn = traffic.execution_arn("Payments", "pay-42")
    parent = traffic.run(parent_arn, start=start, seconds=90)
    child = traffic.run(
        child_arn, start=start + timedelta(seconds=10), seconds=25,
        input={traffic.STARTED_BY: parent_arn, "amount": 12},
    )  # fmt: skip
    feed(sqs_queue, [parent[0], child[0], child[1], parent[1]])
    client.force_login(superuser)
    parent_id, child_id = traffic.job_id("Orders", "order-42"), traffic.job_id("Payments", "pay-42")

    jobs = {row["id"]: row for row in client.get("/api/jobs").json()["results"]}
    assert jobs[child_id]["parent"] == parent_id
    assert jobs[parent_id]["parent"] is None
    timeline = client.get(f"/api/jobs/{parent_id}/timeline").json()
    span = run_span(timeline, child_id)
    assert (span["duration_ms"], span["status"], span["kind"]) == (25_000, "ok", "execution")
    assert span["start"].startswith((start + timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%S"))
    child_timeline = client.get(f"/api/jobs/{child_id}/timeline").json()
    assert child_timeline["job"]["parent"] == parent_id
    assert f'href="/jobs/{child_id}/"' in client.get(f"/jobs/{parent_id}/").content.decode()
    assert f'href="/jobs/{parent_id}/"' in client.get(f"/jobs/{child_id}/").content.decode()


@worker_db
def test_it_shows_a_redriven_execution_as_one_job_with_its_attempts(sqs_queue, client, superuser):
    start = traffic.now() - timedelta(minutes=20)
    arn = traffic.execution_arn("Nightly", "nightly-2026-12-06")
    redriven = start + timedelta(minutes=8)
    first = traffic.run(arn, start=start, seconds=60, status="FAILED")
    again = traffic.status_event(
        arn, "RUNNING", start=start, redrive_count=1, redrive_date=redriven
    )
    feed(sqs_queue, [*first, again])
    client.force_login(superuser)
    job_id = traffic.job_id("Nightly", "nightly-2026-12-06")

    [job] = client.get("/api/jobs").json()["results"]
    assert (job["id"], job["status"], job["stopped_at"], job["error"]) == (
        job_id, "RUNNING", None, None,
    )  # fmt: skip
    assert [(a["attempt"], a["status"]) for a in job["attempts"]] == [(0, "FAILED"), (1, "RUNNING")]
    timeline = client.get(f"/api/jobs/{job_id}/timeline").json()
    assert (timeline["execution"]["status"], timeline["execution"]["stop"]) == ("RUNNING", None)

    done = traffic.status_event(
        arn, "SUCCEEDED", start=start, stop=redriven + timedelta(seconds=30), redrive_count=1,
        redrive_date=redriven,
    )  # fmt: skip
    feed(sqs_queue, [done])
    [job] = client.get("/api/jobs").json()["results"]
    assert job["status"] == "SUCCEEDED"
    assert [a["status"] for a in job["attempts"]] == ["FAILED", "SUCCEEDED"]
    page = client.get(f"/jobs/{job_id}/").content.decode()
    assert 'id="job-attempts"' in page
    assert "redriven 1 time" in page


@worker_db
def test_it_rebuilds_parent_and_attempts_of_jobs_stored_before_them():
    start = traffic.now()
    parent_arn = traffic.execution_arn("Orders", "order-1")
    arn = traffic.execution_arn("Payments", "pay-1")
    ingest_bodies(traffic.bodies([
        *traffic.run(arn, start=start, seconds=5, status="FAILED",
                     input={traffic.STARTED_BY: parent_arn}),
        traffic.status_event(arn, "RUNNING", start=start, redrive_count=1,
                             redrive_date=start + timedelta(seconds=9)),
    ]))  # fmt: skip
    Job.objects.update(parent="", attempts=[])  # as migration 0010 leaves older jobs

    call_command("rebuild_jobs", stdout=io.StringIO())

    job = Job.objects.get()
    assert job.parent == traffic.job_id("Orders", "order-1")
    assert [(a["attempt"], a["status"]) for a in job.attempts] == [(0, "FAILED"), (1, "RUNNING")]
    assert job.status == "RUNNING"

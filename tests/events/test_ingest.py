"""The ingest pipeline end to end: moto's SQS -> worker -> ORM store -> API."""

from __future__ import annotations

import io
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import boto3
import pytest
from django.core.management import call_command
from django.db import connection

from events.models import Event, Job, RejectedMessage
from events.stores import get_store
from events.worker import Worker

from .conftest import ACCOUNT_A, QUEUE_NAME, ingest_bodies, malformed_bodies, sample_lines

ROOT = Path(__file__).resolve().parents[2]
JOB_OK = "123456789012:us-east-1:EventDrivenMachine:a6a3a450-6513-470e-a69e-0d37f2a74de4"
JOB_FAILED = "123456789012:us-east-1:EventDrivenMachine:b87e4e2b-537d-4128-83a9-e88963b759f5"
JOB_SECOND = "123456789012:us-east-1:EventDrivenMachine:c38084a0-3d93-4d4c-804c-25d64affdcd1"
EXPECTED_COUNTS = {JOB_OK: 22, JOB_SECOND: 18, JOB_FAILED: 29}

# The worker closes stale connections between batches, which a test wrapped in one
# transaction would not survive: worker tests run with real commits.
worker_db = pytest.mark.django_db(transaction=True)


def consume_once() -> str:
    out = io.StringIO()
    call_command("consume_events", "--once", "--wait", "0", stdout=out, stderr=io.StringIO())
    return out.getvalue()


@worker_db
def test_it_carries_the_samples_from_the_queue_to_the_api(sqs_queue, client, superuser):
    sqs_queue.send(sample_lines())

    summary = consume_once()

    assert "received=72 stored=72 duplicates=0 quarantined=0" in summary
    assert sqs_queue.depth() == 0
    client.force_login(superuser)
    response = client.get("/api/jobs")
    assert response.status_code == 200
    jobs = {job["id"]: job for job in response.json()["results"]}
    assert {job_id: job["event_count"] for job_id, job in jobs.items()} == EXPECTED_COUNTS
    assert jobs[JOB_FAILED]["status"] == "FAILED"
    assert jobs[JOB_FAILED]["error"] == "States.TaskFailed"
    assert jobs[JOB_OK]["status"] == "SUCCEEDED"
    assert jobs[JOB_OK]["account"] == ACCOUNT_A
    events = client.get(f"/api/job/{JOB_OK}").json()["events"]
    assert len(events) == 22
    assert Event.objects.count() == 72
    assert Event.objects.filter(job=None).count() == 3


@worker_db
def test_it_stores_duplicates_delivered_twice_once(sqs_queue):
    lines = sample_lines()
    sqs_queue.send(lines + lines[::-1])

    summary = consume_once()

    assert "received=144 stored=72 duplicates=72" in summary
    assert Event.objects.count() == 72
    counts = dict(Job.objects.values_list("id", "event_count"))
    assert counts == EXPECTED_COUNTS
    assert sqs_queue.depth() == 0


@worker_db
def test_it_quarantines_malformed_bodies_and_stores_the_valid_ones_around_them(sqs_queue):
    valid = sample_lines()[:12]
    bad = malformed_bodies()
    pairs = zip(bad, valid[6:], strict=True)
    mixed = [*valid[:6], *(body for pair in pairs for body in pair), "\n"]
    sqs_queue.send(mixed)

    summary = consume_once()

    assert f"stored=12 duplicates=0 quarantined={len(bad) + 1}" in summary
    assert Event.objects.count() == 12
    rejected = list(RejectedMessage.objects.all())
    assert len(rejected) == len(bad) + 1
    assert all(row.reason and row.message_id for row in rejected)
    assert {row.body for row in rejected} == {*bad, "\n"}
    assert sqs_queue.depth() == 0


def _fail_job_updates() -> None:
    """A real database failure after the batch's events are written: a trigger that aborts."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TRIGGER edobs_test_fail BEFORE UPDATE ON events_job "
            "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )


def _heal() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS edobs_test_fail")


@worker_db
def test_it_deletes_nothing_when_the_store_fails_and_stores_the_redelivery_once(sqs_queue):
    sqs_queue.client.set_queue_attributes(
        QueueUrl=sqs_queue.url, Attributes={"VisibilityTimeout": "1"}
    )
    sqs_queue.send(sample_lines()[:10])
    worker = Worker(url=sqs_queue.url, wait_seconds=0)
    _fail_job_updates()
    try:
        assert worker.poll(wait_seconds=0) == 10
        assert worker.totals.store_failures == 1
        assert Event.objects.count() == 0
        assert Job.objects.count() == 0
        assert sqs_queue.depth() == 10
    finally:
        _heal()

    deadline = time.monotonic() + 30
    while worker.totals.stored < 10 and time.monotonic() < deadline:
        worker.poll(wait_seconds=1)
    worker.close()  # the deletes of stored batches run in a thread

    assert worker.totals.stored == 10
    assert worker.totals.duplicates == 0
    assert Event.objects.count() == 10
    assert sqs_queue.depth() == 0


def _summaries() -> dict[str, dict]:
    """Every job's summary; among events of the same second the latest is the later arrival."""
    store = get_store()
    found = {}
    for job_id in Job.objects.values_list("id", flat=True):
        summary = asdict(store.get_job(job_id, accounts=None))
        summary["latest"] = summary["latest"]["time"]
        found[job_id] = summary
    return found


@pytest.mark.django_db
def test_it_gives_the_same_job_summaries_whatever_the_arrival_order():
    lines = sample_lines()
    ingest_bodies(lines)
    in_order = _summaries()
    assert in_order[JOB_FAILED]["status"] == "FAILED"
    for seed in range(5):
        Event.objects.all().delete()
        Job.objects.all().delete()
        shuffled = random.Random(seed).sample(lines, len(lines))
        while shuffled:
            size = random.Random(seed).randint(1, 10)
            ingest_bodies(shuffled[:size])
            shuffled = shuffled[size:]
        assert _summaries() == in_order, f"seed {seed}"


@pytest.mark.django_db
def test_it_keeps_the_terminal_status_when_running_arrives_last():
    lines = sample_lines()
    status = [line for line in lines if '"aws.states"' in line]
    others = [line for line in lines if '"aws.states"' not in line]
    ingest_bodies(others + sorted(status, key=lambda line: '"RUNNING"' in line))
    job = Job.objects.get(id=JOB_FAILED)
    assert (job.status, job.error) == ("FAILED", "States.TaskFailed")
    assert job.started_at is not None and job.stopped_at is not None


def _run(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120, check=True,
    )  # fmt: skip


@pytest.mark.slow
def test_it_finishes_the_batch_in_hand_on_sigterm_and_takes_no_other(moto_endpoint, tmp_path):
    client = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_endpoint)
    url = client.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
    db = tmp_path / "edobs.sqlite3"
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "EDOBS_QUEUE_URL": url,
        "EDOBS_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{db}",
        "DATABASE_BUSY_TIMEOUT": "120",  # outlasts the write lock this test holds
        "EDOBS_STORE": "orm",
    }
    _run("migrate", "--noinput", env=env)
    lines = sample_lines()
    for start in range(0, len(lines), 10):
        entries = [
            {"Id": str(i), "MessageBody": b} for i, b in enumerate(lines[start : start + 10])
        ]
        client.send_message_batch(QueueUrl=url, Entries=entries)

    # Another connection holds the write lock: the worker's store waits with a batch in hand.
    lock = sqlite3.connect(db, timeout=30, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "consume_events", "--wait", "1"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        batch = _wait_for_batch_in_hand(client, url)
        worker.send_signal(signal.SIGTERM)
        held_at_sigterm = _depth(client, url)
        stored_at_sigterm = _stored(db)
        lock.rollback()
        stdout, stderr = worker.communicate(timeout=60)
    finally:
        lock.close()
        if worker.poll() is None:
            worker.kill()

    # The fault: SIGTERM arrived while the worker held messages it had not stored yet.
    assert 0 < batch <= 10
    assert held_at_sigterm == (len(lines) - batch, batch), held_at_sigterm
    assert stored_at_sigterm == 0
    # The outcome: that batch stored and deleted, nothing more taken, a clean exit.
    assert worker.returncode == 0, stderr
    assert "stopping after the batch in hand" in stderr
    assert f"received={batch} stored={batch} duplicates=0 quarantined=0" in stdout
    assert _stored(db) == batch
    assert _depth(client, url) == (len(lines) - batch, 0)


def _depth(client, url: str) -> tuple[int, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(attributes[names[0]]), int(attributes[names[1]])


def _wait_for_batch_in_hand(client, url: str, timeout: float = 60) -> int:
    """How many messages the (blocked) worker holds, once two readings agree."""
    deadline = time.monotonic() + timeout
    last = 0
    while time.monotonic() < deadline:
        in_flight = _depth(client, url)[1]
        if in_flight and in_flight == last:
            return in_flight
        last = in_flight
        time.sleep(0.1)
    raise AssertionError(f"the worker never took a batch: {_depth(client, url)}")


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM events_event").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.django_db
def test_it_keeps_one_quarantine_row_per_message_id_even_against_a_racing_worker():
    from django.db import IntegrityError, transaction

    from events.services import InboundMessage, message_quarantine

    # Two workers can both pass the "already kept?" read; the database refuses the second row.
    RejectedMessage.objects.create(body="{", reason="not JSON", message_id="m-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        RejectedMessage.objects.create(body="{", reason="not JSON", message_id="m-1")
    # ...and message_quarantine, meeting that row, keeps the rest of its batch.
    batch = [InboundMessage(body="{", message_id="m-1"), InboundMessage(body="[", message_id="")]
    message_quarantine(messages=batch, rejected=[(0, "not JSON"), (1, "not an object")])
    message_quarantine(messages=batch[1:], rejected=[(0, "not an object")])
    assert sorted(RejectedMessage.objects.values_list("message_id", "body")) == [
        ("", "["), ("", "["), ("m-1", "{"),
    ]  # fmt: skip

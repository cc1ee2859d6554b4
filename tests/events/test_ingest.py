"""The ingest pipeline end to end: moto's SQS -> worker -> ORM store -> API."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from django.core.management import call_command
from django.db import connection, connections

from events.domain import envelope as envelope_module
from events.ingest import services
from events.ingest.services import InboundMessage
from events.ingest.worker import Totals, Worker
from events.models import DeliveryFailure, Event, EventConflict, Job, RejectedMessage
from events.stores import get_store
from events.stores.dynamodb.store import DynamoStore
from events.stores.orm.store import OrmStore
from tests.services import free_port

from .conftest import ACCOUNT_A, QUEUE_NAME, ingest_bodies, malformed_bodies, sample_lines, settled
from .store_fixtures import (  # noqa: F401  (fixtures)
    envelope,
    now_second,
    pg_alias_fixture,
    postgres_store,
    store_fixture,
)
from .store_fixtures import job_id as contract_job_id

ROOT = Path(__file__).resolve().parents[2]
JOB_OK = "123456789012:us-east-1:EventDrivenMachine:a6a3a450-6513-470e-a69e-0d37f2a74de4"
JOB_FAILED = "123456789012:us-east-1:EventDrivenMachine:b87e4e2b-537d-4128-83a9-e88963b759f5"
JOB_SECOND = "123456789012:us-east-1:EventDrivenMachine:c38084a0-3d93-4d4c-804c-25d64affdcd1"
EXPECTED_COUNTS = {JOB_OK: 22, JOB_SECOND: 18, JOB_FAILED: 29}

# The worker closes stale connections between batches, which a test wrapped in one
# transaction would not survive: worker tests run with real commits.
worker_db = pytest.mark.django_db(transaction=True)
# Quarantine rows are in `default` whatever the store; the PostgreSQL store's alias `pg`
# (tests/events/store_fixtures.py) may or may not exist yet when the test starts.
every_database = pytest.mark.django_db(transaction=True, databases="__all__")


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


class WriteLock:
    """The test database's write lock, held by another connection: a real outage (the store
    answers OperationalError "locked"), unlike a refusal of the data, which quarantines."""

    def __enter__(self) -> WriteLock:
        name = connection.settings_dict["NAME"]  # shared-cache in-memory, or a file
        self.conn = sqlite3.connect(name, uri=name.startswith("file:"), isolation_level=None)
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc) -> None:
        self.conn.rollback()
        self.conn.close()


@worker_db
def test_it_deletes_nothing_when_the_store_fails_and_stores_the_redelivery_once(sqs_queue):
    sqs_queue.client.set_queue_attributes(
        QueueUrl=sqs_queue.url, Attributes={"VisibilityTimeout": "1"}
    )
    sqs_queue.send(sample_lines()[:10])
    worker = Worker(url=sqs_queue.url, wait_seconds=0)
    with WriteLock():
        assert worker.poll(wait_seconds=0) == 10
        assert worker.totals.store_failures == 1
        assert Event.objects.count() == 0
        assert Job.objects.count() == 0
        assert RejectedMessage.objects.count() == 0
        assert sqs_queue.depth() == 10

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

    from events.ingest.services import InboundMessage, message_quarantine

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


# --- whatever a message holds, it costs only itself ---------------------------------------------


def _envelope(**changes) -> dict:
    """A valid custom event of job `good` (store_fixtures' shape), with `changes` applied."""
    body = envelope(at=now_second(), job="good")
    body.update(changes)
    return body


def _status_event(**detail) -> dict:
    body = envelope(at=now_second(), job="poisoned", status="RUNNING")
    body["detail"].update(detail)
    return body


EXPRESS_ARN = "arn:aws:states:us-east-1:111111111111:express:Machine:poisoned:"
UNSTORABLE = {
    "surrogate in source": (_envelope(source="project\ud800"), "lone surrogate (\\ud800)"),
    "surrogate in meta.fn": (
        _envelope(detail={"meta": {"fn": "fn\udfff"}}),
        "lone surrogate (\\udfff)",
    ),
    "NaN in detail": (_envelope(detail={"ratio": float("nan")}), "the number NaN"),
    "Infinity in detail": (_envelope(detail={"n": [float("-inf")]}), "the number -Infinity"),
    "NUL in detail": (_envelope(detail={"name": "a\x00b"}), "NUL character"),
    "status of 25 characters": (_status_event(status="R" * 25), "job status is longer than 20"),
    "execution ARN of 700 characters": (
        _status_event(executionArn=EXPRESS_ARN + "u" * 700),
        "job execution_arn is longer than 600",
    ),
    "year 9999 behind UTC": (_envelope(time="9999-12-31T23:59:59-05:00"), "out of range"),
}


@pytest.mark.parametrize("name", list(UNSTORABLE))
@pytest.mark.django_db
def test_it_quarantines_what_no_database_can_store_with_a_clear_reason(name):
    poison, reason = UNSTORABLE[name]
    good = [json.dumps(_envelope()) for _ in range(4)]
    bodies = [*good[:2], json.dumps(poison), *good[2:]]

    report = ingest_bodies(bodies)

    assert report.outcomes == ["stored", "stored", "quarantined", "stored", "stored"]
    row = RejectedMessage.objects.get()
    assert (row.body, reason in row.reason) == (bodies[2], True), row.reason
    assert Event.objects.count() == 4


@pytest.mark.django_db
def test_it_quarantines_a_message_whose_parsing_raises_anything_and_logs_the_traceback(
    monkeypatch, caplog
):
    real = envelope_module.correlate

    def correlate(detail, **kwargs):
        if detail.get("explode"):
            raise ZeroDivisionError("division by zero in a rule nobody tested")
        return real(detail, **kwargs)

    monkeypatch.setattr(envelope_module, "correlate", correlate)
    bodies = [json.dumps(_envelope(detail={"explode": index == 1})) for index in range(3)]

    report = ingest_bodies(bodies)

    assert report.outcomes == ["stored", "quarantined", "stored"]
    row = RejectedMessage.objects.get()
    assert row.body == bodies[1]
    assert row.reason == "ZeroDivisionError: division by zero in a rule nobody tested"
    logged = [record for record in caplog.records if record.exc_info]
    assert logged and logged[0].exc_info[0] is ZeroDivisionError


class RangeKeyLimit:
    """moto's DynamoDB client, plus a limit AWS enforces and moto does not: the range keys of
    an item (here the job summary's index sort keys) may hold 1024 bytes."""

    def __init__(self, client) -> None:
        self.client = client

    def __getattr__(self, name):
        return getattr(self.client, name)

    def transact_write_items(self, **kwargs):
        for action in kwargs["TransactItems"]:
            item = action["Put"]["Item"]
            if len(item.get("gsi1sk", {}).get("S", "").encode()) > 1024:
                raise ClientError(
                    {"Error": {"Code": "ValidationException", "Message": RANGE_KEY_TOO_LONG}},
                    "TransactWriteItems",
                )
        return self.client.transact_write_items(**kwargs)


RANGE_KEY_TOO_LONG = (
    "One or more parameter values were invalid: Aggregated size of all range keys has exceeded "
    "the size limit of 1024 bytes"
)


def _refused_by(backend: str, store) -> tuple[dict, str]:
    """An event this store's database refuses, though no pre-check caught it, and its words."""
    if backend == "sqlite":  # SQLite checks the JSON column
        return _envelope(
            detail={"ratio": float("nan")}
        ), 'CHECK constraint failed: (JSON_VALID("raw")'
    if backend == "postgres":
        return _status_event(status="R" * 25), "value too long for type character varying(20)"
    # Within every column's length in characters, but 4 bytes each: a 1,424-byte job id.
    store._client = RangeKeyLimit(store.client)
    smiles = envelope(at=now_second(), machine="\U0001f600" * 150, job="\U0001f600" * 200)
    return smiles, RANGE_KEY_TOO_LONG


@every_database
def test_it_stores_the_other_nine_when_the_store_refuses_one(store, request, monkeypatch):
    backend = request.node.callspec.params["store"]
    poison, words = _refused_by(backend, store)
    monkeypatch.setattr(services, "get_store", lambda: store)
    if backend != "dynamodb":  # as if the pre-checks had not foreseen it
        monkeypatch.setattr(services, "event_check_storable", lambda event: None)
    good = [json.dumps(_envelope()) for _ in range(9)]
    bodies = [*good[:6], json.dumps(poison), *good[6:]]
    messages = [InboundMessage(body=body, message_id=f"m-{i}") for i, body in enumerate(bodies)]

    report = services.event_ingest(messages=messages)

    assert report.outcomes == ["stored"] * 6 + ["quarantined"] + ["stored"] * 3
    stored = store.job_events(contract_job_id("good"), accounts=None, limit=100, cursor=None).items
    assert sorted(event.id for event in stored) == sorted(json.loads(b)["id"] for b in good)
    row = RejectedMessage.objects.get()
    assert (row.message_id, row.body) == ("m-6", bodies[6])
    assert row.reason.startswith("the store refused it: ") and words in row.reason, row.reason


def _unreachable(backend: str, request):
    """The store of `backend`, which cannot be reached (or, SQLite, is locked) meanwhile."""
    if backend == "sqlite":
        lock = WriteLock().__enter__()
        request.addfinalizer(lambda: lock.__exit__(None, None, None))
        return OrmStore()
    port = free_port()
    if backend == "postgres":
        store = postgres_store(request)
        request.addfinalizer(_repoint(store.using, port))
        return store
    client = boto3.client(
        "dynamodb", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )  # fmt: skip
    return DynamoStore(client=client, table_name="edobs-nowhere")


def _repoint(alias: str, port: int):
    """Point the database alias at a port where nothing listens; returns the undo."""
    settings_dict = connections[alias].settings_dict
    real = settings_dict["PORT"]
    connections[alias].close()
    settings_dict["PORT"] = port

    def undo() -> None:
        connections[alias].close()
        settings_dict["PORT"] = real

    return undo


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "dynamodb"])
@every_database
def test_it_backs_off_and_deletes_nothing_when_the_store_is_unreachable(
    backend, sqs_queue, request, monkeypatch
):
    store = _unreachable(backend, request)
    monkeypatch.setattr(services, "get_store", lambda: store)
    sqs_queue.send([json.dumps(_envelope()) for _ in range(10)])
    worker = Worker(url=sqs_queue.url, wait_seconds=0)

    assert worker.poll(wait_seconds=0) == 10
    worker.close()

    assert (worker.totals.store_failures, worker.totals.stored, worker.totals.quarantined) == (
        1, 0, 0,
    )  # fmt: skip
    assert RejectedMessage.objects.count() == 0
    assert sqs_queue.depth() == 10  # nothing deleted: SQS delivers the batch again


def _first_call_fails(real, error: Exception):
    calls = []

    def call(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise error
        return real(**kwargs)

    return call


BUG = "the summary code has a bug"


def _bug(messages):
    raise RuntimeError(BUG)


def _with_dead_letter_queue(sqs_queue, *, limit: int) -> str:
    """A DLQ behind the queue (as provision makes it); messages are visible again at once."""
    client = sqs_queue.client
    dlq_url = client.create_queue(QueueName=f"{QUEUE_NAME}-dlq")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    redrive = {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": limit}
    client.set_queue_attributes(
        QueueUrl=sqs_queue.url,
        Attributes={"VisibilityTimeout": "0", "RedrivePolicy": json.dumps(redrive)},
    )
    return dlq_url


@worker_db
def test_it_imports_a_dead_letter_with_the_last_reason_its_batch_failed(sqs_queue, monkeypatch):
    dlq_url = _with_dead_letter_queue(sqs_queue, limit=2)
    sqs_queue.send([json.dumps(_envelope())])
    monkeypatch.setattr("events.ingest.worker.event_ingest", _bug)
    worker = Worker(url=sqs_queue.url, wait_seconds=0)
    worker.stop.wait = lambda seconds: False  # no real back-off pauses in this test
    while worker.poll(wait_seconds=0):  # fails twice; the third receive finds it moved
        pass
    sqs_queue.send(["never seen by a worker"])
    sqs_queue.client.send_message(QueueUrl=dlq_url, MessageBody="moved by hand")

    call_command("import_dead_letters", stdout=io.StringIO())

    assert worker.totals.errors == 2 and worker.totals.received == 2
    reasons = dict(RejectedMessage.objects.values_list("body", "reason"))
    [body] = [body for body in reasons if body.startswith("{")]
    assert (
        reasons[body] == "dead-letter queue; last failure: RuntimeError: the summary code has a bug"
    )
    assert reasons["moved by hand"] == "dead-letter queue"
    assert DeliveryFailure.objects.count() == 0


@worker_db
def test_it_forgets_why_a_message_failed_once_it_is_handled(sqs_queue, monkeypatch):
    _with_dead_letter_queue(sqs_queue, limit=5)
    sqs_queue.send([json.dumps(_envelope()) for _ in range(3)])
    worker = Worker(url=sqs_queue.url, wait_seconds=0)
    worker.stop.wait = lambda seconds: False
    with monkeypatch.context() as patch:
        patch.setattr("events.ingest.worker.event_ingest", _bug)
        assert worker.poll(wait_seconds=0) == 3
    assert DeliveryFailure.objects.count() == 3

    assert worker.poll(wait_seconds=0) == 3
    worker.close()

    assert worker.totals.stored == 3
    assert DeliveryFailure.objects.count() == 0


@worker_db
def test_it_keeps_polling_after_a_failed_receive_and_a_batch_that_raises(sqs_queue, monkeypatch):
    sqs_queue.client.set_queue_attributes(
        QueueUrl=sqs_queue.url, Attributes={"VisibilityTimeout": "1"}
    )
    sqs_queue.send([json.dumps(_envelope()) for _ in range(10)])
    worker = Worker(url=sqs_queue.url, wait_seconds=0)
    receive_failure = EndpointConnectionError(endpoint_url=sqs_queue.url)
    monkeypatch.setattr(
        worker.client,
        "receive_message",
        _first_call_fails(worker.client.receive_message, receive_failure),
    )
    monkeypatch.setattr(
        "events.ingest.worker.event_ingest", _first_call_fails(services.event_ingest, RuntimeError("boom"))  # noqa: E501
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while settled(Event.objects.count) < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert thread.is_alive()
    finally:
        worker.stop.set()
        thread.join(30)

    assert Event.objects.count() == 10
    # Both injected failures were survived; moto's in-process SQS is not thread-safe and may
    # add one of its own when the delete thread races a receive (the loop survives that too).
    assert worker.totals.errors >= 2
    assert sqs_queue.depth() == 0


def test_it_restarts_the_in_process_worker_after_a_crash(monkeypatch):
    from events.ingest import inprocess

    class CrashingOnce:
        stop = threading.Event()
        runs = 0

        def run(self):
            self.runs += 1
            if self.runs == 1:
                raise RuntimeError("crashed outside any batch")
            self.stop.set()
            return Totals()

    monkeypatch.setattr(inprocess, "RESTART", 0)
    worker = CrashingOnce()
    inprocess._run_worker(worker)

    assert worker.runs == 2


# --- one id, two contents: a conflict, never an overwrite ----------------------------------------


@every_database
def test_a_second_envelope_with_a_stored_id_is_kept_as_a_conflict(
    store, request, monkeypatch, sqs_queue, client, superuser
):
    """Through moto's SQS and the real worker, on each store: an exact redelivery is a silent
    duplicate, another envelope with the same id is counted and kept as a conflict (once per
    content), and the stored event stays the first one. It used to be a silent duplicate."""
    monkeypatch.setattr(services, "get_store", lambda: store)
    first = _envelope(id="same-id")
    # Same envelope, another key order and a number as PostgreSQL's jsonb gives it back.
    again = json.dumps(dict(reversed(list(first.items()))))
    other = {**first, "detail": {**first["detail"], "amount": 1e300, "status": "forged"}}
    worker = Worker(client=sqs_queue.client, url=sqs_queue.url, wait_seconds=0)

    sqs_queue.send([json.dumps(first)])
    worker.run(once=True)
    sqs_queue.send([again, json.dumps(other), json.dumps(other)])
    worker.stop.clear()
    summary = worker.run(once=True).summary()

    assert "received=4 stored=1 duplicates=1 quarantined=0 conflicts=2" in summary, summary
    assert sqs_queue.depth() == 0
    [stored] = store.get_events("same-id", accounts=frozenset({first["account"]}))
    assert stored.raw == first
    [conflict] = EventConflict.objects.all()
    assert (conflict.account, conflict.event_id) == (first["account"], "same-id")
    assert conflict.raw["detail"]["status"] == "forged" and conflict.message_id
    client.force_login(superuser)
    listing = client.get("/admin/events/eventconflict/")
    assert listing.status_code == 200 and "same-id" in listing.content.decode()

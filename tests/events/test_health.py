"""Worker health (events.ingest.health): the heartbeat a running worker writes, and GET
/api/health."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from events.ingest.health import backlog_growing, health_report
from events.ingest.inprocess import start_inprocess_worker
from events.models import WorkerHeartbeat

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def beat(worker: str = "host:1", *, polled_ago: float = 1, samples=(), **extra) -> None:
    at = NOW - timedelta(seconds=polled_ago)
    WorkerHeartbeat.objects.create(
        worker=worker, started_at=at - timedelta(minutes=5), seen_at=NOW, last_poll_at=at,
        poll_seconds=20, backlog=samples[-1][1] if samples else None,
        backlog_at=NOW if samples else None, backlog_samples=[list(s) for s in samples], **extra,
    )  # fmt: skip


def ago(seconds: int) -> int:
    return int(NOW.timestamp()) - seconds


@pytest.mark.django_db
def test_it_says_down_without_a_heartbeat():
    assert health_report(NOW) == {
        "status": "down", "workers": [], "backlog": None, "backlog_growing": False,
        "checked_at": "2026-11-20T12:00:00Z",
    }  # fmt: skip


@pytest.mark.django_db
def test_it_says_down_when_every_worker_stopped_polling():
    beat(polled_ago=61)  # three 20 s long-polls
    report = health_report(NOW)
    assert report["status"] == "down"
    assert [w["alive"] for w in report["workers"]] == [False]


@pytest.mark.django_db
def test_it_says_ok_with_one_worker_polling_and_a_steady_backlog():
    beat("host:1", polled_ago=61)
    beat("host:2", polled_ago=3, samples=[(ago(30), 5), (ago(20), 7), (ago(10), 3)])
    report = health_report(NOW)
    assert (report["status"], report["backlog"], report["backlog_growing"]) == ("ok", 3, False)
    assert [(w["worker"], w["alive"]) for w in report["workers"]] == [
        ("host:1", False), ("host:2", True),
    ]  # fmt: skip


@pytest.mark.django_db
def test_it_says_degraded_while_the_backlog_grows():
    beat(samples=[(ago(30), 100), (ago(20), 140), (ago(10), 140), (ago(0), 180)])
    report = health_report(NOW)
    assert (report["status"], report["backlog"], report["backlog_growing"]) == (
        "degraded", 180, True,
    )  # fmt: skip


@pytest.mark.parametrize(
    "samples, growing",
    [
        ([], False),
        ([(ago(20), 0), (ago(10), 50)], False),  # two samples say nothing yet
        ([(ago(20), 0), (ago(10), 50), (ago(0), 60)], True),
        ([(ago(20), 0), (ago(10), 50), (ago(0), 40)], False),  # drained a little: keeping up
        ([(ago(20), 50), (ago(10), 52), (ago(0), 55)], False),  # a few more: noise
        ([(ago(200), 0), (ago(100), 50), (ago(0), 100)], False),  # too old to count
    ],
)
def test_it_calls_a_backlog_growing_only_when_it_keeps_growing(samples, growing):
    assert backlog_growing([list(s) for s in samples], NOW) is growing


@pytest.mark.django_db(transaction=True)
def test_it_says_ok_with_a_running_worker_and_down_once_it_stops(
    client, member, sqs_queue, settings
):
    settings.EDOBS_HEARTBEAT_SECONDS = 1
    client.force_login(member)
    assert client.get("/api/health").json()["status"] == "down"
    stop = threading.Event()
    thread = start_inprocess_worker(stop, wait_seconds=1)
    try:
        sqs_queue.send(['{"not": "an envelope"}'])
        report = _health_when(client, lambda r: r["status"] == "ok" and r["backlog"] is not None)
        assert report["status"] == "ok"
        [worker] = report["workers"]
        assert worker["alive"] and worker["poll_seconds"] == 1
        assert _health_when(client, lambda r: r["workers"][0]["last_batch_size"] == 1)
    finally:
        stop.set()
        thread.join(10)
    after = client.get("/api/health").json()
    assert (after["status"], after["workers"]) == ("down", [])  # a clean stop deletes its row


def _health_when(client, condition, seconds: float = 15) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        report = client.get("/api/health").json()
        if condition(report) or time.monotonic() > deadline:
            return report
        time.sleep(0.1)

"""Issue 25 "Time" (DESIGN section 10): an answer is never ordered before its trigger, and no
duration below zero, on the traffic that showed both (tests/events/skew_traffic.py), through
SQS (moto's server) and the real worker.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import boto3
import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from events.domain.clock import ms
from events.domain.envelope import parse_time
from events.ingest.worker import Worker
from events.models import Event
from events.routing import websocket_urlpatterns
from infra.instrument import event_detail

from . import skew_traffic as traffic

TIMEOUT = 10


@pytest.fixture
def queue(moto_endpoint, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    client = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_endpoint)
    url = client.create_queue(QueueName="edobs-skew")["QueueUrl"]
    return client, url


def send_and_consume(client, url: str, envelopes: list[dict]) -> None:
    entries = [{"Id": str(i), "MessageBody": json.dumps(e)} for i, e in enumerate(envelopes)]
    client.send_message_batch(QueueUrl=url, Entries=entries)
    Worker(client=client, url=url, wait_seconds=0).run(once=True)


def skewed_job(client, url: str, name: str, *, one_batch: bool = False):
    """(triggers, answers) of one job sent as the issue saw it: the triggers ~300 ms into a
    second, then the answers stamped 2 ms into it (in the triggers' batch when `one_batch`)."""
    second = traffic.second_to_send_in()
    sent = traffic.triggers(name, second)
    replies = traffic.answers(name, sent, second)
    if one_batch:
        send_and_consume(client, url, [*replies[:3], *sent])  # answers first, as SQS may
    else:
        send_and_consume(client, url, sent)
        send_and_consume(client, url, replies)
    return sent, replies


def at_ms(envelope: dict) -> int:
    return ms(Event.objects.get(event_id=envelope["id"]).at)


def assert_the_issues_traffic(sent: list[dict], replies: list[dict]) -> None:
    """Each answer's own clock reads before its trigger's delivery (else the test proves
    nothing)."""
    for answer in replies[:3]:
        trigger = traffic.trigger_of(answer, sent)
        sources = [Event.objects.get(event_id=e["id"]).at_source for e in (trigger, answer)]
        assert sources == ["delivery", "producer"]
        assert at_ms(answer) < at_ms(trigger)


def assert_no_negative_duration(spans: list[dict]) -> None:
    for span in spans:
        assert span["duration_ms"] is None or span["duration_ms"] >= 0, span
        assert span["end"] is None or parse_time(span["end"]) >= parse_time(span["start"]), span
        assert span["skew_ms"] is None or span["skew_ms"] > 0, span


def assert_causal(ids: list[str], sent: list[dict], replies: list[dict]) -> None:
    for answer in replies[:3]:
        assert ids.index(traffic.trigger_of(answer, sent)["id"]) < ids.index(answer["id"])


@pytest.mark.django_db(transaction=True)
def test_it_pairs_every_answer_and_shows_clock_skew_instead_of_a_negative_span(
    queue, client, superuser
):
    sent, replies = skewed_job(*queue, "skew-api")
    assert_the_issues_traffic(sent, replies)
    job = traffic.job_id("skew-api")
    client.force_login(superuser)

    timeline = client.get(f"/api/jobs/{job}/timeline").json()
    assert_no_negative_duration(timeline["spans"])
    spans = {span["fn"]: span for span in timeline["spans"]}
    for answer in replies[:3]:
        trigger = traffic.trigger_of(answer, sent)
        _, fn, rule = traffic.ANSWERED_BY[trigger["detail-type"]]
        span = spans[fn]
        assert (span["start_event"], span["end_event"]) == (trigger["id"], answer["id"]), fn
        assert span["paired_by"] == rule
        assert span["skew_ms"] == at_ms(trigger) - at_ms(answer)
        assert span["duration_ms"] is None and span["end"] == span["start"]
    assert all(span["status"] != "pending" for span in timeline["spans"])

    chart = client.get(f"/api/jobs/{job}/export?format=mermaid").content.decode()
    tasks = re.findall(r":(?:\w+, )*s\d+, (\d+), (\d+)$", chart, re.MULTILINE)
    assert len(tasks) == 3 and all(int(end) >= int(start) for start, end in tasks)

    compared = client.get("/api/jobs/compare", {"a": job, "b": job}).json()
    for step in compared["steps"]:
        assert step["diff_ms"] is None or step["diff_ms"] == 0
        assert_no_negative_duration([step["a"], step["b"]])

    graph = client.get("/api/architecture", {"since": "2000-01-01T00:00:00Z"}).json()
    for edge in graph["edges"]:
        assert all(edge[k] is None or edge[k] >= 0 for k in ("p50_ms", "p95_ms")), edge


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("one_batch", [False, True], ids=["answers-later", "one-batch"])
def test_every_list_of_the_job_puts_an_answer_after_its_trigger(
    queue, client, superuser, one_batch
):
    sent, replies = skewed_job(*queue, "skew-lists", one_batch=one_batch)
    assert_the_issues_traffic(sent, replies)
    job = traffic.job_id("skew-lists")
    client.force_login(superuser)

    items = client.get("/api/job/skew-lists").json()["events"]
    keys = [int(item["sk"]) for item in items]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    position = {item["detailType"]: n for n, item in enumerate(items)}  # one of each type
    for answer in replies[:3]:
        trigger = traffic.trigger_of(answer, sent)
        assert position[answer["detail-type"]] > position[trigger["detail-type"]]

    exported = client.get(f"/api/jobs/{job}/export?format=json").json()["events"]
    assert_causal([event["id"] for event in exported], sent, replies)

    paged, url = [], f"/api/jobs/{job}/events?limit=2"
    while url:
        page = client.get(url).json()
        paged += [event["id"] for event in page["results"]]
        url = page["next"]
    assert len(paged) == len(set(paged)) == len(exported)
    assert_causal(paged, sent, replies)

    # The raw event search and the events page, newest first (the envelope's second, all one
    # here, then arrival, which one batch shares: the API; the order time: the page).
    searched = client.get("/api/events", {"job": job}).json()["results"]
    assert len(searched) == len(exported)
    assert_causal([event["id"] for event in searched][::-1], sent, replies)
    page = client.get("/events/", {"job": job}).content.decode()
    newest_first = re.findall(r'<tr class="event-row[^>]*data-event-id="([^"]+)"', page)
    assert len(newest_first) == len(exported)
    assert_causal(newest_first[::-1], sent, replies)


async def _connected(path: str, user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    assert (await communicator.connect(timeout=TIMEOUT))[0]
    return communicator


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("one_batch", [False, True], ids=["answers-later", "one-batch"])
async def test_the_sockets_send_answers_after_their_triggers_with_unique_keys(
    queue, memory_layer, superuser, one_batch
):
    """The original frontend keys and sorts a job's live rows by `sk`; the job socket's
    snapshot is the job page's first list."""
    original = await _connected("/ws/events/?shape=original", superuser)
    try:
        sent, replies = await sync_to_async(skewed_job)(*queue, "skew-live", one_batch=one_batch)
        count = len(sent) + (len(replies) if not one_batch else 3)
        items = [await original.receive_json_from(timeout=TIMEOUT) for _ in range(count)]
    finally:
        await original.disconnect()
    await sync_to_async(assert_the_issues_traffic)(sent, replies)

    keys = [int(item["sk"]) for item in items]
    assert len(set(keys)) == len(keys)
    by_type = {item["detailType"]: (n, int(item["sk"])) for n, item in enumerate(items)}
    for answer in replies[:3]:
        trigger = traffic.trigger_of(answer, sent)
        assert by_type[answer["detail-type"]] > by_type[trigger["detail-type"]]

    job_socket = await _connected(f"/ws/jobs/{traffic.job_id('skew-live')}/", superuser)
    try:
        snapshot = await job_socket.receive_json_from(timeout=TIMEOUT)
    finally:
        await job_socket.disconnect()
    assert snapshot["type"] == "snapshot"
    assert_causal([event["id"] for event in snapshot["events"]], sent, replies)


def _choreography(name: str, *, ahead: float) -> tuple[dict, dict, dict]:
    """A job's start, then an event put by a Lambda whose clock reads `ahead` seconds fast,
    then its answer by a Lambda whose clock is right, answered `ahead` / 2 into that gap."""
    now = time.time()
    start = traffic.status(name, "RUNNING", started=now - 1)
    kick = {"execution": traffic.arn(name)}
    fast = traffic.envelope("ordered", event_detail(
        traffic.envelope("start", kick, second=int(now)), "ordered", {}, source="project",
        fn="orderFn", clock=lambda: now + ahead,
    ), second=int(now))  # fmt: skip
    answer = traffic.envelope("shipped", event_detail(
        fast, "shipped", {}, source="project", fn="shipFn", clock=lambda: now + ahead / 2,
    ), second=int(now))  # fmt: skip
    return start, fast, answer


@pytest.mark.django_db(transaction=True)
async def test_live_keys_stay_unique_and_causal_across_batches(queue, memory_layer, superuser):
    """An event whose producer's clock reads fast gets that clock as its live `sk`; its answer,
    in a later batch, reads a right clock and is received before the fast one's time. Its key
    must still follow its trigger's (the original frontend draws end minus start), and no two
    items of the job share a key, batch after batch (the worker keeps the job's last key)."""
    original = await _connected("/ws/events/?shape=original", superuser)
    try:
        start, fast, answer = _choreography("fast-clock", ahead=3.0)
        again = {**fast, "id": str(uuid.uuid4()), "detail-type": "reordered"}  # same fast ms
        for batch in ([start, fast], [answer], [again]):
            await sync_to_async(send_and_consume)(*queue, batch)
        items = [await original.receive_json_from(timeout=TIMEOUT) for _ in range(4)]
    finally:
        await original.disconnect()
    assert await sync_to_async(at_ms)(answer) < await sync_to_async(at_ms)(fast)  # the case
    keys = [int(item["sk"]) for item in items]
    sent = [start["detail-type"], "ordered", "shipped", "reordered"]
    assert [item["detailType"] for item in items] == sent
    assert keys == sorted(keys) and len(set(keys)) == len(keys), keys

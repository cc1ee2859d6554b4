"""Size budgets and worker health across real processes: daphne, consume_events, Redis, moto.

daphne refuses to send a WebSocket message over 1 MiB: a job snapshot of 470 events of 1 KB
(1.6 MB with each detail twice) closed the job socket with 1011 at every reconnect, and one
600 KB event (a 1.2 MB frame) ended the socket's sender task, leaving every /ws/events/ socket
open and silent.  The stack is tests/test_live_multiprocess.py's.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request

import boto3
import pytest
import websockets

from tests import test_live_multiprocess as stack
from tests.events.conftest import send_bodies

pytestmark = pytest.mark.slow

BOUND = 60  # seconds: an upper bound for each exchange, not a measurement
DAPHNE_LIMIT = 1024 * 1024


def sized(bodies: list[str], size: int, prefix: str) -> list[str]:
    out = []
    for n, body in enumerate(bodies):
        envelope = json.loads(body)
        envelope["id"] = f"{prefix}-{n:05d}"
        envelope["detail"]["blob"] = "x" * size
        out.append(json.dumps(envelope))
    return out


def job_of(body: str) -> str:
    from events.domain.envelope import parse_envelope

    return parse_envelope(body, default_account="123456789012").job


def api(port: int, session_key: str, path: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Cookie": f"sessionid={session_key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for(check, what: str, seconds: float = BOUND):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise TimeoutError(what)


def connect(port: int, session_key: str, path: str):
    return websockets.connect(
        f"ws://127.0.0.1:{port}{path}", origin=f"http://127.0.0.1:{port}", max_size=None,
        additional_headers={"Cookie": f"sessionid={session_key}"},
    )  # fmt: skip


@pytest.fixture
def live_env(tmp_path, redis_url, moto_endpoint):
    """What tests/test_live_multiprocess.py's processes run with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDOBS_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="edobs_site.settings", EDOBS_VAR_DIR=str(tmp_path),
        REDIS_URL=redis_url, AWS_ENDPOINT_URL=moto_endpoint, AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
        EDOBS_QUEUE_NAME=stack.QUEUE, DJANGO_SECRET_KEY="live-test-secret", PYTHONUNBUFFERED="1",
    )  # fmt: skip
    env.pop("AWS_SESSION_TOKEN", None)
    return env


@pytest.fixture
def queue(moto_endpoint):
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    return sqs, sqs.create_queue(QueueName=stack.QUEUE)["QueueUrl"]


def test_a_snapshot_of_470_events_arrives_whole_in_chunks_and_the_worker_is_healthy(
    tmp_path, live_env, queue
):
    sqs, url = queue
    bodies = sized(stack.many_bodies(470), 1000, "snap")
    job = job_of(bodies[0])
    env = live_env | {"EDOBS_HEARTBEAT_SECONDS": "1"}
    with stack.live_stack(env, tmp_path) as ([port], session_key):
        for start in range(0, len(bodies), 50):
            send_bodies(sqs, url, bodies[start : start + 50])
        wait_for(
            lambda: (
                api(port, session_key, f"/api/jobs/{job}/timeline")["job"]["event_count"] == 470
            ),
            "the worker did not store the 470 events",
        )
        frames = asyncio.run(_snapshot(port, session_key, job))
        health = wait_for(
            lambda: (h := api(port, session_key, "/api/health"))["status"] == "ok" and h,
            "the running worker was never reported ok",
        )
    assert len(frames) > 1
    assert all(len(frame.encode()) <= 256 * 1024 for frame in frames)
    events = [event for frame in frames for event in json.loads(frame)["events"]]
    assert sorted(event["id"] for event in events) == sorted(json.loads(b)["id"] for b in bodies)
    assert not any(event.get("truncated") for event in events)
    assert sum(len(frame) for frame in frames) > DAPHNE_LIMIT  # one frame would have failed
    assert [worker["alive"] for worker in health["workers"]] == [True]


async def _snapshot(port: int, session_key: str, job: str) -> list[str]:
    async with connect(port, session_key, f"/ws/jobs/{job}/") as ws:
        frames = []
        while True:
            frames.append(await asyncio.wait_for(ws.recv(), BOUND))
            if not json.loads(frames[-1])["more"]:
                return frames


def test_a_600_kb_event_arrives_trimmed_and_the_events_after_it_still_arrive(
    tmp_path, live_env, queue
):
    sqs, url = queue
    small = sized(stack.many_bodies(4), 10, "small")
    big = sized(stack.many_bodies(1), 600_000, "big")[0]
    bodies = [small[0], big, *small[1:]]
    with stack.live_stack(live_env, tmp_path) as ([port], session_key):
        stream, job = asyncio.run(_watch(port, session_key, sqs, url, bodies))
        whole = api(port, session_key, stream[1]["full"])
    for received in (stream, job):
        assert [event["id"] for event in received] == [json.loads(b)["id"] for b in bodies]
        assert received[1]["truncated"] is True and received[1]["bytes"] > 1_200_000
        assert not any(event.get("truncated") for event in received[2:])
    assert whole["detail"]["blob"] == "x" * 600_000


async def _watch(port, session_key, sqs, url, bodies) -> tuple[list[dict], list[dict]]:
    job = job_of(bodies[0])
    async with (
        connect(port, session_key, "/ws/events/") as stream,
        connect(port, session_key, f"/ws/jobs/{job}/") as job_socket,
    ):
        assert json.loads(await job_socket.recv())["events"] == []
        for body in bodies:  # one by one: the big one is a batch of its own
            await asyncio.to_thread(send_bodies, sqs, url, [body])
            await asyncio.sleep(0.3)
        return (
            await _events(stream, len(bodies)),
            await _events(job_socket, len(bodies)),
        )


async def _events(ws, count: int) -> list[dict]:
    events = []
    while len(events) < count:
        message = json.loads(await asyncio.wait_for(ws.recv(), BOUND))
        assert message["type"] == "event", message
        events.append(message["event"])
    return events

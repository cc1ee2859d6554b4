"""The live stream across real processes: daphne and consume_events share Redis.

daphne serves the sockets, `manage.py consume_events` stores and publishes, moto's server
stands in for SQS, a `websockets` client logged in by session cookie listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import boto3
import pytest
import websockets

from tests.events.conftest import sample_lines, send_bodies
from tests.services import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
QUEUE = "edobs-live-test"
BOUND = 60  # seconds: an upper bound for the whole exchange, not a measurement

SESSION_SCRIPT = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
user = get_user_model().objects.create_superuser("live", "live@example.com", "pw-live-123")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


@pytest.fixture
def live_env(tmp_path, redis_url, moto_endpoint):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDOBS_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="edobs_site.settings", EDOBS_VAR_DIR=str(tmp_path),
        REDIS_URL=redis_url, AWS_ENDPOINT_URL=moto_endpoint, AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", EDOBS_QUEUE_NAME=QUEUE,
        DJANGO_SECRET_KEY="live-test-secret", PYTHONUNBUFFERED="1",
    )  # fmt: skip
    env.pop("AWS_SESSION_TOKEN", None)
    return env


def manage(env, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"daphne exited: {proc.stdout.read()}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("daphne did not listen")


def start(env, tmp_path, name: str, cmd: list[str]) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115  (closed with the process)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def live_stack(env: dict, tmp_path):
    """Migrate, log a superuser in, start daphne and `consume_events`; yields (port, session
    key) and stops both at the end, printing the tail of their logs."""
    manage(env, "migrate", "--noinput")
    session_key = manage(env, "shell", "-c", SESSION_SCRIPT).strip().splitlines()[-1]
    port = free_port()
    daphne = start(env, tmp_path, "daphne", [
        str(Path(sys.executable).with_name("daphne")), "-b", "127.0.0.1", "-p", str(port),
        "edobs_site.asgi:application",
    ])  # fmt: skip
    worker = start(env, tmp_path, "worker", [
        sys.executable, "manage.py", "consume_events", "--wait", "1",
    ])  # fmt: skip
    try:
        wait_for_port(port, daphne)
        yield port, session_key
    finally:
        stop(worker)
        stop(daphne)
        for name in ("daphne", "worker"):
            print(f"--- {name} log ---\n{(tmp_path / f'{name}.log').read_text()[-3000:]}")


def two_jobs() -> dict[str, list[str]]:
    """The bodies of the first two jobs of the samples, each in its own order."""
    from events.envelope import parse_envelope

    jobs: dict[str, list[str]] = defaultdict(list)
    for body in sample_lines():
        job = parse_envelope(body, default_account="123456789012").job
        if job and (job in jobs or len(jobs) < 2):
            jobs[job].append(body)
    return dict(jobs)


async def listen(url: str, origin: str, cookie: str, expected: int, ready) -> list[dict]:
    events: list[dict] = []
    async with websockets.connect(url, origin=origin, additional_headers={"Cookie": cookie}) as ws:
        ready.set()
        deadline = time.monotonic() + BOUND
        while len(events) < expected and time.monotonic() < deadline:
            message = json.loads(await asyncio.wait_for(ws.recv(), BOUND))
            if message["type"] == "event":
                events.append(message["event"])
        try:  # anything more would be a duplicate
            extra = json.loads(await asyncio.wait_for(ws.recv(), 2))
            events.append(extra["event"])
        except TimeoutError:
            pass
    return events


def test_it_streams_each_event_once_in_order_across_processes(tmp_path, live_env, moto_endpoint):
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    with live_stack(live_env, tmp_path) as (port, session_key):
        jobs = two_jobs()
        # Interleave the two jobs, each in its own order.
        bodies = [b for pair in zip(*jobs.values(), strict=False) for b in pair]
        events = asyncio.run(_exchange(port, session_key, sqs, queue_url, bodies))
    ids = [event["id"] for event in events]
    assert len(ids) == len(set(ids)) == len(bodies)
    assert set(ids) == {json.loads(body)["id"] for body in bodies}
    for job, job_bodies in jobs.items():
        sent = [json.loads(b)["id"] for b in job_bodies if b in bodies]
        assert [e["id"] for e in events if e["job"] == job] == sent


async def _exchange(port: int, session_key: str, sqs, queue_url: str, bodies: list[str]):
    ready = asyncio.Event()
    listener = asyncio.create_task(listen(
        f"ws://127.0.0.1:{port}/ws/events/", f"http://127.0.0.1:{port}",
        f"sessionid={session_key}", len(bodies), ready,
    ))  # fmt: skip
    await asyncio.wait_for(ready.wait(), BOUND)
    # The consumer joins its groups before it accepts: nothing published from here is missed.
    # Batch by batch, as producers emit: moto then hands them to the one worker in order.
    for start_at in range(0, len(bodies), 10):
        await asyncio.to_thread(send_bodies, sqs, queue_url, bodies[start_at : start_at + 10])
        await asyncio.sleep(0.2)
    return await asyncio.wait_for(listener, BOUND + 5)


def many_bodies(count: int) -> list[str]:
    """`count` events of the samples' first job, each with an envelope id of its own."""
    from events.envelope import parse_envelope

    first = next(iter(two_jobs().values()))
    bodies = []
    for n in range(count):
        envelope = json.loads(first[n % len(first)])
        envelope["id"] = f"slow-client-{n:05d}"
        bodies.append(json.dumps(envelope))
    assert parse_envelope(bodies[0], default_account="123456789012").job
    return bodies


def test_a_client_that_reads_slowly_is_told_what_it_lost_and_holds_up_no_one(
    tmp_path, live_env, moto_endpoint
):
    """One client stops reading its socket while 1,500 events flow; another reads them all.

    daphne would buffer the stalled client's frames without limit and never report a loss.
    With backpressure its sender waits on the full socket, its outbox of 16 drops the oldest
    frames, and when it reads again every event is either received once or counted in a
    `lagged` notice: nothing is lost silently.
    """
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    env = live_env | {"EDOBS_WS_QUEUE_SIZE": "16"}
    bodies = many_bodies(1500)
    with live_stack(env, tmp_path) as (port, session_key):
        fast, slow = asyncio.run(_slow_and_fast(port, session_key, sqs, queue_url, bodies))

    ids = [json.loads(body)["id"] for body in bodies]
    assert [event["id"] for event in fast] == ids
    received = [m["event"]["id"] for m in slow if m["type"] == "event"]
    missed = [m["missed"] for m in slow if m["type"] == "lagged"]
    assert missed, "the stalled client was never told it lagged"
    assert len(received) == len(set(received))
    assert received == [i for i in ids if i in set(received)]  # in order, gaps only
    assert len(received) + sum(missed) == len(ids)
    assert received[-1] == ids[-1]  # the newest event still arrives


async def _slow_and_fast(port: int, session_key: str, sqs, queue_url: str, bodies: list[str]):
    url, origin = f"ws://127.0.0.1:{port}/ws/events/", f"http://127.0.0.1:{port}"
    cookie = {"Cookie": f"sessionid={session_key}"}
    tiny = socket.socket()
    tiny.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills after a few frames
    tiny.connect(("127.0.0.1", port))
    async with websockets.connect(
        url, origin=origin, additional_headers=cookie, sock=tiny, max_queue=1
    ) as slow:
        ready = asyncio.Event()
        fast = asyncio.create_task(
            listen(url, origin, f"sessionid={session_key}", len(bodies), ready)
        )
        await asyncio.wait_for(ready.wait(), BOUND)
        for start_at in range(0, len(bodies), 50):  # moto's queue stays shallow, and fast
            await asyncio.to_thread(send_bodies, sqs, queue_url, bodies[start_at : start_at + 50])
            await asyncio.sleep(0.1)
        fast_events = await asyncio.wait_for(fast, BOUND + 5)
        # Everything is published by now: read what the stalled client was sent.
        messages = []
        while True:
            try:
                messages.append(json.loads(await asyncio.wait_for(slow.recv(), 3)))
            except TimeoutError:
                return fast_events, messages

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
# Deadlines come from progress, not from the size of the exchange: a client fails only when
# nothing new has arrived for IDLE_FACTOR times what the first event took to go through the
# whole pipeline (SQS, worker, Redis, daphne) on this machine, and never for less than
# IDLE_FLOOR seconds.  STARTUP bounds process start-up and the first event only.
STARTUP = 120
IDLE_FACTOR = 20
IDLE_FLOOR = 15.0
MAX_DEPTH = 100  # moto's receive slows down as its queue grows (FACTS.md): send at the pace

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


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = STARTUP) -> None:
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
def live_stack(env: dict, tmp_path, *, servers: int = 1, daphne_args: tuple[str, ...] = ()):
    """Migrate, log a superuser in, start `servers` daphne processes and `consume_events`;
    yields (ports, session key) and stops them all at the end, printing the tail of their logs.
    """
    manage(env, "migrate", "--noinput")
    session_key = manage(env, "shell", "-c", SESSION_SCRIPT).strip().splitlines()[-1]
    ports = [free_port() for _ in range(servers)]
    names = [f"daphne-{n}" for n in range(servers)]
    daphnes = [
        start(
            env,
            tmp_path,
            name,
            [
                str(Path(sys.executable).with_name("daphne")),
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                *daphne_args,
                "edobs_site.asgi:application",
            ],
        )
        for name, port in zip(names, ports, strict=True)
    ]
    worker = start(env, tmp_path, "worker", [
        sys.executable, "manage.py", "consume_events", "--wait", "1",
    ])  # fmt: skip
    try:
        for port, daphne in zip(ports, daphnes, strict=True):
            wait_for_port(port, daphne)
        yield ports, session_key
    finally:
        stop(worker)
        for daphne in daphnes:
            stop(daphne)
        for name in (*names, "worker"):
            print(f"--- {name} log ---\n{(tmp_path / f'{name}.log').read_text()[-3000:]}")


class Pace:
    """When the first event went in, and how long it took to come out: the idle deadline."""

    def __init__(self) -> None:
        self.sent_at: float | None = None
        self.first_latency: float | None = None

    def sent(self) -> None:
        if self.sent_at is None:
            self.sent_at = time.monotonic()

    def arrived(self) -> None:
        if self.first_latency is None and self.sent_at is not None:
            self.first_latency = time.monotonic() - self.sent_at

    def idle(self) -> float:
        """Seconds a client may wait for its next frame before the stream counts as stuck."""
        if self.first_latency is None:
            return STARTUP
        return max(IDLE_FLOOR, IDLE_FACTOR * self.first_latency)


def two_jobs() -> dict[str, list[str]]:
    """The bodies of the first two jobs of the samples, each in its own order."""
    from events.domain.envelope import parse_envelope

    jobs: dict[str, list[str]] = defaultdict(list)
    for body in sample_lines():
        job = parse_envelope(body, default_account="123456789012").job
        if job and (job in jobs or len(jobs) < 2):
            jobs[job].append(body)
    return dict(jobs)


class Marker:
    """One more event, stored once every party (a client) has heard all it expects. Each then
    reads on up to it: a frame before it is a duplicate. The marker went through the whole
    pipeline after the events it follows, so a duplicate of them had its chance to arrive
    first, which a fixed wait for nothing cannot say on a loaded machine."""

    def __init__(self, sqs, queue_url: str, parties: int) -> None:
        self.sqs, self.queue_url, self.waiting = sqs, queue_url, parties
        envelope = json.loads(next(iter(two_jobs().values()))[0])
        envelope["id"] = self.id = f"marker-{os.urandom(6).hex()}"
        self.body = json.dumps(envelope)

    async def heard_all(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            await asyncio.to_thread(send_bodies, self.sqs, self.queue_url, [self.body])

    async def read_up_to(self, ws, pace: Pace) -> list[dict]:
        """The frames `ws` gets before the marker (none, unless something came twice)."""
        before = []
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), pace.idle()))
            if message.get("event", {}).get("id") == self.id:
                return before
            before.append(message)


async def listen(
    url: str, origin: str, cookie: str, expected: int, ready, pace: Pace, marker: Marker
) -> list[dict]:
    events: list[dict] = []
    async with websockets.connect(url, origin=origin, additional_headers={"Cookie": cookie}) as ws:
        ready.set()
        while len(events) < expected:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), pace.idle()))
            except TimeoutError:
                raise AssertionError(
                    f"no frame for {pace.idle():.0f} s after {len(events)} of {expected} events"
                ) from None
            if message["type"] == "event":
                pace.arrived()
                events.append(message["event"])
        await marker.heard_all()
        # anything more, up to the marker, would be a duplicate
        events += [extra["event"] for extra in await marker.read_up_to(ws, pace)]
    return events


async def send_paced(sqs, queue_url: str, bodies: list[str], pace: Pace, *, size: int) -> None:
    """Batch by batch, as producers emit; waits while the queue is deeper than MAX_DEPTH."""
    for start_at in range(0, len(bodies), size):
        while await asyncio.to_thread(_depth, sqs, queue_url) > MAX_DEPTH:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(send_bodies, sqs, queue_url, bodies[start_at : start_at + size])
        pace.sent()


def _depth(sqs, queue_url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)
    return sum(int(value) for value in attributes["Attributes"].values())


def test_it_streams_each_event_once_in_order_across_processes(tmp_path, live_env, moto_endpoint):
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    with live_stack(live_env, tmp_path) as ([port], session_key):
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
    ready, pace = asyncio.Event(), Pace()
    listener = asyncio.create_task(listen(
        f"ws://127.0.0.1:{port}/ws/events/", f"http://127.0.0.1:{port}",
        f"sessionid={session_key}", len(bodies), ready, pace, Marker(sqs, queue_url, 1),
    ))  # fmt: skip
    await asyncio.wait_for(ready.wait(), STARTUP)
    # The consumer joins its groups before it accepts: nothing published from here is missed.
    # Batch by batch, as producers emit: moto then hands them to the one worker in order.
    for start_at in range(0, len(bodies), 10):
        await asyncio.to_thread(send_bodies, sqs, queue_url, bodies[start_at : start_at + 10])
        pace.sent()
        await asyncio.sleep(0.2)
    return await listener


def test_clients_of_two_daphne_processes_get_the_same_live_events(
    tmp_path, live_env, moto_endpoint
):
    """Two daphne processes share Redis: an event the one worker stores reaches the clients of
    both servers, once each, in the same order."""
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    bodies = [b for pair in zip(*two_jobs().values(), strict=False) for b in pair]
    with live_stack(live_env, tmp_path, servers=2) as (ports, session_key):
        first, second = asyncio.run(_two_servers(ports, session_key, sqs, queue_url, bodies))

    ids = [json.loads(body)["id"] for body in bodies]
    assert sorted(e["id"] for e in first) == sorted(ids)  # each event once, on each server
    assert [e["id"] for e in first] == [e["id"] for e in second]


async def _two_servers(ports: list[int], session_key: str, sqs, queue_url, bodies: list[str]):
    pace, marker = Pace(), Marker(sqs, queue_url, len(ports))
    readies = [asyncio.Event() for _ in ports]
    listeners = [
        asyncio.create_task(
            listen(
                f"ws://127.0.0.1:{port}/ws/events/",
                f"http://127.0.0.1:{port}",
                f"sessionid={session_key}",
                len(bodies),
                ready,
                pace,
                marker,
            )
        )  # fmt: skip
        for port, ready in zip(ports, readies, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), STARTUP)
    await send_paced(sqs, queue_url, bodies, pace, size=10)
    return await asyncio.gather(*listeners)


def many_bodies(count: int) -> list[str]:
    """`count` events of the samples' first job, each with an envelope id of its own."""
    from events.domain.envelope import parse_envelope

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
    """One client stops reading its socket while 600 events flow; another reads them all.

    daphne would buffer the stalled client's frames without limit and never report a loss.
    With backpressure its sender waits on the full socket, its outbox of 16 drops the oldest
    frames, and when it reads again every event is either received once or counted in a
    `lagged` notice: nothing is lost silently.
    """
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    env = live_env | {"EDOBS_WS_QUEUE_SIZE": "16"}
    bodies = many_bodies(600)
    # A client that stops reading cannot answer daphne's keepalive pings either: with daphne's
    # defaults it is dropped (1006) about 20 + 30 s into the stall, and on a busy machine
    # 600 events can take longer than that to flow (seen: 50 s for 1,500 at 30 events/s).  The stall
    # here lasts as long as the stream, so daphne must not drop it for that.
    no_keepalive_drop = ("--ping-timeout", "3600")
    with live_stack(env, tmp_path, daphne_args=no_keepalive_drop) as ([port], session_key):
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
    pace = Pace()
    # Nor can it read the server's pong to its own pings: without them it is not closed for
    # that ("keepalive ping timeout", then "timed out while closing connection") when the
    # stream lasts longer than ping_interval + ping_timeout; and the close at the end may take
    # as long as the server needs to flush.
    async with websockets.connect(
        url, origin=origin, additional_headers=cookie, sock=tiny, max_queue=1,
        ping_interval=None, close_timeout=STARTUP,
    ) as slow:  # fmt: skip
        ready, marker = asyncio.Event(), Marker(sqs, queue_url, 2)
        fast = asyncio.create_task(
            listen(url, origin, f"sessionid={session_key}", len(bodies), ready, pace, marker)
        )
        await asyncio.wait_for(ready.wait(), STARTUP)
        await send_paced(sqs, queue_url, bodies, pace, size=50)
        # Read what the stalled client was sent, up to the newest event (it must arrive); the
        # marker follows only then (so it cannot push that event out of the outbox), and
        # anything between the two is a duplicate.
        messages: list[dict] = []
        last = json.loads(bodies[-1])["id"]
        reached = True
        while not messages or messages[-1].get("event", {}).get("id") != last:
            try:
                messages.append(json.loads(await asyncio.wait_for(slow.recv(), pace.idle())))
            except TimeoutError:
                reached = False  # the assertions say what is missing
                break
        await marker.heard_all()
        if reached:
            messages += await marker.read_up_to(slow, pace)
        return await fast, messages

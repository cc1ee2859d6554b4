"""The live stream through WebsocketCommunicator, with the in-memory channel layer.

Events are stored through services.event_ingest, so the real publish path is exercised.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client

from edobs_site.asgi import application
from events.ingest.inprocess import start_inprocess_worker
from events.live import tracking
from events.models import Connection
from events.routing import websocket_urlpatterns
from tests.conftest import need
from tests.events.conftest import ACCOUNT_B, ingest_bodies, sample_lines
from tests.markers import assert_silent
from tests.prom import own, value
from tests.services import RedisServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("memory_layer")]
TIMEOUT = 5  # an upper bound for a message to arrive, not a measurement


def job_bodies(count: int | None = None) -> list[str]:
    """Sample envelopes that belong to the first job of the samples, in order."""
    lines = [line for line in sample_lines() if "EventDrivenMachine" in line]
    first_job = _job_of(lines[0])
    bodies = [line for line in lines if _job_of(line) == first_job]
    return bodies[:count] if count else bodies


def _job_of(body: str) -> str | None:
    from events.domain.envelope import parse_envelope

    return parse_envelope(body, default_account="123456789012").job


def other_account(body: str) -> str:
    envelope = json.loads(body)
    envelope["account"] = ACCOUNT_B
    envelope["id"] = envelope["id"][:-4] + "beef"
    return json.dumps(envelope)


async def ingest(bodies: list[str]):
    return await sync_to_async(ingest_bodies)(bodies)


async def connect(path: str, user=None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    if user is not None:
        communicator.scope["user"] = user
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    return communicator


async def event_ids(communicator, count: int) -> list[str]:
    received = []
    for _ in range(count):
        message = await communicator.receive_json_from(timeout=TIMEOUT)
        assert message["type"] == "event", message
        received.append(message["event"]["id"])
    return received


def ids_of(bodies: list[str]) -> list[str]:
    return [json.loads(body)["id"] for body in bodies]


async def test_it_refuses_anonymous_users_with_4401():
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=headers)
    try:
        await communicator.connect(timeout=TIMEOUT)
        closed = await communicator.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4401}
    finally:
        await communicator.disconnect()


async def test_it_refuses_a_foreign_origin(member):
    communicator = WebsocketCommunicator(
        application, "/ws/events/", headers=[(b"origin", b"http://evil.example")]
    )
    try:
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert not connected
    finally:
        await communicator.disconnect()


async def expect_next(communicator, bodies: list[str]) -> None:
    """Nothing arrived before `bodies`, stored now, which this socket must get: the layer hands
    a socket its messages in order and its outbox sends them in order, so a frame of anything
    stored earlier would come first. Unlike a fixed wait for nothing, this cannot pass because
    the machine was too slow to deliver the earlier events in time."""
    await ingest(bodies)
    assert await event_ids(communicator, len(bodies)) == ids_of(bodies)


async def test_it_answers_another_teams_job_like_an_unknown_one(member, outsider):
    """Forbidden and unknown look the same: an empty snapshot, then nothing of that job."""
    bodies = job_bodies(4)
    await ingest(bodies[:2])
    job_id = _job_of(bodies[0])
    jobs = [job_id, job_id.replace("Machine", "Mxxx")]
    sockets = [await connect(f"/ws/jobs/{job}/", outsider) for job in jobs]
    try:
        for communicator in sockets:
            snapshot = await communicator.receive_json_from(timeout=TIMEOUT)
            assert snapshot == {"type": "snapshot", "events": [], "more": False}
        await ingest(bodies[2:])
        for communicator, job in zip(sockets, jobs, strict=True):
            # They joined no group: a marker on their own channel is their next frame.
            await assert_silent(communicator, outsider, f"/ws/jobs/{job}/", job)
    finally:
        for communicator in sockets:
            await communicator.disconnect()


@pytest.mark.parametrize("form", ["full", "short", "name"])
async def test_it_watches_a_job_that_has_not_sent_its_first_event_yet(member, outsider, form):
    """A script starts an execution and watches it at once: an empty snapshot, then the job's
    events, and none of the same execution name in an account the user may not see."""
    bodies, later = job_bodies(4)[:3], job_bodies(4)[3:]
    job_id = _job_of(bodies[0])
    account, region, machine, name = job_id.split(":")
    path = {"full": job_id, "short": f"{machine}:{name}", "name": name}[form]
    communicator = await connect(f"/ws/jobs/{path}/", member)
    try:
        snapshot = await communicator.receive_json_from(timeout=TIMEOUT)
        assert snapshot == {"type": "snapshot", "events": [], "more": False}
        theirs = [other_account(body) for body in bodies]
        another_job = [line for line in sample_lines() if _job_of(line) not in (job_id, None)]
        await ingest([theirs[0], bodies[0], another_job[0], theirs[1], bodies[1], bodies[2]])
        assert await event_ids(communicator, 3) == ids_of(bodies)
        await expect_next(communicator, later)
    finally:
        await communicator.disconnect()


async def test_it_streams_only_the_accounts_a_team_may_see(member, outsider):
    alice = await connect("/ws/events/", member)
    bob = await connect("/ws/events/", outsider)
    try:
        mine = job_bodies(3)
        theirs = [other_account(body) for body in job_bodies(3)]
        await ingest(theirs[:2] + mine[:2])
        assert await event_ids(alice, 2) == ids_of(mine[:2])
        assert await event_ids(bob, 2) == ids_of(theirs[:2])
        await ingest([theirs[2], mine[2]])  # each socket's next frame is its own account's
        assert await event_ids(alice, 1) == ids_of(mine[2:])
        assert await event_ids(bob, 1) == ids_of(theirs[2:])
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def test_it_streams_every_account_to_a_superuser(superuser):
    root = await connect("/ws/events/", superuser)
    try:
        bodies = job_bodies(2) + [other_account(body) for body in job_bodies(2)]
        await ingest(bodies)
        assert await event_ids(root, 4) == ids_of(bodies)
        await expect_next(root, job_bodies(3)[2:])
    finally:
        await root.disconnect()


async def test_it_sends_a_snapshot_then_the_jobs_new_events(member):
    bodies = job_bodies()
    report = await ingest(bodies[:3])
    job_id = report.new_events[0].job
    communicator = await connect(f"/ws/jobs/{job_id}/", member)
    try:
        snapshot = await communicator.receive_json_from(timeout=TIMEOUT)
        assert snapshot["type"] == "snapshot"
        assert [event["id"] for event in snapshot["events"]] == ids_of(bodies[:3])
        assert snapshot["events"][0]["job"] == job_id
        other_job = [line for line in sample_lines() if _job_of(line) not in (None, job_id)][:2]
        await ingest(bodies[3:6] + other_job)
        assert await event_ids(communicator, 3) == ids_of(bodies[3:6])
        await expect_next(communicator, bodies[6:7])
    finally:
        await communicator.disconnect()


async def test_it_never_publishes_a_duplicate(superuser):
    communicator = await connect("/ws/events/", superuser)
    try:
        bodies = job_bodies(3)
        await ingest(bodies[:2])
        await ingest([bodies[0], bodies[1], bodies[2], bodies[2]])
        assert await event_ids(communicator, 3) == ids_of(bodies)
        await expect_next(communicator, job_bodies(4)[3:])
    finally:
        await communicator.disconnect()


async def test_it_tells_a_slow_client_how_many_messages_it_lost(settings, member):
    settings.EDOBS_WS_QUEUE_SIZE = 2
    communicator = await connect("/ws/events/", member)
    try:
        bodies = job_bodies(5)
        # One batch reaches the consumer as one message: the outbox overflows before any send.
        await ingest(bodies)
        lagged = await communicator.receive_json_from(timeout=TIMEOUT)
        assert lagged == {"type": "lagged", "missed": 3}
        assert await event_ids(communicator, 2) == ids_of(bodies[3:])
    finally:
        await communicator.disconnect()


async def test_it_tracks_the_connection_while_it_is_open(member):
    communicator = await connect("/ws/events/")  # anonymous: refused, and no row for it
    await communicator.receive_output(timeout=TIMEOUT)
    await communicator.disconnect()
    assert await sync_to_async(Connection.objects.count)() == 0

    communicator = await connect("/ws/events/", member)
    try:
        row = await sync_to_async(Connection.objects.select_related("user").get)()
        assert (row.user, row.path, row.job_id) == (member, "/ws/events/", "")
        assert row.server
    finally:
        await communicator.disconnect()
    assert await sync_to_async(Connection.objects.count)() == 0


async def test_the_open_sockets_gauge_follows_the_connections(member, tmp_path):
    def gauge(name: str) -> float:
        return value(own(tmp_path / name), "edobs_websocket_connections")

    before = gauge("before")
    refused = await connect("/ws/events/")  # anonymous: refused, never counted
    await refused.receive_output(timeout=TIMEOUT)
    await refused.disconnect()
    communicator = await connect("/ws/events/", member)
    try:
        assert gauge("open") == before + 1
    finally:
        await communicator.disconnect()
    assert gauge("closed") == before


async def test_it_records_the_frames_each_connection_was_sent(settings, member):
    settings.EDOBS_WS_TOUCH_SECONDS = 0.05
    communicator = await connect("/ws/events/", member)
    try:
        bodies = job_bodies(3)
        await ingest(bodies)
        assert await event_ids(communicator, 3) == ids_of(bodies)
        row = await _connection_when(lambda row: row.messages_sent == 3)
        assert row.messages_sent == 3
        assert row.last_seen > row.connected_at
    finally:
        await communicator.disconnect()


async def _connection_when(condition, seconds: float = TIMEOUT) -> Connection:
    """The connection row once `condition` holds (it is written every few ticks)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        row = await sync_to_async(Connection.objects.get)()
        if condition(row) or asyncio.get_running_loop().time() > deadline:
            return row
        await asyncio.sleep(0.02)


@pytest.fixture
def restartable_redis(settings):
    """A Redis of its own as REDIS_URL (the layer stays in memory: only the watch reads it)."""
    server = need(RedisServer)
    try:
        server.start()
        settings.REDIS_URL = server.url
        yield server
    finally:
        server.close()


async def test_it_closes_every_socket_when_the_layers_redis_restarts(restartable_redis, member):
    """A restarted Redis forgot every group: sockets are closed so the pages resynchronise."""
    sockets = [await connect("/ws/events/", member) for _ in range(3)]
    try:
        await asyncio.sleep(tracking.WATCH_SECONDS)  # the watch has read the first run_id
        await sync_to_async(restartable_redis.stop)()
        await sync_to_async(restartable_redis.start)()
        for communicator in sockets:
            closed = await communicator.receive_output(timeout=TIMEOUT)
            assert closed == {"type": "websocket.close", "code": tracking.CLOSE_LAYER_LOST}
    finally:
        for communicator in sockets:
            await communicator.disconnect()


async def test_it_still_watches_redis_for_a_socket_opened_as_the_last_one_closed(
    restartable_redis, member
):
    """A page that navigates closes one socket and opens the next: the watch carries on."""
    first = await connect("/ws/events/", member)
    await first.disconnect()
    second = await connect("/ws/events/", member)
    try:
        await asyncio.sleep(tracking.WATCH_SECONDS * 2)  # the first socket's watch has ended
        await sync_to_async(restartable_redis.stop)()
        closed = await second.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": tracking.CLOSE_LAYER_LOST}
    finally:
        await second.disconnect()


async def test_it_closes_a_connection_an_admin_disconnects(superuser, member):
    communicator = await connect("/ws/events/", member)
    try:
        row = await sync_to_async(Connection.objects.get)()
        response = await sync_to_async(_admin_disconnect)(superuser, row.pk)
        assert response.status_code == 302
        closed = await communicator.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4000}
    finally:
        await communicator.disconnect()


def _admin_disconnect(admin_user, pk: int):
    client = Client()
    client.force_login(admin_user)
    return client.post(
        "/admin/events/connection/", {"action": "disconnect", "_selected_action": [pk]}
    )


async def test_it_delivers_from_the_in_process_worker(sqs_queue, member):
    """The demo mode: the ingest loop as a thread of the server, in-memory layer."""
    import threading

    communicator = await connect("/ws/events/", member)
    stop = threading.Event()
    thread = start_inprocess_worker(stop, wait_seconds=0)
    try:
        bodies = job_bodies(4)
        await sync_to_async(sqs_queue.send)(bodies)
        received = set(await event_ids(communicator, 4))
        assert received == set(ids_of(bodies))
    finally:
        stop.set()
        await sync_to_async(thread.join)(TIMEOUT)
        await communicator.disconnect()


def test_it_counts_publish_failures_and_keeps_the_events(settings):
    """A channel layer that cannot be reached (nothing listens on the port) loses no event."""
    from events.models import Event
    from tests.services import free_port

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": settings.REDIS_LAYER_BACKEND,
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]},
        }
    }
    channel_layers.backends.clear()
    bodies = job_bodies(2)
    report = ingest_bodies(bodies)
    assert report.counts["stored"] == 2
    assert report.publish_failures == 2 * 3  # each event: its account, its job, superusers
    assert Event.objects.count() == 2


# ---- size budgets: chunked snapshots, trimmed events, a refused frame silences nothing -------


def sized_bodies(count: int, size: int, *, prefix: str = "big") -> list[str]:
    """`count` events of the samples' first job, each with `size` bytes of detail."""
    first = job_bodies()
    bodies = []
    for n in range(count):
        envelope = json.loads(first[n % len(first)])
        envelope["id"] = f"{prefix}-{n:05d}"
        envelope["detail"]["blob"] = "x" * size
        bodies.append(json.dumps(envelope))
    return bodies


async def snapshot_frames(communicator) -> list[str]:
    """The raw frames of a snapshot, up to the one that says `"more": false`."""
    frames = []
    while True:
        frames.append(await communicator.receive_from(timeout=TIMEOUT))
        message = json.loads(frames[-1])
        assert message["type"] == "snapshot"
        if not message["more"]:
            return frames


async def test_it_sends_a_big_snapshot_in_chunks_under_the_frame_budget(settings, member):
    settings.EDOBS_WS_FRAME_BYTES = 64 * 1024
    bodies = sized_bodies(470, 1000)
    await ingest(bodies)
    communicator = await connect(f"/ws/jobs/{_job_of(bodies[0])}/", member)
    try:
        frames = await snapshot_frames(communicator)
        assert len(frames) > 1
        assert all(len(frame.encode()) <= settings.EDOBS_WS_FRAME_BYTES for frame in frames)
        events = [event for frame in frames for event in json.loads(frame)["events"]]
        assert {event["id"] for event in events} == set(ids_of(bodies))
        assert len(events) == 470 and not any(event.get("truncated") for event in events)
        assert [json.loads(frame)["more"] for frame in frames] == [True] * (len(frames) - 1) + [
            False
        ]
    finally:
        await communicator.disconnect()


async def test_it_sends_an_event_over_the_budget_trimmed_with_a_link(settings, member, client):
    settings.EDOBS_WS_FRAME_BYTES = 64 * 1024
    bodies = job_bodies(3)
    envelope = json.loads(bodies[1])
    envelope["detail"]["blob"] = "x" * 600_000
    bodies[1] = json.dumps(envelope)
    communicator = await connect("/ws/events/", member)
    try:
        await ingest(bodies)
        frames = [await communicator.receive_from(timeout=TIMEOUT) for _ in range(3)]
        assert all(len(frame) <= settings.EDOBS_WS_FRAME_BYTES for frame in frames)
        events = [json.loads(frame)["event"] for frame in frames]
        assert [event["id"] for event in events] == ids_of(bodies)
        big = events[1]
        assert big["truncated"] is True and big["bytes"] > 1_200_000
        assert big["detail"]["truncated"] is True and big["raw"]["truncated"] is True
        assert (big["source"], big["detail_type"], big["job"]) == (
            envelope["source"], envelope["detail-type"], _job_of(bodies[1]),
        )  # fmt: skip
        assert "truncated" not in events[0] and "truncated" not in events[2]
        whole = await sync_to_async(_get_json)(client, member, big["full"])
        assert whole["detail"]["blob"] == "x" * 600_000
    finally:
        await communicator.disconnect()


def _get_json(client, user, url: str) -> dict:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, response.content[:200]
    return response.json()


def test_it_keeps_each_channel_layer_message_under_the_budget(settings):
    """A batch of big events goes out as several small messages per group, in order."""
    from events.domain.envelope import parse_envelope
    from events.live.broadcast import group_messages

    settings.EDOBS_WS_FRAME_BYTES = 64 * 1024
    bodies = sized_bodies(10, 20_000) + sized_bodies(1, 900_000, prefix="huge")
    events = [parse_envelope(body, default_account="123456789012") for body in bodies]
    messages = group_messages(events)
    for group in {group for group, _ in messages}:
        sent = [m for g, m in messages if g == group]
        assert len(sent) > 1
        assert [entry[0] for m in sent for entry in m["events"]] == [e.id for e in events]
        for message in sent:
            assert sum(len(entry[1]) for entry in message["events"]) <= 64 * 1024


async def test_a_frame_the_server_refuses_is_counted_and_the_next_ones_still_go(
    monkeypatch, member
):
    """daphne raises on a message over 1 MiB; that once ended the sender task for good."""
    from events.live.consumers import LiveConsumer

    real_send = LiveConsumer.send

    async def refusing_send(self, text_data=None, **kwargs):
        if text_data and "refuse-me" in text_data:
            raise RuntimeError("tried to send WebSocket message exceeding payload limit")
        await real_send(self, text_data=text_data, **kwargs)

    monkeypatch.setattr(LiveConsumer, "send", refusing_send)
    bodies = job_bodies(3)
    envelope = json.loads(bodies[1])
    envelope["detail"]["note"] = "refuse-me"
    bodies[1] = json.dumps(envelope)
    communicator = await connect("/ws/events/", member)
    try:
        for body in bodies:
            await ingest([body])
            await asyncio.sleep(0.05)
        assert await event_ids(communicator, 1) == ids_of(bodies[:1])
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {
            "type": "lagged", "missed": 1,
        }  # fmt: skip
        assert await event_ids(communicator, 1) == ids_of(bodies[2:])
    finally:
        await communicator.disconnect()


@pytest.fixture
def redis_layer(settings, redis_url):
    """The Redis pub/sub channel layer of production, on the session's redis-server."""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": settings.REDIS_LAYER_BACKEND, "CONFIG": {"hosts": [redis_url]}}
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


async def test_it_delivers_a_600_kb_event_trimmed_and_the_next_ones_through_redis(
    redis_layer, member
):
    bodies = job_bodies(3)
    envelope = json.loads(bodies[1])
    envelope["detail"]["blob"] = "x" * 600_000
    bodies[1] = json.dumps(envelope)
    communicator = await connect("/ws/events/", member)
    try:
        for body in bodies:
            report = await ingest([body])
            assert report.publish_failures == 0
        frames = [await communicator.receive_from(timeout=TIMEOUT) for _ in range(3)]
        events = [json.loads(frame)["event"] for frame in frames]
        assert [event["id"] for event in events] == ids_of(bodies)
        assert events[1]["truncated"] is True
        assert max(len(frame) for frame in frames) <= 256 * 1024
    finally:
        await communicator.disconnect()

"""A user holds at most EDOBS_WS_MAX_PER_USER sockets, counted over every server process."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from events.live.consumers import CLOSE_TOO_MANY
from events.models import Connection
from events.routing import websocket_urlpatterns
from tests.markers import send_marker

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT = 5


@pytest.fixture(autouse=True)
def limit_of_two(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.EDOBS_WS_MAX_PER_USER = 2
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice-123")


@contextlib.asynccontextmanager
async def sockets(user, count: int):
    """`count` sockets of `user` on /ws/events/, each with its first output (None: open)."""
    opened = []
    try:
        for _ in range(count):
            communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/events/")
            communicator.scope["user"] = user
            opened.append(communicator)
            connected, _ = await communicator.connect(timeout=TIMEOUT)
            assert connected
        # Every socket still open gets a marker on its own channel, after its connect was
        # handled: its first output is then the marker, and a refused one's is its close.
        marker = await send_marker(user, "/ws/events/")
        yield [await first_output(c, marker) for c in opened]
    finally:
        for communicator in opened:
            await communicator.disconnect()


async def first_output(communicator, marker: dict | None) -> dict | None:
    """None when the socket stayed open (its first frame is the marker), else what it got."""
    output = await communicator.receive_output(timeout=TIMEOUT)
    if output.get("type") == "websocket.send" and json.loads(output["text"]) == marker:
        return None
    return output


def other_server_socket(user, *, seen_ago: timedelta = timedelta(0)) -> None:
    row = Connection.objects.create(
        channel_name=f"elsewhere!{seen_ago}", user=user, path="/ws/events/", server="web2:41"
    )
    Connection.objects.filter(pk=row.pk).update(last_seen=timezone.now() - seen_ago)


async def test_it_closes_the_socket_past_the_limit_with_4429(alice):
    async with sockets(alice, 3) as outputs:
        assert outputs == [None, None, {"type": "websocket.close", "code": CLOSE_TOO_MANY}]
        assert await sync_to_async(Connection.objects.filter(user=alice).count)() == 2


async def test_it_counts_the_sockets_of_other_server_processes(alice):
    await sync_to_async(other_server_socket)(alice)

    async with sockets(alice, 2) as outputs:
        assert outputs == [None, {"type": "websocket.close", "code": CLOSE_TOO_MANY}]


async def test_it_ignores_the_rows_of_a_server_that_stopped_writing_them(alice):
    await sync_to_async(other_server_socket)(alice, seen_ago=timedelta(minutes=5))

    async with sockets(alice, 2) as outputs:
        assert outputs == [None, None]


async def test_it_counts_each_user_apart(alice, django_user_model):
    bob = await sync_to_async(django_user_model.objects.create_user)("bob", password="pw-b-123")

    async with sockets(alice, 2) as alices, sockets(bob, 2) as bobs:
        assert alices == [None, None]
        assert bobs == [None, None]


async def test_it_accepts_a_new_socket_once_one_closed(alice):
    async with sockets(alice, 2):
        pass

    async with sockets(alice, 2) as outputs:
        assert outputs == [None, None]


async def test_it_has_no_limit_at_zero(alice, settings):
    settings.EDOBS_WS_MAX_PER_USER = 0

    async with sockets(alice, 3) as outputs:
        assert outputs == [None, None, None]

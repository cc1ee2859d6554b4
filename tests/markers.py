"""Proof that a socket heard nothing, without waiting a fixed time for nothing.

A wait of 0.3 s for no frame passes as well when the machine was too slow to deliver a leaked
one in time. Instead, a marker is sent last to the socket's own channel, as the broadcast sends
an event: a consumer handles its channel's messages one after another and its outbox sends
frames in order, so anything it was given before the marker would reach the client first. The
marker is the next frame exactly when nothing came before it.

For sockets that joined no group (another team's job, a refused socket), no stored event can be
that later frame; for the others, a test can as well store one more event the socket must get.
"""

from __future__ import annotations

import json
import uuid

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from events.live.broadcast import MESSAGE_TYPE
from events.models import Connection


async def send_marker(user, path: str, job: str | None = None) -> dict:
    """Send a marker to every open socket of `user` on `path` served here (the in-memory layer's
    live channels among their Connection rows), as an event of `job`; returns the frame each of
    them must send next, decoded."""
    layer = get_channel_layer()
    rows = await sync_to_async(list)(Connection.objects.filter(user=user, path=path))
    channels = [row.channel_name for row in rows if row.channel_name in layer.channels]
    assert channels, f"no open socket of {user} on {path}"
    marker = json.dumps({"type": "marker", "id": uuid.uuid4().hex})
    for channel in channels:
        await layer.send(
            channel, {"type": MESSAGE_TYPE, "events": [["marker", marker, job, marker]]}
        )
    return json.loads(marker)


async def assert_silent(communicator, user, path: str, job: str | None = None) -> None:
    """Nothing reached this socket before now: the marker sent now is its next frame."""
    marker = await send_marker(user, path, job)
    assert await communicator.receive_json_from(timeout=5) == marker

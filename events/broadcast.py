"""Publish newly stored events to the live stream (the channel-layer groups that may see them).

One channel-layer message per group and ingest batch, `{"type": "events.created", "events":
[[event id, frame, job id, original frame], ...]}`, in storage order.  Each frame is the
WebSocket text `{"type": "event", "event": {...}}` encoded once here rather than once per
connected client; the original frame is the original design's flat item (events.api.shapes),
for sockets opened with `?shape=original` (the original project's frontend).
The job id lets a socket waiting for a job not stored yet pick that job's events out of its
account's stream.

With the in-memory layer (single process), sends must run on the server's event loop: its
queues are not thread-safe, so the consumers bind that loop (bind_loop) and a worker thread
publishes through it.  Anywhere else async_to_sync is used (a worker process with Redis, or a
sync_to_async thread of the loop itself).
"""

from __future__ import annotations

import asyncio
import json
import logging

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from .api.shapes import original_event_item
from .envelope import NormalisedEvent
from .groups import event_groups

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "events.created"
PUBLISH_TIMEOUT_SECONDS = 10.0

_server_loop: asyncio.AbstractEventLoop | None = None


def bind_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Remember the server's event loop (called by the consumers as they connect)."""
    global _server_loop
    _server_loop = loop


def event_frame(event: NormalisedEvent) -> str:
    return json.dumps({"type": "event", "event": event.as_dict()}, separators=(",", ":"))


def original_frame(event: NormalisedEvent) -> str:
    """The original design's item, unwrapped; its `sk` is the event's `at` in ms (only a read
    of the whole job can tell whether an earlier event took that millisecond already)."""
    return json.dumps(original_event_item(event), separators=(",", ":"))


def group_messages(events: list[NormalisedEvent]) -> dict[str, dict]:
    """{group: message}: each event once per group that may see it, in order."""
    messages: dict[str, dict] = {}
    for event in events:
        frame, original = event_frame(event), original_frame(event)
        for group in event_groups(event):
            message = messages.setdefault(group, {"type": MESSAGE_TYPE, "events": []})
            message["events"].append([event.id, frame, event.job, original])
    return messages


def publish_events(events: list[NormalisedEvent]) -> int:
    """Send each new event to the groups that may see it; returns how many sends failed.

    A failure is logged and counted, never raised: the events are stored already.
    """
    layer = get_channel_layer()
    if layer is None or not events:
        return 0
    messages = group_messages(events)
    try:
        return _run(layer, _send_all(layer, messages))
    except Exception:
        logger.exception("publishing %d events failed", len(events))
        return sum(len(message["events"]) for message in messages.values())


async def _send_all(layer, messages: dict[str, dict]) -> int:
    failures = 0
    for group, message in messages.items():
        try:
            await layer.group_send(group, message)
        except Exception as exc:
            failures += len(message["events"])
            logger.warning("group_send to %s failed: %s", group, exc)
    return failures


def _run(layer, coroutine) -> int:
    loop = _loop_for(layer)
    if loop is None:
        return async_to_sync(_await)(coroutine)
    future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    try:
        return future.result(timeout=PUBLISH_TIMEOUT_SECONDS)
    except TimeoutError:
        future.cancel()
        raise


async def _await(coroutine) -> int:
    return await coroutine


def _loop_for(layer) -> asyncio.AbstractEventLoop | None:
    """The server's loop when the in-memory layer must be used from another thread."""
    loop = _server_loop
    if not isinstance(layer, InMemoryChannelLayer) or loop is None or not loop.is_running():
        return None
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    return None if current is loop else loop

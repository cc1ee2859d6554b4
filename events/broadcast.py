"""Publish newly stored events to the live stream (the channel-layer groups that may see them).

One channel-layer message per group and ingest batch, `{"type": "events.created", "events":
[[event id, frame, job id, original frame], ...]}`, in storage order.  Each frame is the
WebSocket text `{"type": "event", "event": {...}}` encoded once here rather than once per
connected client; the original frame is the original design's flat item (events.api.shapes),
for sockets opened with `?shape=original` (the original project's frontend).
The job id lets a socket waiting for a job not stored yet pick that job's events out of its
account's stream.

Sizes (events.budgets): a frame stays under EDOBS_WS_FRAME_BYTES (a bigger event is sent
trimmed, with the URL of its whole JSON), and a batch whose frames together pass it is split
into several messages, so neither daphne (which refuses to send over 1 MiB) nor Redis ever
carries a message much bigger than one frame.

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
from django.conf import settings

from . import budgets
from .api.shapes import original_event_item, original_item_within
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


def event_frame(event: NormalisedEvent, limit: int | None = None) -> str:
    """The event's frame, its event trimmed when the frame would pass `limit` bytes."""
    limit = settings.EDOBS_WS_FRAME_BYTES if limit is None else limit
    data = event.as_dict()
    frame = json.dumps({"type": "event", "event": data}, separators=(",", ":"))
    if len(frame) <= limit:  # ASCII: json.dumps escapes the rest
        return frame
    trimmed = budgets.event_trimmed(data, limit=budgets.event_limit(limit), size=len(frame))
    logger.info("event %s is %d bytes: sent live trimmed", event.id, len(frame))
    return json.dumps({"type": "event", "event": trimmed}, separators=(",", ":"))


def original_frame(event: NormalisedEvent, limit: int | None = None) -> str:
    """The original design's item, unwrapped; its `sk` is the event's `at` in ms (only a read
    of the whole job can tell whether an earlier event took that millisecond already).
    Over `limit` bytes its largest detail fields become stubs linking to the whole event."""
    limit = settings.EDOBS_WS_FRAME_BYTES if limit is None else limit
    item = original_item_within(
        original_event_item(event), event_id=event.id, account=event.account,
        limit=budgets.event_limit(limit),
    )  # fmt: skip
    return json.dumps(item, separators=(",", ":"))


def group_messages(events: list[NormalisedEvent]) -> list[tuple[str, dict]]:
    """[(group, message)]: each event once per group that may see it, in order; a group's
    events are split over several messages when their frames together pass the budget.
    Each entry is [event id, frame, job id, original frame] (`?shape=original` sockets)."""
    limit = settings.EDOBS_WS_FRAME_BYTES
    messages: list[tuple[str, dict]] = []
    open_messages: dict[str, tuple[dict, list[int]]] = {}
    for event in events:
        frame, original = event_frame(event, limit), original_frame(event, limit)
        size = len(frame) + len(original)
        for group in event_groups(event):
            message, used = open_messages.get(group, (None, [0]))
            if message is None or (message["events"] and used[0] + size > limit):
                message, used = {"type": MESSAGE_TYPE, "events": []}, [0]
                open_messages[group] = (message, used)
                messages.append((group, message))
            message["events"].append([event.id, frame, event.job, original])
            used[0] += size
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
        return sum(len(message["events"]) for _, message in messages)


async def _send_all(layer, messages: list[tuple[str, dict]]) -> int:
    failures = 0
    for group, message in messages:
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

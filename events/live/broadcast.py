"""Publish newly stored events to the live stream (the channel-layer groups that may see them).

One channel-layer message per group and ingest batch, `{"type": "events.created", "events":
[[event id, frame, job id, original frame], ...]}`, in storage order, which ingest makes causal
(an answer after its trigger: events.domain.causal_order).  Each frame is the WebSocket text
`{"type": "event", "event": {...}}` encoded once here rather than once per connected client; the
original frame is the original design's flat item (events.domain.shapes), for sockets opened
with `?shape=original` (the original project's frontend).
The job id lets a socket waiting for a job not stored yet pick that job's events out of its
account's stream.

Sizes (events.domain.budgets): a frame stays under EDOBS_WS_FRAME_BYTES (a bigger event is sent
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
import threading
from collections import OrderedDict

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from events.domain import budgets
from events.domain.clock import ms
from events.domain.envelope import NormalisedEvent
from events.domain.shapes import original_event_item, original_item_within
from events.live.groups import event_groups

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


def original_frame(event: NormalisedEvent, limit: int | None = None, sk: int | None = None) -> str:
    """The original design's item, unwrapped, with `sk` (live_sort_keys; the event's `at` in
    ms when not given). Over `limit` bytes its largest detail fields become stubs linking to
    the whole event."""
    limit = settings.EDOBS_WS_FRAME_BYTES if limit is None else limit
    item = original_item_within(
        original_event_item(event, sk=sk), event_id=event.id, account=event.account,
        limit=budgets.event_limit(limit),
    )  # fmt: skip
    return json.dumps(item, separators=(",", ":"))


def live_sort_keys(events: list[NormalisedEvent]) -> dict[str, int]:
    """{event id: `sk`} of a batch's live original items (in causal order, as ingest stores
    them), without reading the store.

    The original frontend keys and sorts a job's rows by `sk`. An answer's own clock may read
    earlier than its trigger's delivery, so `at` alone would list it first (or reuse a key):
    a live item's `sk` is the later of its `at` and when this worker received it (after its
    trigger was delivered), taken in the batch's order, and above every key this
    process gave the job before (_LAST_KEYS): a trigger whose producer's clock reads fast got
    that clock as its key, which its answer, in a later batch, must still follow.
    """
    keys: dict[str, int] = {}
    used: dict[str | None, int] = {}
    for event in events:
        if event.job not in used:
            used[event.job] = _LAST_KEYS.get(event.job) if event.job is not None else -1
        key = max(event.at_ms, ms(event.received_at), used[event.job] + 1)
        keys[event.id] = used[event.job] = key
    for job, key in used.items():
        if job is not None:
            _LAST_KEYS.put(job, key)
    return keys


class _LastKeys:
    """The last live `sk` this process gave each of its most recent jobs (a job quiet for
    `size` others falls back to its `at` and receipt: both only grow with real time)."""

    def __init__(self, size: int) -> None:
        self._size, self._keys, self._lock = size, OrderedDict[str, int](), threading.Lock()

    def get(self, job: str) -> int:
        with self._lock:
            return self._keys.get(job, -1)

    def put(self, job: str, key: int) -> None:
        with self._lock:
            self._keys[job] = key
            self._keys.move_to_end(job)
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)


_LAST_KEYS = _LastKeys(10_000)


def group_messages(events: list[NormalisedEvent]) -> list[tuple[str, dict]]:
    """[(group, message)]: each event once per group that may see it, in order; a group's
    events are split over several messages when their frames together pass the budget.
    Each entry is [event id, frame, job id, original frame] (`?shape=original` sockets)."""
    limit = settings.EDOBS_WS_FRAME_BYTES
    messages: list[tuple[str, dict]] = []
    open_messages: dict[str, tuple[dict, list[int]]] = {}
    sort_keys = live_sort_keys(events)
    for event in events:
        frame = event_frame(event, limit)
        original = original_frame(event, limit, sk=sort_keys[event.id])
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

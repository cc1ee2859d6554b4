"""WebSocket consumers: /ws/events/ (every new event the user may see) and /ws/jobs/<id>/.

Thin: who may see what comes from events.read.selectors, the groups from events.live.groups, the
connection rows from events.live.connections.  Messages (DESIGN section 6):
`{"type": "snapshot", "events": [...], "more": false}` (in chunks: `"more": true` until the
last), `{"type": "event", "event": {...}}`, and
`{"type": "lagged", "missed": N}` when a slow client lost its oldest messages.

Slow clients: the group handler only fills a bounded outbox; a sender task drains it, and under
daphne each send waits while the client's socket is full (edobs_site.backpressure).  When the
outbox is full the oldest frame is dropped and counted, and the client is told before the next
frame.  The in-memory layer (the single-process demo) also drops messages silently for a
consumer whose channel is full (its `capacity`); that loss cannot be reported here.  The Redis
pub/sub layer queues them in this process instead, and the outbox bounds what a slow client
holds.

Redis lost or restarted: events.live.tracking closes every socket of the process with 4503, and the
pages reconnect and reload their snapshot.

Sizes: daphne refuses to send a message over 1 MiB (autobahn raises PayloadExceededError).  In
the sender task that once killed the task and left the socket open and silent; a snapshot sent
in one piece closed the socket with 1011.  So snapshots go out in frames under
EDOBS_WS_FRAME_BYTES (`"more": true` on all but the last), events are trimmed to fit
(events.domain.budgets), and a frame that still cannot be sent is logged and counted as missed (the
client hears `lagged`) instead of ending the sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from django.conf import settings

from events import metrics
from events.domain import budgets
from events.domain.correlation import parse_job_ref
from events.live import broadcast, tracking
from events.live import connections as live
from events.live.groups import job_group, stream_groups
from events.read import selectors

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_BY_ADMIN = 4000
CLOSE_TOO_MANY = 4429  # the user already holds EDOBS_WS_MAX_PER_USER sockets
CLOSE_NOT_FOUND = 4404

_stale_cleared = False


class Outbox:
    """A bounded queue of text frames that drops its oldest frame when full."""

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=max(1, maxsize))
        self.missed = 0

    def put(self, frame: str) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.missed += 1
            metrics.WEBSOCKET_FRAMES_DROPPED.inc()
        self.queue.put_nowait(frame)

    async def get(self) -> list[str]:
        """Every queued frame (waiting for one), preceded by a `lagged` notice when frames
        were dropped before them: one wakeup of the sender per burst, not per frame."""
        frames = [await self.queue.get()]
        while not self.queue.empty():
            frames.append(self.queue.get_nowait())
        if not self.missed:
            return frames
        notice = json.dumps({"type": "lagged", "missed": self.missed})
        self.missed = 0
        return [notice, *frames]


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Shared life cycle: authorise, join groups, optional snapshot, track, send, clean up."""

    original = False  # send the original design's flat items instead of `event` frames

    async def connect(self) -> None:
        self.joined: list[str] = []
        self.sender: asyncio.Task | None = None
        self.skip_ids: set[str] = set()
        self.outbox = Outbox(settings.EDOBS_WS_QUEUE_SIZE)
        broadcast.bind_loop(asyncio.get_running_loop())
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED)
            return
        await _clear_stale_once()  # before counting: a crashed server's rows are not sockets
        if await database_sync_to_async(live.connection_limit_reached)(user=user):
            await self.refuse(CLOSE_TOO_MANY)
            return
        groups = await self.authorise(user)
        if groups is None:
            await self.refuse(CLOSE_FORBIDDEN)
            return
        await self.start(user, groups)

    async def refuse(self, code: int) -> None:
        # Accept first: a close before the handshake reaches browsers as a bare HTTP 403.
        await self.accept()
        await self.close(code=code)

    async def start(self, user, groups: list[str]) -> None:
        # Join before the snapshot: an event stored meanwhile is in both, and skip_ids drops it.
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        await database_sync_to_async(live.connection_open)(
            channel_name=self.channel_name, user=user, path=self.scope.get("path", ""),
            job_id=self.job_id(), client=self.client(), user_agent=self.user_agent(),
        )  # fmt: skip
        self.tracker = tracking.tracker()  # looked up once, not per frame burst
        self.tracker.opened(self)
        metrics.WEBSOCKET_CONNECTIONS.inc()  # taken back in disconnect, where tracker is set
        await self.accept()
        await self.send_snapshot(user)
        self.sender = asyncio.create_task(self.drain())

    async def authorise(self, user) -> list[str] | None:
        """The groups this user may join here, or None to refuse (4403)."""
        raise NotImplementedError

    async def send_snapshot(self, user) -> None:
        """Nothing by default; the job stream sends the job's stored events."""

    def job_id(self) -> str:
        return ""

    def wants(self, job: str | None) -> bool:
        """Whether an event of `job` published to this socket's groups is for this socket."""
        return True

    async def dispatch(self, message: dict) -> None:
        """Hand `events.created` straight to its handler.

        Channels' dispatch runs close_old_connections in the sync thread before every handler:
        a thread hop per consumer per published batch (100 clients at 20 batches/s is 2,000
        hops/s, about an eighth of daphne's CPU in a profile).  events_created never touches
        the database, so it skips that; every other message keeps the default.
        """
        if message.get("type") == broadcast.MESSAGE_TYPE:
            await self.events_created(message)
            return
        await super().dispatch(message)

    async def events_created(self, message: dict) -> None:
        for event_id, frame, job, original in message["events"]:
            if not self.wants(job):
                continue
            if event_id in self.skip_ids:
                self.skip_ids.discard(event_id)
                continue
            self.outbox.put(original if self.original else frame)

    async def connection_close(self, message: dict) -> None:
        """An administrator disconnected this connection (events.admin)."""
        await self.close(code=CLOSE_BY_ADMIN)

    async def drain(self) -> None:
        while True:
            frames = await self.outbox.get()
            sent = 0
            for frame in frames:
                sent += await self.send_frame(frame)
            self.tracker.sent(self.channel_name, sent)

    async def send_frame(self, frame: str) -> int:
        """1 when sent; 0 when the server refused it (logged, and reported to the client as
        missed), which never ends the sender: the frames after it still go out."""
        try:
            await self.send(text_data=frame)
        except Exception:
            logger.exception("could not send a %d-byte frame on %s", len(frame), self.channel_name)
            self.outbox.missed += 1
            return 0
        return 1

    async def disconnect(self, code: int) -> None:
        if getattr(self, "sender", None) is not None:
            self.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.sender
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        if getattr(self, "tracker", None) is not None:
            self.tracker.closed(self.channel_name)
            metrics.WEBSOCKET_CONNECTIONS.dec()
        await database_sync_to_async(live.connection_close)(channel_name=self.channel_name)

    def client(self) -> str:
        client = self.scope.get("client") or ("", "")
        return f"{client[0]}:{client[1]}" if client[0] else ""

    def user_agent(self) -> str:
        headers = dict(self.scope.get("headers") or [])
        return headers.get(b"user-agent", b"").decode("latin-1")


class EventStreamConsumer(LiveConsumer):
    """/ws/events/: every new event of the accounts the user may see; with `?shape=original`,
    each as the original design's flat item, so the original project's frontend runs live."""

    async def authorise(self, user) -> list[str] | None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.original = query.get("shape") == ["original"]
        accounts = await database_sync_to_async(selectors.visible_accounts)(user)
        return stream_groups(accounts)


class JobStreamConsumer(LiveConsumer):
    """/ws/jobs/<job id>/: a snapshot of the job's stored events, then its new events.

    A job that is not stored yet, or that the user may not see, gets the same answer: an empty
    snapshot (a script can watch an execution it has just started). The socket then listens
    where that job's events would be published for this user: the job's group for a full id
    of a visible account, nothing for another account's, and the user's account streams for a
    short form, where the first matching event decides which job it is (DESIGN section 9).
    """

    async def authorise(self, user) -> list[str] | None:
        text = self.scope["url_route"]["kwargs"]["job_id"]
        self.ref = parse_job_ref(text)
        self.job = None
        if self.ref is not None:
            self.job = await database_sync_to_async(selectors.job_resolve)(user=user, ref=self.ref)
        self.pinned = self.job.id if self.job else None
        if self.job is not None:
            return [job_group(self.job.id)]
        if self.ref is None:
            return []
        accounts = await database_sync_to_async(selectors.visible_accounts)(user)
        if not self.ref.full:
            return stream_groups(accounts)
        visible = accounts is None or self.ref.account in accounts
        return [job_group(self.ref.id)] if visible else []

    def job_id(self) -> str:
        return self.job.id if self.job else self.scope["url_route"]["kwargs"]["job_id"]

    def wants(self, job: str | None) -> bool:
        if self.pinned is None and job and self.ref.matches(job):
            self.pinned = job  # the newest job of that name is the first one heard of
        return job is not None and job == self.pinned

    async def send_snapshot(self, user) -> None:
        events = []
        if self.job is not None:
            events = await database_sync_to_async(selectors.job_event_list)(user=user, job=self.job)
        self.skip_ids = {event.id for event in events}
        limit = settings.EDOBS_WS_FRAME_BYTES
        each = budgets.event_limit(limit)
        data = [budgets.event_trimmed(event.as_dict(), limit=each) for event in events]
        for frame in budgets.snapshot_frames(data, limit=limit):
            await self.send(text_data=frame)


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Any other socket path: closed with 4404, where Channels' router would raise (a 500)."""

    async def connect(self) -> None:
        # Accept first, as LiveConsumer.refuse does: a close code needs an open socket.
        await self.accept()
        await self.close(code=CLOSE_NOT_FOUND)


async def _clear_stale_once() -> None:
    """Once per server process: drop the rows a crashed server on this host left behind."""
    global _stale_cleared
    if _stale_cleared:
        return
    _stale_cleared = True
    try:
        await database_sync_to_async(live.connection_clear_stale)()
    except Exception:
        logger.exception("could not clear stale connections")

"""Connection bookkeeping off the send path: one writer per server process.

Each consumer only adds to an in-memory count as it sends.  One task per event loop writes every
live connection's new count and last_seen in a single transaction every EDOBS_WS_TOUCH_SECONDS,
so no socket ever waits on the database between frames (a per-socket write used to queue 100
sockets behind one sync thread and SQLite's write lock: the fan-out's latency spikes).
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from django.conf import settings

from . import live

logger = logging.getLogger(__name__)


class ConnectionTracker:
    """Frames sent per live connection of one event loop, written out periodically."""

    def __init__(self) -> None:
        self.unwritten: dict[str, int] = {}
        self.task: asyncio.Task | None = None

    def opened(self, channel_name: str) -> None:
        self.unwritten[channel_name] = 0
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run())

    def sent(self, channel_name: str, frames: int) -> None:
        if channel_name in self.unwritten:
            self.unwritten[channel_name] += frames

    def closed(self, channel_name: str) -> None:
        # The row is deleted on close, so its unwritten count goes with it.
        self.unwritten.pop(channel_name, None)

    async def run(self) -> None:
        """Write every interval while connections are open; end with the last of them."""
        while self.unwritten:
            await asyncio.sleep(settings.EDOBS_WS_TOUCH_SECONDS)
            await self.write()

    async def write(self) -> None:
        counts, self.unwritten = self.unwritten, dict.fromkeys(self.unwritten, 0)
        try:
            await database_sync_to_async(live.connections_touch)(counts=counts)
        except Exception:
            logger.exception("could not update %d connections", len(counts))
            for channel_name, frames in counts.items():  # keep them for the next write
                self.sent(channel_name, frames)


_trackers: dict[asyncio.AbstractEventLoop, ConnectionTracker] = {}


def tracker() -> ConnectionTracker:
    """The tracker of the running event loop (a server has one; tests make several)."""
    loop = asyncio.get_running_loop()
    for old in [old for old in _trackers if old.is_closed()]:
        del _trackers[old]
    return _trackers.setdefault(loop, ConnectionTracker())

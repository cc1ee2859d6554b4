"""What each server process keeps about its live sockets, off the send path.

- Counts: each consumer only adds to an in-memory count as it sends.  One task per event loop
  writes every live connection's new count and last_seen in a single transaction every
  EDOBS_WS_TOUCH_SECONDS, so no socket waits on the database between frames (a per-socket write
  queued 100 sockets behind one sync thread and SQLite's write lock: the fan-out's p99 spikes).
- The Redis behind the channel layer: when it becomes unreachable or restarts (a new run_id),
  every socket of this process is closed with 4503.  Events published meanwhile were lost to
  the layer (they are stored, and pub/sub keeps nothing for a subscriber that was away); the
  pages reconnect and reload their snapshot, so nothing stays missing and no socket is left
  listening to a subscription Redis forgot.
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from django.conf import settings

from events.live import connections as live

logger = logging.getLogger(__name__)

CLOSE_LAYER_LOST = 4503
WATCH_SECONDS = 1.0


class ConnectionTracker:
    """The live consumers of one event loop, their unwritten counts, and their two tasks."""

    def __init__(self) -> None:
        self.consumers: dict[str, object] = {}
        self.unwritten: dict[str, int] = {}
        # Each task clears its own slot in the same step as it finds no consumer left, so a
        # socket that opens while one is winding down starts a new one (never none at all).
        self.writer: asyncio.Task | None = None
        self.watcher: asyncio.Task | None = None

    def opened(self, consumer) -> None:
        self.consumers[consumer.channel_name] = consumer
        self.unwritten[consumer.channel_name] = 0
        loop = asyncio.get_running_loop()
        if self.writer is None:
            self.writer = loop.create_task(self.write_counts())
        if self.watcher is None and settings.REDIS_URL:
            self.watcher = loop.create_task(self.watch_redis(settings.REDIS_URL))

    def sent(self, channel_name: str, frames: int) -> None:
        if channel_name in self.unwritten:
            self.unwritten[channel_name] += frames

    def closed(self, channel_name: str) -> None:
        # The row is deleted on close, so its unwritten count goes with it.
        self.consumers.pop(channel_name, None)
        self.unwritten.pop(channel_name, None)

    async def write_counts(self) -> None:
        """Every interval while connections are open; ends with the last of them."""
        try:
            while self.consumers:
                await asyncio.sleep(settings.EDOBS_WS_TOUCH_SECONDS)
                counts, self.unwritten = self.unwritten, dict.fromkeys(self.unwritten, 0)
                try:
                    await database_sync_to_async(live.connections_touch)(counts=counts)
                except Exception:
                    logger.exception("could not update %d connections", len(counts))
                    for channel_name, frames in counts.items():  # kept for the next write
                        self.sent(channel_name, frames)
        finally:
            self.writer = None

    async def watch_redis(self, url: str) -> None:
        from redis import asyncio as aioredis

        client = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            known = await _run_id(client)
            while self.consumers:
                await asyncio.sleep(WATCH_SECONDS)
                current = await _run_id(client)
                if known is not None and current != known:
                    await self.close_all(current)
                known = current
        finally:
            self.watcher = None
            await client.aclose()

    async def close_all(self, run_id: str | None) -> None:
        why = "is unreachable" if run_id is None else "restarted"
        logger.warning(
            "the channel layer's Redis %s: closing %d sockets so they resynchronise",
            why, len(self.consumers),
        )  # fmt: skip
        for consumer in list(self.consumers.values()):
            try:
                await consumer.close(code=CLOSE_LAYER_LOST)
            except Exception:
                logger.exception("could not close %s", consumer)


async def _run_id(client) -> str | None:
    """The Redis server's run_id (new at every start), or None when it does not answer."""
    try:
        return (await client.info("server"))["run_id"]
    except Exception:
        return None


_trackers: dict[asyncio.AbstractEventLoop, ConnectionTracker] = {}


def tracker() -> ConnectionTracker:
    """The tracker of the running event loop (a server has one; tests make several)."""
    loop = asyncio.get_running_loop()
    for old in [old for old in _trackers if old.is_closed()]:
        del _trackers[old]
    return _trackers.setdefault(loop, ConnectionTracker())

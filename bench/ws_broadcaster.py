"""The machine's limit for Python WebSockets: a minimal broadcaster on the `websockets` library.

    .venv/bin/python bench/ws_broadcaster.py PORT REDIS_URL CHANNEL

bench/fanout.py runs it beside edobs, with the same client processes and the same frames.  It
subscribes to the Redis pub/sub channel that edobs's channel layer (channels_redis's
RedisPubSubChannelLayer) publishes a group's messages on, so the same producer feeds both, and
sends each event frame of each message to every connected socket with `websockets.broadcast`
(one encoding, no per-socket task, no flow control, no login, no tracking): the least work a
Python server can do per frame.
"""

from __future__ import annotations

import asyncio
import sys

import msgpack
import redis.asyncio as aioredis
from websockets.asyncio.server import broadcast, serve


async def main(port: int, redis_url: str, channel: str) -> None:
    sockets: set = set()

    async def handler(websocket) -> None:
        sockets.add(websocket)
        try:
            await websocket.wait_closed()
        finally:
            sockets.discard(websocket)

    client = aioredis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None):
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            for entry in msgpack.unpackb(message["data"])["events"]:
                broadcast(sockets, entry[1])


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))

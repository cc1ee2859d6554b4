"""WebSocket backpressure under daphne: a frame waits while its client's socket is full.

daphne hands every frame to Twisted at once, and Twisted buffers whatever the client has not
read, without limit.  A client that reads slower than events arrive would then never slow its
consumer: its frames would pile up in server memory, the consumer's bounded outbox
(events.live.consumers.Outbox) would never overflow, and the client would never be told it lagged.

autobahn lets a protocol register a Twisted push producer, which the transport pauses when its
buffer passes 64 KiB and resumes once the buffer has drained.  This middleware registers one
per socket and makes `websocket.send` wait while it is paused.  Only that socket's sender
waits; its outbox drops the oldest frames and the client gets `{"type": "lagged"}`.

The one daphne detail relied on: the `send` it gives an application is
`partial(server.handle_reply, protocol)`.  Under any other server, and under Channels' test
communicator, sends pass straight through.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket

from twisted.internet.interfaces import IPushProducer
from twisted.web.http import HTTPChannel
from zope.interface import implementer

logger = logging.getLogger(__name__)

# The kernel's share of what a slow client may be behind, fixed rather than autotuned (up to
# 4 MiB per socket on Linux: 20 s of a 200 KB/s stream before the client would hear it lagged).
# 128 KiB still carries about 1 MB/s to a client 100 ms away.
SEND_BUFFER = 128 * 1024


@implementer(IPushProducer)
class SocketFlow:
    """Open while the transport takes more; Twisted calls these on the server's event loop."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()

    def pauseProducing(self) -> None:
        self.writable.clear()

    def resumeProducing(self) -> None:
        self.writable.set()

    def stopProducing(self) -> None:
        self.writable.set()  # the connection is gone: nothing left to wait for


class WebSocketBackpressure:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        protocol = _daphne_protocol(send)
        if scope["type"] != "websocket" or protocol is None:
            return await self.app(scope, receive, send)
        flow = SocketFlow()
        transport = protocol.transport
        if isinstance(transport.producer, HTTPChannel):
            # The HTTP channel that handed this socket over to the WebSocket is still
            # registered as the producer and would only pause reading; it is done here.
            transport.unregisterProducer()
        try:
            protocol.registerProducer(flow, True)
        except RuntimeError:  # someone else's producer: serve the socket without backpressure
            logger.warning("no backpressure for %s: %s", scope.get("path"), transport.producer)
            return await self.app(scope, receive, send)
        with contextlib.suppress(OSError, AttributeError):  # only TCP sockets have a handle
            transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)

        async def paced_send(message: dict) -> None:
            if message["type"] == "websocket.send" and not flow.writable.is_set():
                await flow.writable.wait()
            await send(message)

        try:
            return await self.app(scope, receive, paced_send)
        finally:
            # A transport with a producer never finishes closing: let it go.
            with contextlib.suppress(Exception):
                protocol.unregisterProducer()


def _daphne_protocol(send):
    """daphne's WebSocket protocol behind `send`, or None."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    protocol = send.args[0]
    if not callable(getattr(protocol, "registerProducer", None)):
        return None
    if getattr(protocol, "transport", None) is None:
        return None
    return protocol

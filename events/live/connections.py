"""Live-stream services: connection tracking and admin disconnects (the in-process ingest loop
is events.ingest.inprocess).

The consumers stay thin and call these (through database_sync_to_async).
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from events.models import Connection

logger = logging.getLogger(__name__)

CLOSE_MESSAGE = {"type": "connection.close"}


def server_id() -> str:
    """`hostname:pid` of this server process, stored on its connections."""
    return f"{socket.gethostname()}:{os.getpid()}"


def connection_open(
    *, channel_name: str, user, path: str, job_id: str = "", client: str = "",
    user_agent: str = "",
) -> Connection:  # fmt: skip
    return Connection.objects.create(
        channel_name=channel_name, user=user, path=path[:500], job_id=job_id[:400],
        client=client[:100], user_agent=user_agent[:500], server=server_id(),
    )  # fmt: skip


def connection_limit_reached(*, user) -> bool:
    """Whether the user already holds EDOBS_WS_MAX_PER_USER open sockets (0: no limit).

    Counted over every server process's rows.  A live row is rewritten every
    EDOBS_WS_TOUCH_SECONDS (events.live.tracking), so rows older than a few of those, and at least
    a minute, belong to a server that died elsewhere and do not count.
    """
    limit = settings.EDOBS_WS_MAX_PER_USER
    if limit <= 0:
        return False
    fresh = timezone.now() - timedelta(seconds=max(60, 5 * settings.EDOBS_WS_TOUCH_SECONDS))
    return Connection.objects.filter(user=user, last_seen__gte=fresh).count() >= limit


def connections_touch(*, counts: dict[str, int]) -> None:
    """In one transaction: add each connection's new messages and refresh its last_seen."""
    now = timezone.now()
    with transaction.atomic():
        for channel_name, new_messages in counts.items():
            Connection.objects.filter(channel_name=channel_name).update(
                messages_sent=F("messages_sent") + new_messages, last_seen=now
            )


def connection_close(*, channel_name: str) -> None:
    Connection.objects.filter(channel_name=channel_name).delete()


def connection_clear_stale() -> int:
    """Delete the rows of servers on this host whose process is gone (a crash or a kill).

    Only this host's rows can be checked (by pid); the rows of live sibling processes on the
    same host are kept, so several servers can share a host.
    """
    host = socket.gethostname()
    stale = [
        pk
        for pk, server in Connection.objects.filter(server__startswith=f"{host}:").values_list(
            "pk", "server"
        )
        if not _alive(server.rpartition(":")[2])
    ]
    deleted, _ = Connection.objects.filter(pk__in=stale).delete()
    if deleted:
        logger.info("cleared %d stale connections of dead servers on %s", deleted, host)
    return deleted


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def connection_disconnect(*, channel_names: list[str]) -> int:
    """Ask each connection's consumer (in whatever server process) to close its socket."""
    layer = get_channel_layer()
    sent = 0
    for channel_name in channel_names:
        try:
            async_to_sync(layer.send)(channel_name, dict(CLOSE_MESSAGE))
            sent += 1
        except Exception as exc:
            logger.warning("could not reach %s: %s", channel_name, exc)
    return sent

"""Sockets open only from the site's own origin: same scheme, host and port (DESIGN section 9).

Through the whole ASGI application: a socket whose origin passes goes on to the consumers,
which close it with 4401 (no login here); a refused origin is denied at the handshake.
Then once over a real socket, against daphne.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import websockets
from channels.testing import WebsocketCommunicator

from tests.services import free_port
from tests.test_live_multiprocess import stop, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
SITE = "127.0.0.1:8300"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def site(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "edobs.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = []
    settings.SECURE_PROXY_SSL_HEADER = None


async def handshake(origin: str | None, host: str = SITE, scheme: str = "ws", extra=()):
    """True when the origin check let the socket through (to the consumer's 4401)."""
    from edobs_site.asgi import application

    headers = [(b"host", host.encode()), *extra]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=headers)
    communicator.scope["scheme"] = scheme
    try:
        connected, _ = await communicator.connect(timeout=5)
        if connected:
            closed = await communicator.receive_output(timeout=5)
            assert closed == {"type": "websocket.close", "code": 4401}
        return connected
    finally:
        await communicator.disconnect()


async def test_it_accepts_the_same_origin():
    assert await handshake("http://127.0.0.1:8300") is True


async def test_it_accepts_the_same_origin_on_the_default_port():
    assert await handshake("https://edobs.example.com", "edobs.example.com", "wss") is True


async def test_it_refuses_another_port_of_the_same_host():
    assert await handshake("http://127.0.0.1:8399") is False


async def test_it_refuses_another_scheme():
    assert await handshake("https://127.0.0.1:8300") is False


async def test_it_refuses_a_plain_page_for_a_secure_socket():
    assert await handshake("http://edobs.example.com", "edobs.example.com", "wss") is False


async def test_it_refuses_another_host_even_an_allowed_one():
    assert await handshake("http://localhost:8300") is False


async def test_it_refuses_a_missing_origin():
    assert await handshake(None) is False


@pytest.mark.parametrize("origin", ["null", "http://127.0.0.1:8300/x", "http://u@127.0.0.1:8300"])
async def test_it_refuses_an_origin_that_is_not_one(origin):
    assert await handshake(origin) is False


async def test_it_refuses_a_host_that_is_not_allowed():
    # DNS rebinding: the attacker's name resolves to the server; its page is "same origin".
    assert await handshake("http://evil.example:8300", "evil.example:8300") is False


async def test_it_refuses_a_missing_host():
    from edobs_site.asgi import application

    headers = [(b"origin", b"http://127.0.0.1:8300")]
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    await communicator.disconnect()

    assert connected is False


async def test_it_takes_the_scheme_from_the_proxy_only_when_settings_say_so(settings):
    forwarded = [(b"x-forwarded-proto", b"https")]
    origin, host = "https://edobs.example.com", "edobs.example.com"

    assert await handshake(origin, host, extra=forwarded) is False
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert await handshake(origin, host, extra=forwarded) is True
    assert await handshake("http://edobs.example.com", host, extra=forwarded) is False


async def test_it_accepts_the_trusted_origins(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://dash.example.org", "https://*.example.net"]

    assert await handshake("https://dash.example.org") is True
    assert await handshake("https://eu.example.net") is True
    assert await handshake("http://dash.example.org") is False
    assert await handshake("https://example.org") is False


@pytest.fixture
def daphne(tmp_path):
    """A daphne on a free port with its own scratch settings; yields the port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDOBS_", "DATABASE_"))}
    env |= {
        "DJANGO_SETTINGS_MODULE": "edobs_site.settings", "EDOBS_VAR_DIR": str(tmp_path),
        "DJANGO_SECRET_KEY": "origin-test-secret", "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    }  # fmt: skip
    cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
           "edobs_site.asgi:application"]  # fmt: skip
    log = open(tmp_path / "daphne.log", "w")  # noqa: SIM115  (closed with the process)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        stop(proc)
        log.close()


async def real_close_code(port: int, origin_port: int) -> int | str:
    url = f"ws://127.0.0.1:{port}/ws/events/"
    try:
        async with websockets.connect(url, origin=f"http://127.0.0.1:{origin_port}") as ws:
            await asyncio.wait_for(ws.wait_closed(), 5)
            return ws.close_code
    except websockets.InvalidStatus as refused:
        return f"HTTP {refused.response.status_code}"


@pytest.mark.slow
async def test_it_refuses_another_port_over_a_real_socket(daphne):
    assert await real_close_code(daphne, daphne) == 4401  # same origin: on to the login check
    assert await real_close_code(daphne, daphne + 1) == "HTTP 403"

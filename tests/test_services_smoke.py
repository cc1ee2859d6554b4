"""Proof that the service fixtures start real servers (tests/services.py)."""

import subprocess
import tempfile

import psycopg
import redis

from tests.services import CHROMIUM_HEADLESS_FLAGS, RedisServer


def test_redis_ping_set_get(redis_url):
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping()
        client.set("edobs:smoke", "ok")
        assert client.get("edobs:smoke") == b"ok"
    finally:
        client.close()


def test_redis_server_restarts_on_same_port(redis_url):
    server = RedisServer()
    try:
        server.start()
        port = server.port
        server.stop()
        assert server.proc is None
        server.start()
        assert server.port == port and server.ping()
    finally:
        server.close()


def test_postgres_select_1(postgres_url):
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_chromium_renders_headless(chromium_path):
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [
                chromium_path,
                *CHROMIUM_HEADLESS_FLAGS,
                f"--user-data-dir={profile}",
                "--dump-dom",
                "data:text/html,<p>edobs</p>",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert "<p>edobs</p>" in out.stdout, out.stderr[-2000:]

"""Schemathesis against the live API: the OpenAPI document tells the truth (issue 13).

A real daphne serves a database holding the samples; Schemathesis (v4, its CLI) reads
`/api/schema` and sends what the schema allows and what it forbids, with a DRF token and without
one. It must find nothing: no 5xx, every status documented, every body as described, forbidden
input refused, a login enforced.

`positive_data_acceptance` is left out on purpose: a cursor is an opaque string the server made,
so a string the schema allows is still refused (400) unless it came from a previous page, and so
is an RFC 3339 instant in year 1 ahead of UTC or year 9999 behind it; both 400s are documented.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import websockets

from tests.services import free_port
from tests.test_live_multiprocess import manage, start, stop, wait_for_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "samples" / "part1_jobs.jsonl"
MAX_EXAMPLES = 5  # per operation and phase, over 30-odd operations: 15 took 60-80 s a run
TIMEOUT = 300  # seconds: a bound for one run, not an expectation

SETUP_SCRIPT = """
import os
from pathlib import Path
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from events.ingest.services import InboundMessage, event_ingest
lines = Path(os.environ["EDOBS_FUZZ_SAMPLES"]).read_text().splitlines()
event_ingest(messages=[InboundMessage(body=line) for line in lines if line.strip()])
user = get_user_model().objects.create_superuser("fuzz", "fuzz@example.com", "pw-fuzz-123")
print(Token.objects.create(user=user).key)
"""


@pytest.fixture(scope="module")
def live_api(tmp_path_factory):
    """(base URL, token key, schema path) of a daphne serving the samples."""
    tmp = tmp_path_factory.mktemp("fuzz")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDOBS_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="edobs_site.settings", EDOBS_VAR_DIR=str(tmp),
        DJANGO_SECRET_KEY="fuzz-test-secret", EDOBS_FUZZ_SAMPLES=str(SAMPLES),
        EDOBS_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
    )  # fmt: skip
    env.pop("REDIS_URL", None)
    manage(env, "migrate", "--noinput")
    token = manage(env, "shell", "-c", SETUP_SCRIPT).strip().splitlines()[-1]
    port = free_port()
    daphne = start(env, tmp, "daphne", [
        str(Path(sys.executable).with_name("daphne")), "-b", "127.0.0.1", "-p", str(port),
        "edobs_site.asgi:application",
    ])  # fmt: skip
    try:
        wait_for_port(port, daphne)
        base = f"http://127.0.0.1:{port}"
        schema = tmp / "openapi.json"
        schema.write_bytes(get(f"{base}/api/schema", token=token)[1])
        yield base, token, schema
    finally:
        stop(daphne)
        log = (tmp / "daphne.log").read_text()
        print(f"--- daphne log ---\n{log[-3000:]}")


def get(url: str, *, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def schemathesis(schema: Path, base: str, token: str | None) -> subprocess.CompletedProcess:
    """One `schemathesis run`, with the token given as the schema's `tokenAuth` credential (not a
    bare header) so its auth check knows which scheme to strip, or with no credential."""
    config = schema.parent / f"schemathesis-{'token' if token else 'anonymous'}.toml"
    config.write_text(f'[auth.openapi.tokenAuth]\napi_key = "Token {token}"\n' if token else "")
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config),
        "--no-color", "run", str(schema), "--url", base,
        "--checks", "all", "--exclude-checks", "positive_data_acceptance",
        "--phases", "examples,coverage,fuzzing", "--max-examples", str(MAX_EXAMPLES),
        "--seed", "13", "--workers", "2", "--request-timeout", "30",
        "--generation-database", "none",
    ]  # fmt: skip
    # Run in the temporary directory: nothing Schemathesis writes lands in the repository.
    return subprocess.run(
        command, cwd=schema.parent, capture_output=True, text=True, timeout=TIMEOUT
    )


@pytest.mark.parametrize("authorised", [True, False], ids=["with a token", "without a login"])
def test_schemathesis_finds_nothing(live_api, authorised):
    base, token, schema = live_api

    result = schemathesis(schema, base, token if authorised else None)

    print(result.stdout[-3000:])  # the summary, shown by `pytest -rP`
    assert result.returncode == 0, f"{result.stdout[-12000:]}\n{result.stderr[-3000:]}"


def test_the_live_server_refuses_a_static_traversal_with_404(live_api):
    base, _, _ = live_api

    status, body = get(f"{base}/static/..%2fmanage.py")

    assert status == 404 and b"Page not found" in body


def test_the_live_schema_is_the_one_served(live_api):
    base, token, schema = live_api

    assert "/api/jobs/" in json.loads(schema.read_text())["paths"]
    assert get(f"{base}/api/schema")[0] in (401, 403)


async def test_the_live_server_closes_an_unknown_socket_with_4404(live_api):
    base, _, _ = live_api

    async with websockets.connect(base.replace("http", "ws") + "/ws/nope/", origin=base) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)

    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404

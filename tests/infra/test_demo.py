"""`manage.py demo` the way a new user runs it: start, log in, see jobs, Ctrl-C."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _wait_for(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _login(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/accounts/login/", timeout=5)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    session.post(
        f"{base}/accounts/login/",
        data={"username": "demo", "password": "demo", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=5,
    )
    return session


@pytest.fixture
def demo(tmp_path):
    port = free_port()
    env = dict(os.environ, EDOBS_VAR_DIR=str(tmp_path), EDOBS_DEMO="1", PYTHONUNBUFFERED="1")
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    log = open(tmp_path / "demo.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(port), "--speed", "4"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield process, f"http://127.0.0.1:{port}", log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.close()


def test_it_shows_live_jobs_within_30_seconds_and_stops_on_ctrl_c(demo):
    process, base, log = demo
    started = time.monotonic()

    _wait_for(lambda: requests.get(f"{base}/accounts/login/", timeout=2).ok, timeout=30,
              what="the server")  # fmt: skip
    session = _login(base)
    jobs = _wait_for(
        lambda: session.get(f"{base}/api/jobs", timeout=5).json()["results"],
        timeout=30 - (time.monotonic() - started) + 10,
        what="a job in the API",
    )
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=40)
    log.seek(0)
    output = log.read()

    assert jobs[0]["state_machine"] == "EventDrivenMachine"
    assert jobs[0]["event_count"] >= 1
    assert "log in as  demo / demo" in output
    assert code == 0, output[-2000:]

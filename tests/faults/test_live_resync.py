"""Redis (the channel layer) restarts under a live job page: the page reconnects and ends up
showing exactly the job's stored events, including those published while Redis was down.

Real parts only: moto's server, a `consume_events` process and a daphne process sharing a Redis
of this test's own, and Debian's headless Chromium on `/jobs/<id>/`, logged in.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter as Tally

import pytest

from events.domain.envelope import parse_envelope
from tests.services import CHROMIUM_ARGS, free_port

from .harness import (
    ACCOUNT,
    ROOT,
    Counter,
    assert_exact,
    manage,
    outcome,
    send,
    thirds,
    traffic,
    wait_for_drain,
    wait_until,
    worker_env,
)

pytestmark = pytest.mark.slow

EVENTS = 600
USER, PASSWORD = "resync", "resync-passw0rd"
PAGE_TIMEOUT_MS = 60_000  # the page's reconnect backoff reaches 16 s after a few failed tries


@pytest.fixture
def daphne(tmp_path):
    """start(env) -> base URL of a daphne process, killed at the end of the test."""
    procs: list[subprocess.Popen] = []

    def start(env: dict) -> str:
        port = free_port()
        log = open(tmp_path / "daphne.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "edobs_site.asgi:application"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        log.close()
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: _answers(f"{base}/accounts/login/"), timeout=30), "daphne"
        return base

    try:
        yield start
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)


def _answers(url: str) -> bool:
    import urllib.request

    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


def job_of(body: str) -> str | None:
    try:
        return parse_envelope(body, default_account=ACCOUNT).job
    except Exception:  # a malformed body
        return None


def watched_job(before: list[str], during: list[str]) -> str:
    """The job already known before the outage with the most events sent during it."""
    known = {job_of(body) for body in before}
    during_jobs = Tally(job for body in during if (job := job_of(body)) in known and job)
    job, count = during_jobs.most_common(1)[0]
    assert count >= 5, during_jobs
    return job


def shown_ids(page) -> list[str]:
    return page.eval_on_selector_all(
        "#event-body tr[data-event-id]", "rows => rows.map(r => r.dataset.eventId)"
    )


def test_it_resynchronises_a_live_page_after_redis_restarts(
    own_redis, queues_factory, sqlite_url, tmp_path, start_workers, daphne, chromium_path
):
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    queues = queues_factory(visibility=3)
    env = worker_env(
        queues=queues, var_dir=tmp_path, database_url=sqlite_url, REDIS_URL=own_redis.url,
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
    )  # fmt: skip
    manage("createsuperuser", "--noinput", "--username", USER, "--email", "r@x.test", env=env)
    sent = traffic(events=EVENTS, seed=61)
    counter = Counter(sqlite_url)
    before, during, after = thirds(sent.bodies)
    job = watched_job(before, during)
    workers = start_workers(env, 1)
    base = daphne(env)
    send(queues, before)
    assert wait_until(lambda: queues.depth() == (0, 0)), workers.stderr()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(f"{base}/accounts/login/")
            page.fill("input[name=username]", USER)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            page.goto(f"{base}/jobs/{job}/")
            page.wait_for_selector("#live-indicator[data-state=live]")
            shown_before = len(shown_ids(page))

            own_redis.stop()
            page.wait_for_selector("#live-indicator:not([data-state=live])")
            send(queues, during)  # stored, but published nowhere: Redis is down
            assert wait_until(lambda: queues.depth() == (0, 0)), workers.stderr()
            own_redis.start()
            send(queues, after)
            wait_for_drain(
                queues=queues, counter=counter, expected=len(sent.valid_ids),
                malformed=sent.malformed,
            )  # fmt: skip

            stored = set(counter.job_event_ids(job))
            page.wait_for_selector("#live-indicator[data-state=live]")
            page.wait_for_function(
                "n => document.querySelectorAll('#event-body tr[data-event-id]').length >= n",
                arg=len(stored),
            )
            shown = shown_ids(page)
        finally:
            browser.close()
    workers.stop()

    result = outcome(
        scenario="redis_restart_under_a_live_page", sent=sent, queues=queues, counter=counter,
        workers=workers, started=started,
        notes=f"page rows {shown_before} -> {len(shown)}; "
        f"publish_failures={workers.reported('publish_failures')}",
    )  # fmt: skip
    assert_exact(result, sent, counter)
    assert workers.reported("publish_failures") > 0  # the page cannot have had them live
    assert len(shown) == len(set(shown)), "an event is shown twice"
    assert set(shown) == stored
    assert len(stored) > shown_before

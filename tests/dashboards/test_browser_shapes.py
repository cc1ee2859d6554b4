"""Distributed Map children in headless Chromium against a real server (daphne, the consumer,
moto, Redis: the `site` and `browser` of test_browser, one of each for this module).

A Map Run whose label holds URL-significant and non-ASCII characters: the home page, and every
link from it, work (home -> Map Run row -> child -> parent -> state machine page), and the
pages' own reads (the job page's timeline and socket) find the child.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest

from tests.dashboards.test_browser import (  # noqa: F401  (the fixtures are used by name)
    TIMEOUT_MS,
    browser,
    sign_in,
    site,
    wait_for,
)
from tests.events import shapes_traffic as traffic

pytestmark = pytest.mark.slow
LABEL = "run label?#%é"
CHILDREN = 12


@pytest.fixture(scope="module")
def loaded(site):  # noqa: F811
    start = traffic.now()
    parent_arn = traffic.execution_arn("MapFlow", "batch-1")
    envelopes = traffic.run(parent_arn, start=start, seconds=120)
    envelopes += traffic.map_run(
        "MapFlow", LABEL, CHILDREN, start=start + timedelta(seconds=1), failed=2, running=1,
        parent_arn=parent_arn,
    )  # fmt: skip
    site.send(envelopes)
    wait_for(
        lambda: site.api("/api/jobs")["results"] and _counted(site) == CHILDREN,
        60, "the Map Run's children",
    )  # fmt: skip
    return site


def _counted(running) -> int:
    rows = [r for r in running.api("/api/jobs")["results"] if r.get("map_run")]
    return sum(rows[0]["map_run"][k] for k in ("running", "succeeded", "failed")) if rows else 0


@pytest.fixture
def page(browser, loaded):  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    sign_in(page, loaded.base)
    yield page
    context.close()
    assert not problems, problems


def test_it_clicks_from_home_through_a_map_run_to_its_child_parent_and_state_machine(page, loaded):
    base = loaded.base
    page.goto(f"{base}/")
    rows = page.locator("#jobs-body tr")
    assert rows.count() == 2  # the parent and one row for its Map Run
    run = page.locator("a.map-run-link")
    assert run.inner_text() == f"Map Run {LABEL}"
    assert "2 failed" in page.locator(".map-run-counts").inner_text()
    # The running child ends: the run's row counts it, live, though its newest child changed.
    running = traffic.execution_arn(f"MapFlow/{LABEL}", "child-0")
    start = traffic.now() + timedelta(minutes=1)
    loaded.send([traffic.status_event(running, "SUCCEEDED", start=start, stop=start)])
    page.wait_for_function(
        "() => document.querySelector('.map-run-counts .running').textContent === '0 running'"
    )
    assert "10 succeeded" in page.locator(".map-run-counts").inner_text()

    run.click()
    page.wait_for_selector("#map-run-head")
    child_links = page.locator("#jobs-body td.name a")
    assert child_links.count() == CHILDREN
    page.locator("#jobs-body td.name a", has_text="child-3").click()
    page.wait_for_selector("#job-parent")
    assert page.locator("#job-name").inner_text() == "child-3"
    assert LABEL in page.locator("#job-map-run").inner_text()
    # The job page's own reads found the child: its timeline drew the execution bar.
    page.wait_for_function("() => document.querySelectorAll('#timeline-box svg *').length > 0")

    page.locator("#job-parent a").click()
    page.wait_for_selector("#job-children")
    assert page.locator("#job-name").inner_text() == "batch-1"
    assert "Map Run" in page.locator("#job-children").inner_text()

    # The parent's timeline has the Map Run as a span that opens a child.
    parent_id = traffic.job_id("MapFlow", "batch-1")
    spans = loaded.api(f"/api/jobs/{parent_id}/timeline")["spans"]
    run_span = next(s for s in spans if s.get("map_run"))
    page.goto(f"{page.url.split('#')[0]}#span={quote(run_span['end_event'], safe='')}")
    page.reload()
    page.locator("#open-child").click()
    page.wait_for_selector("#job-map-run")
    assert page.locator("#job-name").inner_text() == run_span["child"].rsplit(":", 1)[1]
    page.go_back()
    page.wait_for_selector("#job-children")

    page.locator("#job-state-machine").click()
    page.wait_for_url(f"{base}/state-machines/MapFlow/")
    page.go_back()
    page.locator("#job-children li.map-run a").click()
    page.wait_for_selector("#map-run-head")
    page.locator("#map-run-head a", has_text="state machine page").click()
    page.wait_for_load_state()
    assert f"MapFlow/{LABEL}" in page.locator("h1").inner_text()

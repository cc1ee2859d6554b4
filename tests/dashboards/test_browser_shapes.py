"""Distributed Map children in headless Chromium against a real server (daphne, the consumer,
moto, Redis: the `site` and `browser` of test_browser, one of each for this module).

A Map Run whose label holds URL-significant and non-ASCII characters: the home page, and every
link from it, work (home -> Map Run row -> child -> parent -> state machine page), and the
pages' own reads (the job page's timeline and socket) find the child. A redriven execution, in a
browser in Tokyo whose user chose local time: its attempts, its state machine's buckets and the
events' since/until filter in local time (issue 27).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlencode, urlsplit

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
TOKYO = timedelta(hours=9)  # Asia/Tokyo: no daylight saving, "GMT+9" all year
# The redriven execution: failed after 60 s, redriven 8 min after its start, done 30 s later.
# Times end in :17 s, so a datetime-local input keeps the seconds Playwright types.
REDRIVEN = traffic.execution_arn("Nightly", "nightly-local")
START = (datetime.now(UTC) - timedelta(minutes=30)).replace(second=17, microsecond=0)
REDRIVE = START + timedelta(minutes=8)


@pytest.fixture(scope="module")
def loaded(site):  # noqa: F811
    start = traffic.now()
    parent_arn = traffic.execution_arn("MapFlow", "batch-1")
    envelopes = traffic.run(parent_arn, start=start, seconds=120)
    envelopes += traffic.map_run(
        "MapFlow", LABEL, CHILDREN, start=start + timedelta(seconds=1), failed=2, running=1,
        parent_arn=parent_arn,
    )  # fmt: skip
    envelopes += traffic.run(REDRIVEN, start=START, seconds=60, status="FAILED")
    envelopes += [
        traffic.status_event(REDRIVEN, "RUNNING", start=START, redrive_count=1,
                             redrive_date=REDRIVE),
        traffic.status_event(REDRIVEN, "SUCCEEDED", start=START,
                             stop=REDRIVE + timedelta(seconds=30), redrive_count=1,
                             redrive_date=REDRIVE),
    ]  # fmt: skip
    site.send(envelopes)
    wait_for(
        lambda: site.api("/api/jobs")["results"] and _counted(site) == CHILDREN,
        60, "the Map Run's children",
    )  # fmt: skip
    wait_for(lambda: [a["status"] for a in site.api(f"/api/jobs/{_redriven()}/timeline")["job"][
        "attempts"]] == ["FAILED", "SUCCEEDED"], 60, "the redriven job")  # fmt: skip
    return site


def _redriven() -> str:
    return traffic.job_id("Nightly", "nightly-local")


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
    page.goto(f"{base}/?state_machine=MapFlow")  # not the redriven job of the other test
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


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@contextmanager
def local_time(page):
    """The user's choice set to local time (the header's toggle), and back to UTC after."""
    with page.expect_navigation():
        page.click("#tz-toggle")
    assert page.get_attribute("body", "data-tz") == "local"
    try:
        yield
    finally:
        if page.get_attribute("body", "data-tz") == "local":
            with page.expect_navigation():
                page.click("#tz-toggle")


def _walls(page, selector: str) -> list[tuple[str, str]]:
    return page.eval_on_selector_all(
        selector, "ts => ts.map(t => [t.getAttribute('datetime'), t.textContent])"
    )


@pytest.mark.parametrize("width", [1440, 390])
def test_in_local_time_attempts_buckets_and_the_since_until_filter_are_local(
    browser,  # noqa: F811
    loaded,
    width,
):
    context = browser.new_context(
        viewport={"width": width, "height": 900}, timezone_id="Asia/Tokyo"
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        sign_in(page, loaded.base)
        page.goto(f"{loaded.base}/jobs/{_redriven()}/")
        with local_time(page):
            # the attempts table: each start and stop in Tokyo time, the headers say so
            cells = _walls(page, "#job-attempts tbody time")
            assert len(cells) == 4 and _utc(cells[2][0]) == REDRIVE
            for iso, text in cells:
                assert text == f"{_utc(iso) + TOKYO:%Y-%m-%d %H:%M:%S}"
            heads = page.locator("#job-attempts thead th").all_text_contents()
            assert heads[1:3] == ["Start (GMT+9)", "Stop (GMT+9)"]

            # the state machine's bucket rows
            page.goto(f"{loaded.base}/state-machines/Nightly/?window=24h")
            rows = _walls(page, "#buckets-body th time")
            assert rows
            for iso, text in rows:
                assert text == f"{_utc(iso) + TOKYO:%Y-%m-%d %H:%M}"
            assert "(GMT+9)" in page.text_content("#buckets-table caption")

            # the events' since filter: shown in Tokyo time, typed in Tokyo time, sent as UTC
            query = {"job": _redriven(), "window": "custom", "since": f"{START:%Y-%m-%dT%H:%M:%S}"}
            page.goto(f"{loaded.base}/events/?{urlencode(query)}")
            page.wait_for_function("() => document.documentElement.dataset.ready === '1'")
            if not page.evaluate("() => document.getElementById('event-filters-fold').open"):
                page.click("#event-filters-fold > summary")  # folded on a phone
            since = page.locator("#event-filters input[name=since]")
            assert since.input_value() == f"{START + TOKYO:%Y-%m-%dT%H:%M:%S}"
            label = since.evaluate("input => input.closest('label').textContent")
            assert label.strip() == "Since (GMT+9)"
            assert page.locator("#event-body tr").count() == 4

            since.fill(f"{REDRIVE + TOKYO:%Y-%m-%dT%H:%M:%S}")
            with page.expect_navigation():
                page.click("#event-filters button[type=submit]")

            sent = parse_qs(urlsplit(page.url).query)
            assert sent["since"] == [f"{REDRIVE:%Y-%m-%dT%H:%M:%S}"]
            times = [_utc(iso) for iso, _ in _walls(page, "#event-body time")]
            assert len(times) == 2 and min(times) >= REDRIVE  # the redrive and its end
            assert page.locator("#event-filters input[name=since]").input_value() == (
                f"{REDRIVE + TOKYO:%Y-%m-%dT%H:%M:%S}")  # fmt: skip

            # the compare page's job picker: each job's start
            page.goto(f"{loaded.base}/jobs/compare/?state_machine=Nightly")
            option = page.locator("#pick-a option").first.text_content()
            assert f" · {START + TOKYO:%Y-%m-%d %H:%M:%S} · " in option
            assert "start (GMT+9)" in page.text_content(".pick-note")
        assert page.get_attribute("body", "data-tz") == "utc"
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()
    assert not errors, errors

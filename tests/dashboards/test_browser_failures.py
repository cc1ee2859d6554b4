"""The failures page and the job page's link to its group in headless Chromium, at 1440 and 390 px
(issue 27, failure groups), against the real server of test_browser (daphne, the consumer, moto,
Redis; one of each for this module).

Traffic (tests/events/failure_traffic.py): Checkout jobs that fail in Charge with a Lambda's
OrderNotFound (three orders), one whose error message is hostile HTML, one that times out in Ship,
and successes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.dashboards.test_browser import (  # noqa: F401  (the fixtures are used by name)
    TIMEOUT_MS,
    XSS_IMG,
    XSS_SCRIPT,
    assert_no_script_ran,
    browser,
    shoot,
    sign_in,
    site,
    wait_for,
)
from tests.events.failure_traffic import checkout_job, job_id

pytestmark = pytest.mark.slow
WIDTHS = [1440, 390]
HOSTILE = f"Order {{}} {XSS_SCRIPT}{XSS_IMG} refused"


@pytest.fixture(scope="module")
def failing(site):  # noqa: F811
    now = datetime.now(UTC).replace(microsecond=0)
    ago = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
    envelopes = [
        *checkout_job("c-1", start=ago(200), order=8412931),
        *checkout_job("c-2", start=ago(100), order=77),
        *checkout_job("c-3", start=ago(30), order=5120044),
        *checkout_job("x-1", start=ago(40), order=13, message=HOSTILE),
        *checkout_job("t-1", start=ago(60), outcome="ship"),
        *checkout_job("ok-1", start=ago(20), outcome="ok"),
    ]
    site.send(envelopes)
    wait_for(
        lambda: sum(g["count"] for g in site.api("/api/failures")["groups"]) >= 5,
        60, "the failures in the API",
    )  # fmt: skip
    return site


@pytest.fixture(params=WIDTHS, ids=lambda w: f"{w}px")
def page(request, browser, failing):  # noqa: F811
    context = browser.new_context(viewport={"width": request.param, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    sign_in(page, failing.base)
    yield page
    context.close()


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_nav_leads_to_the_groups_most_failures_first(page, failing):
    page.get_by_role("link", name="Failures").click()
    page.wait_for_url("**/failures/")

    groups = page.locator("article.failure-group")
    assert groups.count() == 3
    first = groups.nth(0)
    assert first.locator(".failure-state").inner_text() == "Charge"
    assert first.locator("[data-count]").inner_text() == "3"
    assert "OrderNotFound: Order <n> not found in table checkout-orders" in (
        first.locator(".failure-cause").inner_text()
    )
    samples = first.locator(".sample-jobs a").all_inner_texts()
    assert samples == [job_id("c-3"), job_id("c-2"), job_id("c-1")]
    assert page.locator("nav a[aria-current=page]").inner_text() == "Failures"
    assert fits(page)
    shoot(page, f"failures-{page.viewport_size['width']}.png")


def test_each_group_draws_its_trend_as_an_svg_line(page, failing):
    page.goto(f"{failing.base}/failures/")
    first = page.locator("article.failure-group").nth(0)
    line = first.locator("svg.trend polyline")

    points = [tuple(map(float, p.split(","))) for p in line.get_attribute("points").split()]
    assert len(points) == 24
    assert (points[0][0], points[-1][0]) == (0, 120)
    assert [i for i, (_, y) in enumerate(points) if y < 27] == [20, 22, 23]  # a failure each
    box = first.locator("svg.trend").bounding_box()
    assert box["width"] == 120 and box["height"] == 28
    label = first.locator("svg.trend").get_attribute("aria-label")
    prefix, counts = label.split(": ")
    assert prefix == "Failures per 60 minutes, oldest first"
    trend = [int(n) for n in counts.split(", ")]
    assert [i for i, n in enumerate(trend) if n] == [20, 22, 23]  # 200, 100 and 30 minutes ago
    assert line.evaluate("l => getComputedStyle(l).fill") == "none"


def test_a_hostile_cause_is_text_and_no_script_runs(page, failing):
    page.goto(f"{failing.base}/failures/")

    hostile = page.locator("article.failure-group", has_text="refused")
    shown = hostile.locator(".failure-cause").inner_text()
    assert XSS_SCRIPT.replace("1", "<n>") in shown and XSS_IMG.replace("1", "<n>") in shown
    assert page.locator("article img").count() == 0
    assert_no_script_ran(page)
    assert fits(page)


def test_a_sample_job_and_the_search_links_open(page, failing):
    page.goto(f"{failing.base}/failures/")
    first = page.locator("article.failure-group").nth(0)

    first.locator(".search-link").click()
    page.wait_for_url("**/events/?**")
    # Their state machine's status changes with their error: the cause it cannot filter on, so
    # x-1 (the same error, another message) is there too.
    jobs = page.locator("#event-body tr.event-row td:nth-child(5) a").all_inner_texts()
    assert sorted(jobs) == [job_id(name) for name in ("c-1", "c-2", "c-3", "x-1")]
    page.go_back()
    page.locator("article.failure-group").nth(0).locator(".sample-jobs a").first.click()
    page.wait_for_url(f"**/jobs/{job_id('c-3')}/")
    assert page.locator("#error-box").is_visible()


def test_the_job_pages_error_box_links_to_its_group(page, failing):
    page.goto(f"{failing.base}/jobs/{job_id('c-2')}/")
    link = page.locator("#error-box #similar-failures")

    assert link.inner_text() == "3 similar failures"
    assert link.is_visible() and fits(page)
    link.click()
    page.wait_for_url("**/failures/?**")
    shown = page.locator("article.failure-group")
    assert shown.count() == 1
    assert "failure-selected" in shown.get_attribute("class")
    assert shown.locator("[data-count]").inner_text() == "3"
    assert shown.locator(".failure-state").inner_text() == "Charge"
    page.locator("#all-groups").click()
    page.wait_for_function("() => document.querySelectorAll('article.failure-group').length === 3")
    assert fits(page)


def test_a_timed_out_job_links_to_its_own_group(page, failing):
    page.goto(f"{failing.base}/jobs/{job_id('t-1')}/")

    assert page.locator("#similar-failures").inner_text() == "1 similar failure"
    page.locator("#similar-failures").click()
    page.wait_for_url("**/failures/?**")
    assert page.locator("article.failure-group .failure-state").all_inner_texts() == ["Ship"]

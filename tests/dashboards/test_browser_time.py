"""Issue 25 "Time" in headless Chromium: no page shows a duration below zero on the traffic that
showed them (tests/events/skew_traffic.py: answers stamped by their Lambda's clock 2 ms into the
second whose trigger SQS got some 300 ms into it), sent through SQS (moto's server) to the real
consumer and served by daphne (the `site` and `browser` of test_browser.py).
"""

# ruff: noqa: F811 (the module's fixtures `site` and `browser` come from test_browser.py)
from __future__ import annotations

import re

import pytest

from tests.dashboards.test_browser import (  # noqa: F401 (site, browser: fixtures)
    TIMEOUT_MS,
    browser,
    sign_in,
    site,
    wait_for,
)
from tests.events import skew_traffic as traffic

pytestmark = pytest.mark.slow

NAMES = ("skew-page-a", "skew-page-b")
# A duration with a minus sign: "-166 ms", "−166 ms", "-1.2 s", "−3 min".
NEGATIVE = re.compile(r"[-−]\s?\d+(?:[.,]\d+)?\s?(?:ms|s|min|h)\b")
SKEW = re.compile(r"clock skew (\d+) ms")


@pytest.fixture(scope="module")
def jobs(site):
    """Two jobs of the issue's traffic; their timelines once every answer is stored."""
    for name in NAMES:
        second = traffic.second_to_send_in()
        sent = traffic.triggers(name, second)
        site.send(sent)
        site.send(traffic.answers(name, sent, second))
    timelines = {}
    for name in NAMES:
        job = traffic.job_id(name)
        timelines[job] = wait_for(
            lambda job=job: _finished(site.api(f"/api/jobs/{job}/timeline")), 60, f"job {job}"
        )
    return timelines


def _finished(timeline: dict) -> dict | None:
    done = timeline["job"]["event_count"] == 8 and timeline["execution"]["status"] == "SUCCEEDED"
    return timeline if done else None


@pytest.fixture
def page(browser, site, jobs):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, site.base)
    yield page
    context.close()
    assert not errors, errors


def assert_no_negative(text: str, where: str) -> None:
    assert not NEGATIVE.search(text), f"{where}: {NEGATIVE.search(text).group()!r} in {text!r}"


def test_the_traffic_is_the_issues(jobs):
    """Each answer's span runs backwards by its clocks: what the pages must not show."""
    for timeline in jobs.values():
        skewed = [span for span in timeline["spans"] if span["skew_ms"]]
        assert len(skewed) == 3
        assert all(span["duration_ms"] is None and span["skew_ms"] > 2 for span in skewed)


def test_the_job_page_its_tooltips_and_span_table_show_clock_skew(page, site, jobs):
    job, timeline = next(iter(jobs.items()))
    page.goto(f"{site.base}/jobs/{job}/")
    page.wait_for_selector("#timeline-svg .span-g")
    page.click("#span-table summary")  # the span table, folded by default
    assert_no_negative(page.locator("body").inner_text(), "job page")
    skews = sorted(span["skew_ms"] for span in timeline["spans"] if span["skew_ms"])
    table = page.locator("#span-table-body").inner_text()
    assert sorted(int(n) for n in SKEW.findall(table)) == skews
    tips = []
    for span in timeline["spans"]:
        bar = page.locator(f'#timeline-svg .span-g[data-key="{span["end_event"]}"]')
        assert_no_negative(bar.get_attribute("aria-label"), "a bar's label")
        bar.hover()
        tip = page.locator("#span-tip")
        tip.wait_for(state="visible")
        tips.append(tip.inner_text())
        assert_no_negative(tips[-1], "a tooltip")
    assert sorted(int(n) for text in tips for n in SKEW.findall(text)) == skews
    page.click("#critical-toggle")  # the critical path's length counts a skewed span as 0
    total = page.locator("#critical-total").inner_text()
    assert "span" in total, total
    assert_no_negative(total, "the critical path's total")


def test_the_compare_home_and_state_machine_pages_show_no_negative_duration(page, site, jobs):
    a, b = jobs
    page.goto(f"{site.base}/jobs/compare/?a={a}&b={b}")
    page.wait_for_selector(".col-a")
    cells = page.locator(".col-a, .col-b, .duration").all_inner_texts()
    assert cells and all(not NEGATIVE.search(cell) for cell in cells), cells
    assert any(SKEW.search(cell) for cell in cells)
    page.goto(f"{site.base}/")
    page.wait_for_selector("td.duration")
    assert_no_negative(page.locator("main").inner_text(), "home")
    page.goto(f"{site.base}/state-machines/{traffic.MACHINE}/")
    page.wait_for_load_state("networkidle")
    assert_no_negative(page.locator("main").inner_text(), "state machine page")


# The original frontend's arithmetic (martzcodes/blog-sst-eventdriven-observability,
# frontend/src/Timeline.tsx and Table.tsx), restated: a step is an event with
# `meta.incoming.detailType`; it ends at its own `sk` and starts at the `sk` of the last event
# whose TaskToken maps to the same state index and whose detail-type is the one it answered;
# the table's React key is `sk`.
ORIGINAL_STEPS_JS = """events => {
  const index = {};
  events.filter(e => !e.meta).forEach((e, i) => { index[e.TaskToken] = i; });
  const starts = {};
  events.forEach(e => { starts[`${index[e.TaskToken]}-${e.detailType}`] = Number(e.sk); });
  return events.filter(e => e.meta && e.meta.incoming && e.meta.incoming.detailType).map(e => ({
    step: e.detailType,
    start: starts[`${index[e.TaskToken]}-${e.meta.incoming.detailType}`],
    end: Number(e.sk),
  }));
}"""
OPEN_ORIGINAL_SOCKET_JS = """() => new Promise((resolve, reject) => {
  window.__items = [];
  const socket = new WebSocket(`ws://${location.host}/ws/events/?shape=original`);
  socket.onmessage = message => window.__items.push(JSON.parse(message.data));
  socket.onopen = () => resolve(true);
  socket.onerror = () => reject(new Error('socket refused'));
})"""


def assert_original_steps(steps: list[dict], where: str) -> None:
    assert len(steps) == 3, (where, steps)
    for step in steps:
        assert isinstance(step["start"], int) and step["end"] > step["start"], (where, step)


def test_the_original_frontends_reads_show_no_negative_step_nor_repeated_key(page, site, jobs):
    """What the original frontend does in the browser, on the issue's traffic: its job page
    (`GET /api/job/<name>`) and its live view (`/ws/events/?shape=original`, every item
    listed as it comes, the table keyed by `sk`)."""
    page.goto(f"{site.base}/")
    for name in NAMES:
        events = page.evaluate(
            "name => fetch(`/api/job/${name}`).then(r => r.json()).then(d => d.events)", name
        )
        keys = [event["sk"] for event in events]
        assert len(set(keys)) == len(keys) == 8, keys
        assert_original_steps(page.evaluate(ORIGINAL_STEPS_JS, events), f"/api/job/{name}")

    assert page.evaluate(OPEN_ORIGINAL_SOCKET_JS)
    name = "skew-page-live"
    second = traffic.second_to_send_in()
    sent = traffic.triggers(name, second)
    site.send(sent)
    site.send(traffic.answers(name, sent, second))
    page.wait_for_function("() => window.__items.length >= 8")
    live = page.evaluate("() => window.__items")
    assert len(live) == 8 and {item["pk"] for item in live} == {f"EVENT#{traffic.job_id(name)}"}
    keys = [item["sk"] for item in live]
    assert len(set(keys)) == len(keys), keys
    assert_original_steps(page.evaluate(ORIGINAL_STEPS_JS, live), "the live view")

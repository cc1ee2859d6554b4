"""The job view by state in headless Chromium at 1440 px (issue 25), against the real server of
test_browser.py (daphne, the consumer, moto, Redis): lanes named by state with their Lambdas as
sub-labels, the same colours and lane order on two jobs of one state machine, the error box's
link to the failed span, the stuck badge, and the compare page's state colours.

The jobs are tests/events/state_flows.py's "Orders": ONE runs Validate then Enrich and charges
ann then bob; TWO runs Enrich first, charges bob first and fails waiting for Ship; five more
successes make the state machine's baseline; STUCK has been RUNNING for ten minutes.
"""

# ruff: noqa: F811 (the module's fixtures `site` and `browser` come from test_browser.py)
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.dashboards.test_browser import (  # noqa: F401 (site, browser: fixtures)
    TIMEOUT_MS,
    browser,
    sign_in,
    site,
    wait_for,
)
from tests.dashboards.test_browser_job import context  # noqa: F401 (signed-in context fixture)
from tests.events.state_flows import job_id, orders_job

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def jobs(site):
    now = int(datetime.now(UTC).timestamp() * 1000)
    minute = 60_000
    sent = {
        "one": orders_job("one", t0=now - 30 * minute),
        "two": orders_job("two", first="Enrich", items=("bob", "ann"), fail=True,
                          t0=now - 25 * minute, slow=250),
        **{f"ok{n}": orders_job(f"ok{n}", t0=now - (50 + n) * minute) for n in range(4)},
        "stuck": orders_job("stuck", t0=now - 10 * minute)[:2],  # RUNNING, Validate waiting
    }  # fmt: skip
    for envelopes in sent.values():
        site.send(envelopes)
    for name, envelopes in sent.items():
        n = len(envelopes)
        wait_for(lambda name=name, n=n: _count(site, name) >= n, 60, f"job {name}")
    return {name: job_id(name) for name in sent}


def _count(site, name: str) -> int:
    try:
        return site.api(f"/api/jobs/{job_id(name)}/timeline")["job"]["event_count"]
    except OSError:  # 404 until its first event is stored
        return 0


@pytest.fixture
def page(context, jobs):
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert not errors, errors


def open_job(page, site, job: str) -> dict:
    page.goto(f"{site.base}/jobs/{job}/")
    page.wait_for_selector("#timeline-svg .span-g")
    return site.api(f"/api/jobs/{job}/timeline")


def lanes_drawn(page) -> list[dict]:
    """Each state lane drawn, top to bottom: its name, its sub-labels, its bars' fill colours."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('#timeline-svg g.state-lane')).map((g) => {
          const state = g.dataset.state;
          const label = g.querySelector('text.state-label');
          const fills = new Set();
          document.querySelectorAll('#timeline-svg .span-g').forEach((bar) => {
            if (bar.getAttribute('aria-label').includes(' in state ' + state + ',')) {
              const rect = bar.querySelector('rect.span:not(.pending)');
              if (rect && !rect.classList.contains('alt')) fills.add(getComputedStyle(rect).fill);
            }
          });
          const subs = Array.from(g.querySelectorAll('text.lane-sublabel'));
          return {state, y: label.getBoundingClientRect().top, label: label.textContent,
                  subs: subs.map((t) => t.textContent), fills: Array.from(fills)};
        }).sort((a, b) => a.y - b.y)"""
    )


def test_it_draws_the_states_as_lanes_with_their_lambdas_as_sub_labels(page, site, jobs):
    timeline = open_job(page, site, jobs["one"])

    drawn = {lane["state"]: lane for lane in lanes_drawn(page)}
    assert set(drawn) == {"Validate", "Enrich", "Charge"}
    assert drawn["Enrich"]["label"].startswith("Enrich")
    assert sorted(drawn["Enrich"]["subs"]) == ["auditFn", "enrichFn"]
    assert drawn["Validate"]["subs"] == ["validateFn"]
    assert drawn["Charge"]["subs"] == ["chargeFn"]
    # work that no event places in a state keeps its function lane
    assert page.locator("#timeline-svg text.lane-label", has_text="pingFn").count() == 1
    for span in timeline["spans"]:
        rect = page.locator(f'#timeline-svg .span-g[data-key="{span["end_event"]}"] rect.span')
        assert f"c{span['colour']}" in rect.get_attribute("class").split()
    row = page.locator("#span-table-body tr", has_text="auditFn").first
    assert row.locator("td").first.text_content() == "Enrich"


def test_two_jobs_of_one_state_machine_get_the_same_lane_order_and_colours(page, site, jobs):
    open_job(page, site, jobs["one"])
    one = lanes_drawn(page)
    open_job(page, site, jobs["two"])
    two = [lane for lane in lanes_drawn(page) if lane["state"] != "Ship"]

    # TWO ran Enrich before Validate, and charged bob before ann: the lanes do not move
    assert [lane["state"] for lane in one] == [lane["state"] for lane in two]
    for a, b in zip(one, two, strict=True):
        assert a["fills"] == b["fills"] and len(a["fills"]) == 1, (a, b)
    assert len({lane["fills"][0] for lane in one}) > 1  # states are told apart by colour too


def test_the_error_box_names_the_state_and_its_link_selects_the_failed_span(page, site, jobs):
    timeline = open_job(page, site, jobs["two"])
    waiting = next(span for span in timeline["spans"] if span["status"] == "pending")

    box = page.locator("#error-box")
    assert "Ship timed out" in box.text_content()
    assert page.locator("#error-state").text_content() == "Ship"
    assert page.locator(".span-g[aria-selected=true]").count() == 0
    page.click("#error-span-link")

    selected = page.locator('#timeline-svg .span-g[aria-selected="true"]')
    selected.wait_for()
    assert selected.get_attribute("data-key") == waiting["start_event"]
    assert selected.get_attribute("data-status") == "pending"
    assert page.evaluate("location.hash") == f"#span={waiting['start_event']}"
    assert "awaiting ship" in page.locator("#span-detail").text_content()


def test_a_stuck_job_shows_the_badge_and_reason_the_list_shows(page, site, jobs):
    page.goto(f"{site.base}/?state_machine=Orders")
    row = page.locator(f'tr[data-job-id="{jobs["stuck"]}"]')
    listed = row.locator(".stuck-reason").text_content()
    assert row.locator(".badge-stuck").count() == 1 and listed

    open_job(page, site, jobs["stuck"])

    assert page.locator("#job-stuck").text_content() == "stuck"
    shown = page.locator("#job-stuck-reason").text_content()
    # "running 10 min, 75x the p99 of 8 s": the same rule and baseline; the time ran on
    assert shown.startswith("running ") and listed.startswith("running ")
    assert shown.split("x the p99 of ")[1] == listed.split("x the p99 of ")[1]
    open_job(page, site, jobs["one"])
    assert page.locator("#job-stuck").count() == 0


def test_the_compare_page_pairs_items_and_colours_states_as_the_job_page(page, site, jobs):
    open_job(page, site, jobs["one"])
    fills = {lane["state"]: lane["fills"][0] for lane in lanes_drawn(page)}
    page.goto(f"{site.base}/jobs/compare/?a={jobs['one']}&b={jobs['two']}")

    charges = page.locator('#compare-steps tr[data-lane="chargeFn"]')
    assert charges.count() == 2
    assert [charges.nth(i).locator("td.step").text_content() for i in range(2)] == [
        "Charge chargeFn · item=ann",
        "Charge chargeFn · item=bob",
    ]
    # ann: 100 ms in A, 450 in B
    assert charges.nth(0).locator(".delta").text_content() == "+350 ms"
    for state, fill in fills.items():
        chip = page.locator(f'#compare-steps .state-chip[data-state="{state}"] .swatch').first
        assert chip.evaluate("(el) => getComputedStyle(el).backgroundColor") == fill, state
    assert "Left out" in page.locator("#compare-sum").text_content()

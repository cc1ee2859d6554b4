"""Issue 27 in headless Chromium, at 1440 and 390 px: quick time ranges shared through the URL,
local time or UTC per user, pausing the live tail, dark mode, keyboard shortcuts, the links out
to AWS, and the phone layout (home rows status-first with folded filters, the architecture graph
fitted on open). The sample jobs go through SQS (moto's server) to the real consumer, daphne
serves the pages (`site`, `browser`, `loaded` of test_browser.py).
"""

# ruff: noqa: F811 (the module's fixtures come from test_browser.py)
from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from events.domain import console
from tests.dashboards.test_browser import (  # noqa: F401 (site, browser, loaded: fixtures)
    PASSWORD,
    TIMEOUT_MS,
    USER,
    assert_no_script_ran,
    browser,
    loaded,
    shoot,
    sign_in,
    site,
    wait_for,
)

pytestmark = pytest.mark.slow

WIDTHS = [1440, 390]
KOLKATA = timedelta(hours=5, minutes=30)  # no daylight saving: the same label all year


@pytest.fixture(scope="module")
def signed_in(browser, loaded):
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, loaded.base)
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def open_page(browser, loaded, signed_in):
    """open_(path, width, **context options): a signed-in page, ready (html[data-ready])."""
    contexts, errors = [], []

    def open_(path: str, width: int = 1440, **options):
        context = browser.new_context(
            storage_state=signed_in, viewport={"width": width, "height": 900}, **options
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{loaded.base}{path}")
        page.wait_for_function("() => document.documentElement.dataset.ready === '1'")
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, errors


def a_job(site) -> dict:
    return site.api("/api/jobs?status=SUCCEEDED")["results"][0]


def no_sideways_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


# ---- time: quick ranges, one window through the URL, local time or UTC --------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_a_quick_range_goes_into_the_url_and_the_other_pages_keep_it(open_page, loaded, width):
    page = open_page("/events/?source=aws.states", width)

    page.click("#time-picker a[data-window='1h']")
    page.wait_for_url(re.compile(r"window=1h"))

    query = parse_qs(urlsplit(page.url).query)
    assert query == {"source": ["aws.states"], "window": ["1h"]}
    assert page.get_attribute("#time-picker a[data-window='1h']", "aria-current") == "true"
    assert page.locator("#time-picker [aria-current]").count() == 1
    assert page.locator("#events-count").text_content().strip()  # the samples are 5 min old
    page.click(".nav-links a[href^='/architecture/']")
    page.wait_for_url(re.compile(r"/architecture/\?window=1h$"))
    assert page.input_value("#window-select") == "1h"
    assert page.get_attribute("#time-picker a[data-window='1h']", "aria-current") == "true"
    page.click("#time-picker a[data-window='7d']")
    page.wait_for_url(re.compile(r"window=7d"))
    page.click(".nav-links a[href^='/?']")
    page.wait_for_url(re.compile(r"/\?window=7d$"))
    assert page.get_attribute("#time-picker a[data-window='7d']", "aria-current") == "true"
    assert page.locator("#jobs-body tr").count() > 0
    assert no_sideways_scroll(page)


@pytest.mark.parametrize("width", WIDTHS)
def test_times_are_utc_until_the_user_chooses_local_time_once_for_every_page(
    open_page, loaded, width
):
    job = a_job(loaded)
    started = datetime.fromisoformat(job["started_at"].replace("Z", "+00:00"))
    path = f"/jobs/{job['id']}/"
    page = open_page(path, width, timezone_id="Asia/Kolkata")
    started_dd = page.locator(".facts-grid time").first
    assert started_dd.text_content() == f"{started:%Y-%m-%d %H:%M:%S} UTC"
    assert page.text_content("#tz-toggle") == "UTC"
    try:
        with page.expect_navigation():
            page.click("#tz-toggle")
        page.wait_for_function("() => document.documentElement.dataset.ready === '1'")

        local = started + KOLKATA
        assert page.get_attribute("body", "data-tz") == "local"
        assert page.text_content("#tz-toggle") == "Local"
        assert started_dd.text_content() == f"{local:%Y-%m-%d %H:%M:%S} GMT+5:30"
        first_row = page.locator("#event-body time").first
        iso = first_row.get_attribute("datetime")
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00")) + KOLKATA
        assert first_row.text_content() == f"{moment:%Y-%m-%d %H:%M:%S}"
        assert page.locator("#events thead th").first.text_content() == "Time (GMT+5:30)"
        # the timeline's axis and its text alternative say the same zone
        page.wait_for_selector("#timeline-svg text.tick-zone")
        assert page.text_content("#timeline-svg text.tick-zone") == "Time (GMT+5:30)"
        assert page.text_content("#span-table-body tr td:nth-child(3)").endswith(" GMT+5:30")
        # chosen once: another page, in a new browser of the same user, shows local time
        other = open_page("/", width, timezone_id="Asia/Kolkata")
        row = other.locator(f"#jobs-body tr[data-job-id='{job['id']}'] time").first
        assert row.text_content() == f"{local:%Y-%m-%d %H:%M:%S}"
        assert other.text_content("#tz-toggle") == "Local"
    finally:
        if page.get_attribute("body", "data-tz") == "local":  # back to UTC for the other tests
            with page.expect_navigation():
                page.click("#tz-toggle")
    page.wait_for_function("() => document.body.dataset.tz === 'utc'")
    assert started_dd.text_content() == f"{started:%Y-%m-%d %H:%M:%S} UTC"


# ---- the live tail: pause and resume ------------------------------------------------------------


def one_more_event(job: dict) -> dict:
    """A Lambda's event of the job as EventBridge delivers it: a new id, whole-second time."""
    machine, name = job["state_machine"], job["name"]
    arn = f"arn:aws:states:{job['region']}:{job['account']}:execution:{machine}:{name}"
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "auditWritten",
        "source": "shop.audit", "account": job["account"], "region": job["region"],
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "resources": [],
        "detail": {"execution": arn, "meta": {"fn": "auditFn", "emittedAt": datetime.now(
            UTC).timestamp(), "incoming": {"source": "shop", "detailType": "orderPlaced"}}},
    }  # fmt: skip


LIVE = "() => document.getElementById('live-indicator').dataset.state === 'live'"
NOTE = "(text) => document.getElementById('paused-note').textContent === text"


@pytest.mark.parametrize("width", WIDTHS)
def test_pause_holds_the_rows_still_and_counts_what_arrived_then_resume_applies_it(
    open_page, loaded, width
):
    job = a_job(loaded)
    row = f"#jobs-body tr[data-job-id='{job['id']}'] td.events"
    paused = open_page("/", width)
    live = open_page("/", width)  # a second reader that does not pause: the measure of "arrived"
    for page in (paused, live):
        page.wait_for_function(LIVE)
    before = paused.text_content(row)

    paused.click("#tail-pause")
    assert paused.get_attribute("#tail-pause", "aria-pressed") == "true"
    assert paused.text_content("#tail-pause") == "Resume"
    assert paused.text_content("#paused-note") == "Paused · 0 events arrived since"
    loaded.send([one_more_event(job), one_more_event(job)])
    # the unpaused page shows both new events: they are stored and were broadcast
    live.wait_for_function(
        "([sel, n]) => document.querySelector(sel).textContent === String(n)",
        arg=[row, int(before) + 2],
    )  # fmt: skip
    paused.wait_for_function(NOTE, arg="Paused · 2 events arrived since")
    assert paused.text_content(row) == before  # held still

    paused.click("#tail-pause")

    paused.wait_for_function(
        "([sel, n]) => document.querySelector(sel).textContent === String(n)",
        arg=[row, int(before) + 2],
    )  # fmt: skip
    assert paused.is_hidden("#paused-note")
    assert paused.get_attribute("#tail-pause", "aria-pressed") == "false"
    assert no_sideways_scroll(paused)


# ---- dark mode ----------------------------------------------------------------------------------

BACKGROUND = "() => getComputedStyle(document.documentElement).backgroundColor"


def luminance(css: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


@pytest.mark.parametrize("width", WIDTHS)
def test_dark_mode_follows_the_system_and_the_toggle_is_remembered(open_page, width):
    page = open_page("/events/", width, color_scheme="dark")
    assert luminance(page.evaluate(BACKGROUND)) < 0.15
    shoot(page, f"events-dark-{width}.png")
    assert page.get_attribute("#theme-toggle", "aria-pressed") == "true"
    card = page.evaluate("() => getComputedStyle(document.querySelector('.card')).backgroundColor")
    ink = page.evaluate("() => getComputedStyle(document.querySelector('h1')).color")
    assert luminance(card) < 0.2 and luminance(ink) > 0.8

    page.click("#theme-toggle")

    assert luminance(page.evaluate(BACKGROUND)) > 0.9
    assert page.get_attribute("#theme-toggle", "aria-pressed") == "false"
    page.reload()
    page.wait_for_function("() => document.documentElement.dataset.ready === '1'")
    assert page.get_attribute("html", "data-theme") == "light"
    assert luminance(page.evaluate(BACKGROUND)) > 0.9

    light = open_page("/", width, color_scheme="light")
    assert luminance(light.evaluate(BACKGROUND)) > 0.9
    light.click("#theme-toggle")
    assert luminance(light.evaluate(BACKGROUND)) < 0.15
    assert light.evaluate("() => localStorage.getItem('edobs-theme')") == "dark"


# ---- keyboard shortcuts -------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_slash_searches_question_mark_helps_escape_closes_and_typing_is_left_alone(
    open_page, width
):
    page = open_page("/events/", width)
    page.click("h1")

    page.keyboard.press("/")

    assert page.evaluate("() => document.activeElement.name") == "q"
    assert page.evaluate("() => document.getElementById('event-filters-fold').open")
    page.keyboard.type("a?/b")  # typed into the box, not taken as shortcuts
    assert page.input_value("input[name=q]") == "a?/b"
    assert not page.evaluate("() => document.getElementById('shortcuts-help').open")

    page.click("h1")
    page.keyboard.press("?")
    assert page.evaluate("() => document.getElementById('shortcuts-help').open")
    assert page.is_visible("#shortcuts-help")
    help_text = page.text_content("#shortcuts-help")
    assert "/" in help_text and "?" in help_text and "Esc" in help_text
    page.keyboard.press("Escape")
    assert not page.evaluate("() => document.getElementById('shortcuts-help').open")
    page.click("#help-open")
    assert page.is_visible("#shortcuts-help")
    page.click("#help-close")
    assert page.is_hidden("#shortcuts-help")


@pytest.mark.parametrize("width", WIDTHS)
def test_slash_on_the_home_page_finds_its_filter_box(open_page, width):
    page = open_page("/", width)
    page.click("h1")
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.name") == "state_machine"


# ---- out to AWS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_a_job_opens_in_the_console_and_a_span_opens_its_logs_insights_query(
    open_page, loaded, width
):
    job = a_job(loaded)
    timeline = loaded.api(f"/api/jobs/{job['id']}/timeline")
    arn = timeline["job"]["execution_arn"]
    page = open_page(f"/jobs/{job['id']}/", width)

    link = page.locator("#aws-console")
    assert link.get_attribute("href") == console.execution_url(arn)
    assert link.get_attribute("rel") == "noopener noreferrer"
    assert link.is_visible()

    span = next(s for s in timeline["spans"] if s["fn"])
    page.wait_for_selector("#timeline-svg .span-g")
    key = span["end_event"] or span["start_event"]
    page.goto(f"{loaded.base}/jobs/{job['id']}/#span={key}")
    page.wait_for_selector("#span-logs")
    logs = page.locator("#span-logs")
    href = logs.get_attribute("href")
    assert logs.get_attribute("rel") == "noopener noreferrer"
    assert href.startswith("https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#")
    # the query: the function's log group, the execution's trace token (its name)
    assert f"~source~(~'*2Faws*2Flambda*2F{span['fn']})" in href
    assert f"like*20*22{job['name']}*22" in href.replace("%", "*")
    logs.scroll_into_view_if_needed()
    assert logs.is_visible()
    assert no_sideways_scroll(page)


def test_a_hostile_job_has_no_logs_link_and_nothing_runs(open_page, loaded):
    from tests.dashboards.test_browser import hostile_envelope

    loaded.send([hostile_envelope(name="hostile-controls")])
    job = "123456789012:us-east-1:EventDrivenMachine:hostile-controls"
    wait_for(lambda: loaded.api(f"/api/jobs/{job}/timeline"), 60, "the hostile job")
    page = open_page(f"/jobs/{job}/")
    page.wait_for_selector("#timeline-svg .span-g")
    page.locator("#timeline-svg .span-g").first.click()

    assert page.locator("#span-logs").count() == 0  # its fn is not a Lambda function's name
    assert page.locator("#aws-console").count() == 1
    assert json.loads(page.text_content("#logs-links")) == {}
    assert_no_script_ran(page)


# ---- phone --------------------------------------------------------------------------------------


def test_on_a_phone_home_rows_show_their_status_first_and_the_filters_are_folded(open_page):
    page = open_page("/", 390)

    assert not page.evaluate("() => document.getElementById('job-filters-fold').open")
    assert page.is_hidden("#job-filters input[name=state_machine]")
    row = page.locator("#jobs-body tr").first
    status, machine, name = (
        row.locator(sel).bounding_box() for sel in ("td.status", "td.sm", "td.name")
    )
    assert status["y"] < name["y"] < machine["y"]  # status first, then which job
    assert row.bounding_box()["width"] <= 390
    assert no_sideways_scroll(page)
    shoot(page, "home-390.png")
    page.click("#job-filters-fold > summary")
    assert page.is_visible("#job-filters input[name=state_machine]")


def test_on_a_wide_screen_home_is_a_table_with_its_filters_open(open_page):
    page = open_page("/", 1440)

    assert page.evaluate("() => document.getElementById('job-filters-fold').open")
    assert page.is_visible("#job-filters input[name=state_machine]")
    row = page.locator("#jobs-body tr").first
    boxes = [row.locator(sel).bounding_box() for sel in ("td.sm", "td.name", "td.status")]
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]  # one line, the table's columns
    assert boxes[0]["y"] == boxes[2]["y"]


GRAPH_IN_VIEW = """() => {
  const port = document.getElementById('arch-viewport').getBoundingClientRect();
  const graph = document.querySelector('#arch-svg .arch-root').getBoundingClientRect();
  return {inside: graph.left >= port.left - 1 && graph.right <= port.right + 1 &&
                  graph.top >= port.top - 1 && graph.bottom <= port.bottom + 1,
          zoom: Number(document.getElementById('arch-viewport').dataset.zoom)};
}"""


@pytest.mark.parametrize("width", WIDTHS)
def test_the_architecture_graph_opens_fitted_on_a_phone_and_at_1_to_1_on_a_wide_screen(
    open_page, width
):
    page = open_page("/architecture/", width)
    page.wait_for_selector("#arch-svg .node")
    page.evaluate("window.edobsArchitecture.ready")

    shown = page.evaluate(GRAPH_IN_VIEW)

    if width == 390:
        assert shown["inside"], "the whole graph is on the screen"
        shoot(page, "architecture-fitted-390.png")
        assert shown["zoom"] < 1
    else:
        assert shown["zoom"] == 1
    assert no_sideways_scroll(page)


# ---- the admin ----------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_the_admin_shows_24_hour_utc_and_alert_deliveries(browser, loaded, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(f"{loaded.base}/admin/login/")
        page.fill("input[name=username]", USER)  # a superuser
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{loaded.base}/admin/")
        assert page.get_by_role("link", name="Alert deliveries").count() == 1
        assert "deliverys" not in page.content()

        page.goto(f"{loaded.base}/admin/events/event/")
        cells = page.locator("#result_list td.field-time, #result_list th.field-time")
        texts = cells.all_text_contents()
        assert texts and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", t) for t in texts)
    finally:
        context.close()

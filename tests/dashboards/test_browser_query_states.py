# ruff: noqa: F811  (the fixtures imported from test_browser and test_browser_fleet are used by name)
"""Honest query states and the state machine page in headless Chromium against a real server
(daphne, the consumer, moto, Redis: test_browser's `site`, one for this module), at 1440 and
390 px: an invalid filter lists nothing, paging says where it stops, a signed-out tab says so
with a link, the state machine page refreshes itself, charts failure rate and p99, gives its
totals in the axes' units and opens a bar's jobs, and the architecture shows each function's
failure rate and says when the compared window is empty.

Traffic: test_browser_fleet's fleet (OrderFlow with two failures, ShipFlow in another account),
a PayFlow whose chargeFn was running when one job failed, and 1,030 events without a job.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.dashboards.test_browser import (  # noqa: F401  (the fixtures are used by name)
    PASSWORD,
    TIMEOUT_MS,
    USER,
    _manage,
    browser,
    sign_in,
    site,
    wait_for,
)
from tests.dashboards.test_browser_fleet import ACCOUNT_A, fleet, job  # noqa: F401
from tests.events import flows

pytestmark = pytest.mark.slow
WIDTHS = (1440, 390)
BUSY = 1_030
REFRESH_POLL_S = 30  # state_machine.js REFRESH_MS


@pytest.fixture(scope="module")
def traffic(fleet):  # noqa: F811
    """PayFlow: four jobs of chargeFn (3 s) then shipFn; the last fails 1.5 s into chargeFn."""
    now = datetime.now(UTC).replace(microsecond=0)
    envelopes = []
    for n in range(4):
        one = flows.job_envelopes(
            machine="PayFlow", start=now - timedelta(minutes=20 - n), trigger="orderPlaced",
            steps=[flows.Step("chargeFn", "orderPlaced", "payment.charged", 3_000),
                   flows.Step("shipFn", "payment.charged", "order.shipped", 200)],
        )  # fmt: skip
        if n == 3:
            stop = one[-1]["detail"]
            stop["status"], stop["error"] = "FAILED", "Card.Declined"
            stop["stopDate"] = stop["startDate"] + 1_500
        envelopes += one
    fleet.send(envelopes)
    wait_for(lambda: fleet.api("/api/jobs?state_machine=PayFlow&status=FAILED")["results"],
             60, "PayFlow's failed job")  # fmt: skip
    return fleet


BUSY_INGEST = """
import json, uuid
from datetime import UTC, datetime, timedelta
from events.ingest.services import InboundMessage, event_ingest
at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
bodies = [json.dumps({
    "version": "0", "id": str(uuid.uuid4()), "detail-type": "heartbeat", "source": "chatty",
    "account": "%s", "region": "us-east-1", "resources": [],
    "time": (at + timedelta(seconds=n)).strftime("%%Y-%%m-%%dT%%H:%%M:%%SZ"), "detail": {"n": n},
}) for n in range(%d)]
for start in range(0, len(bodies), 100):
    event_ingest(messages=[InboundMessage(body=b) for b in bodies[start:start + 100]])
"""


@pytest.fixture(scope="module")
def busy(traffic):
    """1,030 events of a chatty producer in the last hour, with no job: stored by the ingest
    service in the site's database directly (through SQS they take minutes on a busy machine,
    and the queue is not what this tests)."""
    _manage(traffic.env, "shell", "-c", BUSY_INGEST % (ACCOUNT_A, BUSY))
    page = traffic.opener.open(f"{traffic.base}/events/?source=chatty", timeout=30).read()
    assert "of 1,000+ events" in page.decode()
    return traffic


def new_page(browser, site, width):  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    sign_in(page, site.base)
    return context, page


def within_width(page, selector: str, width: int) -> bool:
    box = page.locator(selector).bounding_box()
    return (
        box is not None and box["width"] > 0 and 0 <= box["x"] and box["x"] + box["width"] <= width
    )


# ---- a filter that cannot be read --------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_an_invalid_filter_shows_the_error_and_no_rows(browser, traffic, width):  # noqa: F811
    context, page = new_page(browser, traffic, width)
    page.goto(f"{traffic.base}/events/?where=a%3E10")
    assert "where 'a>10'" in page.locator("p.alert").inner_text()
    assert page.locator("#event-body tr").count() == 0
    assert page.locator("#events-empty").is_visible()
    assert "could not be read" in page.locator("#events-empty").inner_text()

    page.goto(f"{traffic.base}/?since=yesterday")
    assert "since: not a date and time" in page.locator("p.alert").inner_text()
    assert page.locator("#jobs-body tr").count() == 0
    assert "could not be read" in page.locator("#jobs-empty").inner_text()
    assert within_width(page, "#jobs-empty", width)

    page.goto(f"{traffic.base}/state-machines/OrderFlow/?window=custom&since=yesterday")
    assert "could not be read" in page.locator("#sm-invalid").inner_text()
    assert page.locator("canvas").count() == 0
    page.goto(f"{traffic.base}/architecture/?window=custom&since=yesterday")
    assert "could not be read" in page.locator("#arch-empty").inner_text()
    assert page.locator("#arch-svg .node").count() == 0
    context.close()


# ---- where paging stops ------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_paging_past_1000_events_says_why_and_how_to_narrow(browser, busy, width):  # noqa: F811
    context, page = new_page(browser, busy, width)
    page.goto(f"{busy.base}/events/?source=chatty&page=21")
    assert page.locator("#event-body tr").count() == 0
    stop = page.locator("#pager-stop")
    assert stop.is_visible() and within_width(page, "#pager-stop", width)
    text = stop.inner_text()
    assert "Paging stops at the newest 1,000 matching events (page 21 is past them)" in text
    assert "narrow the search" in text
    stop.locator("a").click()
    page.wait_for_url(re.compile(r"page=20"))
    assert page.locator("#event-body tr").count() == 50
    assert "951–1,000 of 1,000+" in page.locator("#events-count").inner_text()
    assert "Paging stops" in page.locator("#pager-stop").inner_text()
    context.close()


# ---- a signed-out tab --------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_a_socket_closed_4401_says_signed_out_with_a_link(browser, traffic, width):  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    sockets = []

    def handler(ws):
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/ws/events/"), handler)
    sign_in(page, traffic.base)
    page.goto(f"{traffic.base}/?state_machine=Order")
    page.wait_for_selector("#live-indicator[data-state=live]")
    context.clear_cookies()  # the session is gone (signed out elsewhere, or expired)
    sockets[-1].close()  # the page reconnects, without a session: the server closes 4401
    page.wait_for_selector("#live-indicator[data-state=signed-out]")
    indicator = page.locator("#live-indicator")
    assert indicator.inner_text().replace("\n", " ").strip() == "signed out: sign in again"
    link = indicator.locator("a.live-signin")
    assert within_width(page, "#live-indicator a.live-signin", width)
    tries = len(sockets)
    link.click()
    page.wait_for_url(re.compile(r"/accounts/login/\?next="))
    assert len(sockets) == tries  # it stopped reconnecting
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/\?state_machine=Order$"))  # back where it was
    page.wait_for_selector("#live-indicator[data-state=live]")
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_an_api_403_says_signed_out_not_stale(browser, traffic, width):  # noqa: F811
    context, page = new_page(browser, traffic, width)
    page.goto(f"{traffic.base}/")
    page.wait_for_selector("#live-indicator[data-state=live]")
    context.clear_cookies()  # the open socket stays; the next /api/jobs read answers 403
    traffic.send(job(ACCOUNT_A, "OrderFlow", f"late-{uuid.uuid4().hex[:6]}", datetime.now(UTC)))
    page.wait_for_selector("#live-indicator[data-state=signed-out]")
    assert "sign in again" in page.locator("#live-indicator a.live-signin").inner_text()
    assert within_width(page, "#live-indicator a.live-signin", width)
    context.close()


# ---- the state machine page --------------------------------------------------------------------


def chart_of(page, canvas_id: str) -> dict:
    return page.evaluate(
        "(id) => { const c = Chart.getChart(document.getElementById(id));"
        " return c ? {type: c.config.type, labels: c.data.datasets.map(d => d.label),"
        " data: c.data.datasets.map(d => d.data)} : null; }",
        canvas_id,
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_the_state_machine_page_charts_failure_rate_and_p99_in_the_axes_units(
    browser,
    traffic,
    width,  # noqa: F811
):
    context, page = new_page(browser, traffic, width)
    page.goto(f"{traffic.base}/state-machines/OrderFlow/?window=1h")
    data = json.loads(page.locator("#sm-data").text_content())
    api = traffic.api(
        f"/api/state-machines/OrderFlow/metrics?bucket={data['bucket']}"
        f"&since={quote(data['buckets'][0]['start'])}&until={quote(data['buckets'][-1]['end'])}"
    )
    rate = chart_of(page, "chart-failure-rate")
    assert rate["type"] == "line"
    want = [None if b["failure_rate"] is None else round(b["failure_rate"] * 100, 1)
            for b in api["buckets"]]  # fmt: skip
    assert rate["data"][0] == want and any(want)
    durations = chart_of(page, "chart-durations")
    assert durations["labels"] == ["p50", "p95", "p99"]
    assert durations["data"][2] == [b["p99_ms"] for b in api["buckets"]]
    human = page.evaluate("(ms) => window.edobs.humanMs(ms)", api["total"]["p99_ms"])
    assert page.locator('[data-total="p99_ms"]').inner_text() == human  # as the axis says it
    assert re.fullmatch(r"\d+(\.\d)? (ms|s)", human)
    assert page.locator('[data-total="failure_pct"]').inner_text().endswith(" %")
    assert within_width(page, "#sm-totals", width)
    context.close()


def bar_point(page, dataset: int) -> dict:
    """The page coordinates of the middle of the first non-empty bar of a dataset."""
    return page.evaluate(
        """(n) => {
          const canvas = document.getElementById('chart-counts'), chart = Chart.getChart(canvas);
          const box = canvas.getBoundingClientRect(), meta = chart.getDatasetMeta(n);
          const i = chart.data.datasets[n].data.findIndex((v) => v > 0);
          const bar = meta.data[i], props = bar.getProps(['x', 'y', 'base'], true);
          return {i, x: box.left + props.x, y: box.top + (props.y + props.base) / 2};
        }""",
        dataset,
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_a_bar_opens_the_jobs_of_its_bucket(browser, traffic, width):  # noqa: F811
    context, page = new_page(browser, traffic, width)
    url = f"{traffic.base}/state-machines/OrderFlow/?window=1h"
    page.goto(url)
    data = json.loads(page.locator("#sm-data").text_content())
    page.locator("#chart-counts").scroll_into_view_if_needed()
    failed = bar_point(page, 1)
    page.mouse.click(failed["x"], failed["y"])
    page.wait_for_url(re.compile(r"/\?state_machine=OrderFlow&"))
    query = parse_qs(urlsplit(page.url).query)
    bucket = data["buckets"][failed["i"]]
    assert query["since"] == [bucket["start"][:19]] and query["until"] == [bucket["end"][:19]]
    assert set(query["status"]) == {"FAILED", "TIMED_OUT", "ABORTED"}
    badges = page.locator("#jobs-body td.status .badge:not(.badge-stuck)").all_inner_texts()
    assert len(badges) == bucket["failed"] and set(badges) <= {"FAILED", "TIMED_OUT"}

    page.goto(url)
    page.locator("#chart-counts").scroll_into_view_if_needed()
    succeeded = bar_point(page, 0)
    page.mouse.click(succeeded["x"], succeeded["y"])
    page.wait_for_url(re.compile(r"/\?state_machine=OrderFlow&"))
    assert "status" not in parse_qs(urlsplit(page.url).query)
    assert page.locator("#jobs-body tr").count() >= data["buckets"][succeeded["i"]]["succeeded"]
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_state_machine_page_refreshes_itself_with_a_live_indicator(
    browser,
    traffic,
    width,  # noqa: F811
):
    context, page = new_page(browser, traffic, width)
    page.goto(f"{traffic.base}/state-machines/OrderFlow/?window=1h")
    page.wait_for_selector("#live-indicator[data-state=live]")
    before = int(page.locator('[data-total="failed"]').inner_text())
    rows = page.locator("#buckets-body tr").count()
    started = time.monotonic()
    now = datetime.now(UTC).replace(microsecond=0)
    traffic.send(job(ACCOUNT_A, "OrderFlow", f"fresh-fail-{width}", now - timedelta(seconds=2),
                     ms=800, error="Payment.Declined"))  # fmt: skip
    # Delivery through SQS and the consumer, the socket's push, a 0.5 s debounce and one API
    # read: no fixed wait; the deadline is TIMEOUT_MS like every wait here, which is under the
    # page's 30 s poll, so passing shows the push refreshed it.
    page.wait_for_function(
        "(n) => Number(document.querySelector('[data-total=\"failed\"]').textContent) > n",
        arg=before, timeout=TIMEOUT_MS,
    )  # fmt: skip
    took = time.monotonic() - started
    assert int(page.locator('[data-total="failed"]').inner_text()) == before + 1
    assert page.locator("#buckets-body tr").count() >= rows
    assert page.locator("#live-indicator").get_attribute("data-state") == "live"
    assert took < TIMEOUT_MS / 1000 < REFRESH_POLL_S
    context.close()


# ---- the architecture --------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_function_nodes_show_their_failure_rate(browser, traffic, width):  # noqa: F811
    context, page = new_page(browser, traffic, width)
    page.goto(f"{traffic.base}/architecture/?window=1h&state_machine=PayFlow")
    page.wait_for_selector("#arch-svg .node")
    charge = page.locator('#arch-svg .node[data-id="fn:chargeFn"] .node-failure')
    assert charge.text_content() == "25% failed (1 of 4)"
    assert "failing" in charge.get_attribute("class")
    ship = page.locator('#arch-svg .node[data-id="fn:shipFn"] .node-failure')
    assert ship.text_content() == "0% failed" and "failing" not in ship.get_attribute("class")
    assert page.locator('#arch-svg .node[data-id^="event:"] .node-failure').count() == 0
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_comparing_with_an_empty_window_says_there_is_nothing_to_compare(
    browser,
    traffic,
    width,  # noqa: F811
):
    context, page = new_page(browser, traffic, width)
    empty = datetime.now(UTC) - timedelta(days=3)
    base = {"base_since": empty.strftime("%Y-%m-%dT%H:%M"),
            "base_until": (empty + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")}  # fmt: skip
    page.goto(f"{traffic.base}/architecture/?window=1h&compare=custom"
              f"&base_since={base['base_since']}&base_until={base['base_until']}")  # fmt: skip
    page.wait_for_selector("#arch-svg .node")
    note = page.locator("#diff-not-comparable")
    assert note.is_visible() and "nothing to compare with" in note.inner_text()
    assert within_width(page, "#diff-not-comparable", width)
    assert page.locator("#arch-svg .node.added").count() == 0
    assert page.locator("#diff-legend").count() == 0
    context.close()

"""The fleet pages in headless Chromium against a real server (daphne, the consumer, moto, Redis;
the `site` and `browser` of test_browser, one of each for this module).

Traffic: two accounts; OrderFlow runs sub-second jobs whose Lambdas stamp milliseconds, two
fail with different errors and one hangs (stuck); ShipFlow runs in the other account.
Screenshots go to docs/screenshots/ with EDOBS_SCREENSHOTS=1, else to a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from tests.dashboards.test_browser import (  # noqa: F401  (the fixtures are used by name)
    DOCS_SHOTS,
    PASSWORD,
    TIMEOUT_MS,
    USER,
    browser,
    sign_in,
    site,
    wait_for,
)

SCREENSHOTS = os.environ.get("EDOBS_SCREENSHOTS") == "1"  # renew docs/screenshots/
pytestmark = pytest.mark.slow
ACCOUNT_A, ACCOUNT_B = "123456789012", "210987654321"
STATUS_TYPE = "Step Functions Execution Status Change"


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _envelope(account, when, detail, *, source="shop", detail_type="step") -> dict:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
        "account": account, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-east-1",
        "resources": [], "detail": detail,
    }  # fmt: skip


def _arn(account, machine, name) -> str:
    return f"arn:aws:states:us-east-1:{account}:execution:{machine}:{name}"


def status(account, machine, name, state, start, stop=None, error=None) -> dict:
    detail = {
        "executionArn": _arn(account, machine, name), "name": name, "status": state,
        "startDate": _ms(start), "stopDate": _ms(stop) if stop else None, "error": error,
        "cause": f"{error} in the payment step" if error else None,
    }  # fmt: skip
    return _envelope(account, stop or start, detail, source="aws.states", detail_type=STATUS_TYPE)


def lambda_event(account, machine, name, fn, when, detail_type, **fields) -> dict:
    detail = {"execution": _arn(account, machine, name), **fields,
              "meta": {"fn": fn, "emittedAt": _ms(when)}}  # fmt: skip
    return _envelope(account, when, detail, detail_type=detail_type)


def job(account, machine, name, start, *, ms=None, error=None, note="ok") -> list[dict]:
    """A job: RUNNING, three Lambda events a few hundred ms apart, then its end (none: hangs)."""
    out = [status(account, machine, name, "RUNNING", start)]
    steps = [("reserveStockFn", "stock.reserved"), ("chargeCardFn", "payment.charged"),
             ("shipFn", "order.shipped")]  # fmt: skip
    for n, (fn, dtype) in enumerate(steps):
        at = start + timedelta(milliseconds=60 + 110 * n)
        out.append(lambda_event(account, machine, name, fn, at, dtype, orderId=1000 + n, note=note))
    if ms is not None:
        stop = start + timedelta(milliseconds=ms)
        out.append(status(account, machine, name, "FAILED" if error else "SUCCEEDED", start, stop,
                          error))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def fleet(site):  # noqa: F811
    now = datetime.now(UTC).replace(microsecond=0)
    envelopes = []
    for n in range(6):
        envelopes += job(ACCOUNT_A, "OrderFlow", f"order-{n}", now - timedelta(minutes=50 - n),
                         ms=420 + 40 * n)  # fmt: skip
    envelopes += job(ACCOUNT_A, "OrderFlow", "order-declined", now - timedelta(minutes=30),
                     ms=610, error="Payment.Declined", note="注文 declined 😀")  # fmt: skip
    envelopes += job(ACCOUNT_A, "OrderFlow", "order-timeout", now - timedelta(minutes=25),
                     ms=900, error="States.Timeout")  # fmt: skip
    envelopes += job(ACCOUNT_A, "OrderFlow", "order-hung", now - timedelta(minutes=12))
    for n in range(3):
        envelopes += job(ACCOUNT_B, "ShipFlow", f"ship-{n}", now - timedelta(minutes=40 - n),
                         ms=700)  # fmt: skip
    site.send(envelopes)
    wait_for(
        lambda: len(site.api("/api/events?limit=200")["results"]) >= len(envelopes),
        60, "the fleet's events in the API",
    )  # fmt: skip
    site.fleet_events = len(envelopes)
    return site


@pytest.fixture
def page(browser, fleet):  # noqa: F811
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    sign_in(page, fleet.base)
    yield page
    context.close()


def row_order(page) -> list[str]:
    return page.eval_on_selector_all("#jobs-body tr", "rows => rows.map(r => r.dataset.jobId)")


def focused_job(page) -> str | None:
    return page.evaluate(
        "(() => { const r = document.activeElement && document.activeElement.closest('tr');"
        " return r ? r.dataset.jobId : document.activeElement.tagName; })()"
    )


@pytest.mark.skipif(not SCREENSHOTS, reason="EDOBS_SCREENSHOTS=1 renews docs/screenshots/")
def test_it_saves_screenshots_of_the_fleet_pages(page, fleet, tmp_path):
    """Runs first, before the other tests add jobs to the picture."""
    shots = DOCS_SHOTS if os.environ.get("EDOBS_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    for name, url, width in [
        ("home-1440.png", "/", 1440),
        ("state-machine-1440.png", "/state-machines/OrderFlow/?window=1h", 1440),
        ("state-machine-390.png", "/state-machines/OrderFlow/?window=1h", 390),
        ("events-1440.png", "/events/?fn=chargecard", 1440),
    ]:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{fleet.base}{url}")
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)
        page.screenshot(path=str(shots / name), full_page=True)
        assert (shots / name).stat().st_size > 10_000


def test_it_shows_the_stuck_job_with_its_reason(page, fleet):
    hung = f"{ACCOUNT_A}:us-east-1:OrderFlow:order-hung"
    row = page.locator(f'#jobs-body tr[data-job-id="{hung}"]')
    assert row.locator(".badge-stuck").is_visible()
    assert re.fullmatch(
        r"running 1\d min, [\d.]+x the p99 of \d+ ms", row.locator(".stuck-reason").inner_text()
    )
    page.check("input[name=stuck]")
    page.click("#job-filters button[type=submit]")
    page.wait_for_url(re.compile(r"stuck=1"))
    assert row_order(page) == [hung]


def test_it_draws_a_sparkline_per_state_machine(page, fleet):
    cards = page.locator(".sm-card")
    assert sorted(cards.evaluate_all("cs => cs.map(c => c.dataset.stateMachine)")) == [
        "OrderFlow",
        "ShipFlow",
    ]
    drawn = page.evaluate(
        "[...document.querySelectorAll('.sm-card canvas')].map(c => Chart.getChart(c))"
        ".map(chart => chart && chart.data.datasets.map(d => d.data.reduce((a, b) => a + b, 0)))"
    )
    api = fleet.api("/api/state-machines/OrderFlow/metrics?bucket=1h&since="
                    + quote((datetime.now(UTC) - timedelta(hours=2)).isoformat()))  # fmt: skip
    order_flow = cards.evaluate_all("cs => cs.map(c => c.dataset.stateMachine)").index("OrderFlow")
    assert drawn[order_flow] == [api["total"]["started"], api["total"]["failed"]] == [9, 2]
    page.click('.sm-card[data-state-machine="OrderFlow"]')
    page.wait_for_url(re.compile(r"/state-machines/OrderFlow/$"))


def test_it_keeps_the_order_and_focus_while_jobs_change_and_announces_new_ones(page, fleet):
    page.wait_for_selector("#live-indicator[data-state=live]")
    before = row_order(page)
    target = before[2]
    page.focus(f'#jobs-body tr[data-job-id="{target}"] td.name a')
    hung = f"{ACCOUNT_A}:us-east-1:OrderFlow:order-hung"
    cell = f'#jobs-body tr[data-job-id="{hung}"] td.events'
    events_before = int(page.locator(cell).inner_text())
    for n in range(3):  # an update of an old job (it would jump to the top), then a new job
        now = datetime.now(UTC)
        fleet.send(
            [lambda_event(ACCOUNT_A, "OrderFlow", "order-hung", "retryFn", now, "retry.tried")]
        )
        fleet.send(job(ACCOUNT_A, "OrderFlow", f"fresh-{uuid.uuid4().hex[:6]}", now, ms=300))
        page.wait_for_function(
            f"() => document.getElementById('new-jobs-text').textContent"
            f".startsWith('{n + 1} new job')"
        )
        assert row_order(page) == before, "rows moved"
        assert focused_job(page) == target, "focus left the row"
    page.wait_for_function(
        "([cell, want]) => document.querySelector(cell).textContent === want",
        arg=[cell, str(events_before + 3)],
    )
    assert row_order(page) == before and focused_job(page) == target
    assert page.locator("#new-jobs").get_attribute("aria-live") == "polite"
    page.click("#new-jobs-show")
    page.wait_for_load_state("load")
    fresh = [job_id for job_id in row_order(page) if ":fresh-" in job_id]
    assert len(fresh) == 3 and row_order(page)[:4].count(hung) == 1  # the newest activity first


def test_it_turns_stale_when_the_api_fails(page, fleet):
    page.wait_for_selector("#live-indicator[data-state=live]")
    page.route("**/api/jobs?**", lambda route: route.fulfill(
        status=500, content_type="application/json", body='{"error": "boom"}'))  # fmt: skip
    fleet.send([lambda_event(ACCOUNT_A, "OrderFlow", "order-hung", "retryFn",
                             datetime.now(UTC), "retry.tried")])  # fmt: skip
    page.wait_for_selector("#live-indicator[data-state=stale]")
    assert "stale" in page.locator("#live-indicator .live-text").inner_text()
    page.unroute("**/api/jobs?**")
    fleet.send([lambda_event(ACCOUNT_A, "OrderFlow", "order-hung", "retryFn",
                             datetime.now(UTC), "retry.tried")])  # fmt: skip
    page.wait_for_selector("#live-indicator[data-state=live]")


def test_it_says_disconnected_when_the_socket_closes(browser, fleet):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    sockets, refuse = [], []

    def handler(ws):
        if refuse:
            ws.close()
            return
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/ws/events/"), handler)
    page.goto(f"{fleet.base}/accounts/login/")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#live-indicator[data-state=live]")
    refuse.append(True)
    sockets[-1].close()
    page.wait_for_selector("#live-indicator[data-state=disconnected]")
    assert page.locator("#live-indicator .live-text").inner_text().startswith("disconnected")
    refuse.clear()
    page.wait_for_selector("#live-indicator[data-state=live]", timeout=40_000)  # backoff
    context.close()


def test_it_charts_a_state_machine_with_a_table_of_the_same_numbers(page, fleet):
    page.goto(f"{fleet.base}/state-machines/OrderFlow/?window=1h")
    charts = page.evaluate(
        "['chart-counts', 'chart-durations', 'chart-errors'].map(id => {"
        " const c = Chart.getChart(document.getElementById(id));"
        " return c ? c.config.type : null; })"
    )
    assert charts == ["bar", "line", "bar"]
    data = json.loads(page.locator("#sm-data").text_content())
    api = fleet.api(
        f"/api/state-machines/OrderFlow/metrics?bucket={data['bucket']}"
        f"&since={quote(data['buckets'][0]['start'])}&until={quote(data['buckets'][-1]['end'])}"
    )
    table = page.eval_on_selector_all(
        "#buckets-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    keys = ("started", "succeeded", "failed", "p50_ms", "p95_ms", "p99_ms")
    want = [["—" if b[k] is None else str(b[k]) for k in keys] for b in api["buckets"]]
    assert [row[1:7] for row in table] == want
    rates = [row[7] for row in table]
    assert rates == [
        "—" if b["failure_rate"] is None else f"{b['failure_rate'] * 100:.0f} %"
        for b in api["buckets"]
    ]  # every bucket here is 0 % or 100 % failed
    errors = page.eval_on_selector_all(
        "#errors-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert errors == [[e["error"], str(e["count"])] for e in api["total"]["errors"]]
    assert {e[0] for e in errors} == {"Payment.Declined", "States.Timeout"}
    page.click("#failed-jobs a >> text=order-declined")
    page.wait_for_url(re.compile(r"/jobs/.*order-declined/$"))


def test_it_finds_events_by_function_and_by_emoji(page, fleet):
    page.goto(f"{fleet.base}/events/")
    page.fill("input[name=fn]", "CHARGECARD")
    page.click("#event-filters button[type=submit]")
    fns = page.locator("#event-body td.fn").all_inner_texts()
    assert fns and set(fns) == {"chargeCardFn"}
    page.goto(f"{fleet.base}/events/")
    page.fill("input[name=q]", "😀")
    page.click("#event-filters button[type=submit]")
    assert page.locator("#events-count").inner_text().startswith("1–3 of 3 events")
    page.locator("#event-body button.show-json").first.click()
    shown = page.locator("tr.json-row pre").first
    page.wait_for_function(
        "() => document.querySelector('tr.json-row pre').textContent.includes('😀')"
    )
    assert json.loads(shown.text_content())["detail"]["note"] == "注文 declined 😀"


def test_it_pages_events_next_and_previous(page, fleet):
    page.goto(f"{fleet.base}/events/")
    total = len(fleet.api("/api/events?limit=500")["results"])
    assert total > 50
    assert page.locator("#events-count").inner_text().startswith(f"1–50 of {total} events")
    first = page.locator("#event-body tr.event-row").first.get_attribute("data-event-id")
    page.click("a[rel=next]")
    page.wait_for_url(re.compile(r"page=2"))
    assert page.locator("#events-count").inner_text().startswith(f"51–{min(100, total)} of {total}")
    assert page.locator("#event-body tr.event-row").count() == min(100, total) - 50
    page.click("a[rel=prev]")
    page.wait_for_url(re.compile(r"page=1"))
    assert page.locator("#event-body tr.event-row").first.get_attribute("data-event-id") == first

"""The schema pages in headless Chromium against a real server (daphne, the consumer, moto,
Redis; tests/dashboards/test_browser.py's `site`): drift with its first-event link, hostile
field paths shown as text, the shared quick ranges setting the compared windows. Screenshots go
to docs/screenshots/ with EDOBS_SCREENSHOTS=1."""

# ruff: noqa: F811  (the fixtures `site` and `browser` are imported, then used as arguments)

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest

from tests.dashboards.test_browser import (  # noqa: F401  (module-scoped fixtures)
    DOCS_SHOTS,
    TIMEOUT_MS,
    XSS_IMG,
    XSS_SCRIPT,
    assert_no_script_ran,
    browser,
    sign_in,
    site,
    wait_for,
)
from tests.events.drift_traffic import drift_traffic

pytestmark = pytest.mark.slow
# The elements reaching past the viewport's right edge, to say what made a page too wide.
WIDE_ELEMENTS = """[...document.querySelectorAll('body *')]
  .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 8)
  .map(el => `${el.tagName}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`)"""


@pytest.fixture(scope="module")
def drifted(site):
    traffic = drift_traffic()
    hostile = dict(traffic.current[-1], id=str(uuid.uuid4()), source=XSS_IMG)
    hostile["detail-type"] = XSS_SCRIPT
    hostile["detail"] = {XSS_IMG: {XSS_SCRIPT: 1}, "ok": True}
    site.send([*traffic.envelopes, hostile])
    window = {"window": "custom", "since": traffic.since.isoformat(),
              "until": traffic.until.isoformat()}  # fmt: skip
    site.query = urlencode(window)
    wanted = len(traffic.envelopes) + 1
    wait_for(
        lambda: sum(t["events"] + t["base_events"]
                    for t in site.api(f"/api/schemas?{urlencode(window)}")["types"]) >= wanted,
        60, "the drift traffic in the schema API",
    )  # fmt: skip
    return site, traffic


def _page(browser, base: str, width: int):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    sign_in(page, base)
    return context, page


def test_the_schema_page_shows_drift_with_first_event_links(browser, drifted, tmp_path):
    site, traffic = drifted
    shots = DOCS_SHOTS if os.environ.get("EDOBS_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    context, page = _page(browser, site.base, 1440)
    try:
        page.goto(f"{site.base}/schemas/?{site.query}")
        row = page.locator('#schemas-table tr[data-source="orders"]')
        assert row.locator(".drift-badge").inner_text() == "3 drifted"
        assert page.locator('#schemas-table tr[data-source="shipping"] .drift-new').count() == 1
        page.screenshot(path=str(shots / "schemas-1440.png"), full_page=True)

        row.locator("a").click()
        page.wait_for_selector("#drift-changed .drift-item")
        changed = page.locator("#drift-changed .drift-item")
        assert changed.locator(".field-path").inner_text() == "orderId"
        assert "number → number, string" in changed.inner_text()
        link = changed.locator("a.first-event")
        first = traffic.first["changed"]
        assert link.inner_text() == first["id"]
        assert link.get_attribute("href").endswith(f"/#span={first['id']}")
        assert page.locator("#drift-count").inner_text() == "3"
        bar = page.locator('#fields-table tr[data-path="coupon"] .presence-bar')
        assert bar.evaluate("el => el.style.width") == "80%"
        page.screenshot(path=str(shots / "schema-drift-1440.png"), full_page=True)

        link.click()
        page.wait_for_url(f"**/jobs/**#span={first['id']}")
        assert page.locator("#job-name").inner_text() in first["detail"]["execution"]
    finally:
        context.close()


def test_the_schema_page_fits_a_phone(browser, drifted, tmp_path):
    site, _ = drifted
    shots = DOCS_SHOTS if os.environ.get("EDOBS_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    context, page = _page(browser, site.base, 390)
    try:
        page.goto(f"{site.base}/schemas/orders/OrderPlaced/?{site.query}")
        page.wait_for_selector("#drift-changed .drift-item")
        overflow = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate(WIDE_ELEMENTS)
        assert overflow <= 390, f"the page is {overflow} px wide: {wide}"
        # "Since (UTC)" reads on one line (its parts were stacked, one per line, in the label)
        above = page.eval_on_selector_all(
            "label.schema-custom",
            "labels => labels.map(l => [l.querySelector('input').getBoundingClientRect().top"
            " - l.getBoundingClientRect().top, parseFloat(getComputedStyle(l).fontSize)])",
        )
        assert above and all(px < 2.5 * font for px, font in above), above
        page.screenshot(path=str(shots / "schema-drift-390.png"), full_page=True)
    finally:
        context.close()


def test_hostile_paths_and_types_are_text_never_markup(browser, drifted):
    site, _ = drifted
    context, page = _page(browser, site.base, 1440)
    try:
        page.goto(f"{site.base}/schemas/?{site.query}")
        assert XSS_IMG in page.locator("#schemas-table").inner_text()
        page.goto(
            f"{site.base}/schemas/{quote(XSS_IMG, safe='')}/{quote(XSS_SCRIPT)}/?{site.query}"
        )
        paths = page.locator("#fields-table .field-path").all_inner_texts()
        assert f"{XSS_IMG}.{XSS_SCRIPT}" in paths
        assert page.locator("#schema-title").inner_text() == XSS_SCRIPT
        assert_no_script_ran(page)
        assert page.locator("main img").count() == 0
    finally:
        context.close()


def test_the_job_page_replays_after_a_dry_run(browser, drifted):
    site, traffic = drifted
    first = traffic.first["changed"]
    job = f"123456789012:us-east-1:OrderMachine:{first['detail']['execution'].rsplit(':', 1)[1]}"
    context, page = _page(browser, site.base, 1440)
    try:
        page.goto(f"{site.base}/jobs/{job}/")
        assert page.locator("#replay-send").is_disabled()
        page.click("#replay-dry")
        page.wait_for_function(
            "() => document.getElementById('replay-result').textContent.startsWith('Would')"
        )
        assert "Would put 1 events on default" in page.locator("#replay-result").inner_text()
        page.click("#replay-send")
        page.wait_for_function(
            "() => document.getElementById('replay-result').textContent.startsWith('Sent')"
        )
        result = page.locator("#replay-result")
        assert result.inner_text().startswith("Sent 1, failed 0")
        href = result.locator("a").get_attribute("href")
        assert href.startswith(f"/jobs/{job.replace(':', '%3A')}-replay-")
    finally:
        context.close()


def _compared(page) -> list[datetime]:
    """The windows the page says it compares: since, until, base since, base until."""
    isos = page.eval_on_selector_all(
        "#schema-windows time", "ts => ts.map(t => t.getAttribute('datetime'))"
    )
    return [datetime.fromisoformat(iso).astimezone(UTC) for iso in isos]


@pytest.mark.parametrize("width", [1440, 390])
def test_a_quick_range_goes_into_the_url_and_sets_the_compared_windows(browser, drifted, width):
    site, traffic = drifted
    context, page = _page(browser, site.base, width)
    try:
        page.goto(f"{site.base}/schemas/orders/OrderPlaced/?{site.query}")
        assert _compared(page)[:2] == [traffic.since, traffic.until]  # the custom window

        before = datetime.now(UTC).replace(microsecond=0)
        page.click("#time-picker a[data-window='24h']")
        page.wait_for_url(re.compile(r"\?window=24h$"))
        after = datetime.now(UTC)

        assert parse_qs(urlsplit(page.url).query) == {"window": ["24h"]}
        since, until, base_since, base_until = _compared(page)
        assert before <= until <= after and until - since == timedelta(hours=24)
        assert (base_since, base_until) == (since - timedelta(hours=24), since)
        assert page.input_value("#schema-window") == "24h"
        assert page.get_attribute("#time-picker a[data-window='24h']", "aria-current") == "true"
        counts = re.search(
            r"(\d+) events now · (\d+) in the base window", page.inner_text("h1 + p")
        )
        assert int(counts[1]) >= 2 * len(traffic.base) and counts[2] == "0"  # both hours now
        # the header's and the crumb's links carry the range
        assert (
            page.get_attribute(".nav-links a[href^='/schemas/']", "href") == "/schemas/?window=24h"
        )
        assert page.get_attribute(".crumb a", "href") == "/schemas/?window=24h"

        page.click("#time-picker a[data-window='1h']")
        page.wait_for_url(re.compile(r"\?window=1h$"))
        since, until, base_since, base_until = _compared(page)
        assert until - since == timedelta(hours=1) == base_until - base_since
        assert base_until == since
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        context.close()

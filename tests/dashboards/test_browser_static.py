"""The static files in headless Chromium against a real daphne (test_browser.py's `site`, which
runs `collectstatic` as production does): the architecture page's ELK bundle (1.65 MB) arrives
gzipped at a fraction of its size, and a second visit takes every static file from the cache."""

from __future__ import annotations

import re

import pytest

from tests.dashboards.test_browser import (  # noqa: F401 (module-scoped fixtures)
    PASSWORD,
    TIMEOUT_MS,
    USER,
    browser,
    site,
)

pytestmark = pytest.mark.slow

HASHED = re.compile(r"/static/.+\.[0-9a-f]{12}\.(js|css|svg)$")
# The page's static files as Resource Timing saw them (sizes in bytes; transferSize 0: cache).
# The favicon is left out: Chromium fetches it on its own schedule, after `load` or not at all
# on a second visit (CI once saw it in the first list and not the second).
STATIC_ENTRIES = """() => performance.getEntriesByType("resource")
  .filter((e) => new URL(e.name).pathname.startsWith("/static/"))
  .filter((e) => !new URL(e.name).pathname.includes("/favicon."))
  .map((e) => ({url: e.name, transfer: e.transferSize, encoded: e.encodedBodySize,
                decoded: e.decodedBodySize}))"""


@pytest.fixture
def page(browser, site):  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{site.base}/accounts/login/")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.base}/")
    yield page
    context.close()


def test_the_elk_bundle_arrives_gzipped_then_comes_from_the_cache(page, site):  # noqa: F811
    elk: dict = {}
    page.on("response", lambda r: "elk.bundled" in r.url and elk.update(response=r))
    page.goto(f"{site.base}/architecture/")
    page.wait_for_load_state("load")  # the page's scripts and styles have all arrived

    response = elk["response"]
    assert HASHED.search(response.url), response.url
    headers = response.all_headers()
    assert headers["content-encoding"] in ("gzip", "br")
    assert headers["cache-control"] == "max-age=315360000, public, immutable"
    first = {entry["url"]: entry for entry in page.evaluate(STATIC_ENTRIES)}
    sizes = first[response.url]
    assert sizes["decoded"] > 1_500_000, sizes  # the bundle itself...
    assert 0 < sizes["encoded"] < sizes["decoded"] / 3, sizes  # ...sent at under a third
    assert all(HASHED.search(url) for url in first), sorted(first)

    page.goto(f"{site.base}/architecture/")  # a second visit, same browser
    page.wait_for_load_state("load")
    again = {entry["url"]: entry for entry in page.evaluate(STATIC_ENTRIES)}
    assert set(again) == set(first)
    assert {url: e["transfer"] for url, e in again.items()} == dict.fromkeys(again, 0)

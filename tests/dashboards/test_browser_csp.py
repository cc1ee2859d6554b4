"""The Content-Security-Policy in headless Chromium against a real server (the `site` and
`browser` of test_browser.py): every page, the admin's too, runs its scripts, opens its socket and
draws (ELK, Chart.js) with no violation and no console message, while an inline style the test
adds is refused, which proves the policy is enforced and that every earlier report arrived."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.dashboards import test_browser
from tests.dashboards.test_browser import (
    MACHINE,
    PASSWORD,
    TIMEOUT_MS,
    USER,
    realistic_envelopes,
    wait_for,
)

site, browser = test_browser.site, test_browser.browser
pytestmark = pytest.mark.slow

# Reports of violations and console messages, collected from before any page script runs.
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push({directive: e.violatedDirective, blocked: e.blockedURI,
                     source: e.sourceFile + ":" + e.lineNumber, target: e.target && e.target.id});
});
"""
# A style attribute set after the page's scripts ran: refused, and its report comes after
# every report of the page's own (reports are queued in order).
CANARY = """() => {
  const canary = document.createElement("div");
  canary.id = "csp-canary";
  canary.setAttribute("style", "color: red");
  document.body.appendChild(canary);
}"""
READY = "document.documentElement.dataset.ready === '1'"


@pytest.fixture(scope="module")
def jobs(site):  # noqa: F811 (site: the fixture of test_browser)
    envelopes = realistic_envelopes()
    site.send(envelopes)
    with_job = sum(1 for envelope in envelopes if envelope["detail"])
    wait_for(
        lambda: sum(j["event_count"] for j in site.api("/api/jobs?limit=100")["results"])
        >= with_job, 60, "the sample jobs",
    )  # fmt: skip
    return [job["id"] for job in site.api(f"/api/jobs?state_machine={MACHINE}")["results"]]


@pytest.fixture
def context(browser, site):  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(WATCH)
    yield context
    context.close()


def visit(page, url: str, ready: str) -> list:
    """Open `url`, wait for the page's marker, then for the canary's report; the page's own
    violations and console messages (a 404 page's own status line aside)."""
    page.goto("about:blank")  # the last page's goodbyes (sockets closing) are logged here
    messages: list[str] = []

    def listen(message) -> None:
        if message.location.get("url") == url and "404" in message.text:
            return  # the document's own status: the 404 page is meant to be one
        messages.append(f"{message.type}: {message.text}")

    page.on("console", listen)
    try:
        response = page.goto(url)
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, url
        page.wait_for_function(f"() => {ready}")
        before = len(messages)
        page.evaluate(CANARY)
        page.wait_for_function("() => window.__csp.some((r) => r.target === 'csp-canary')")
        reports = page.evaluate("window.__csp.filter((r) => r.target !== 'csp-canary')")
    finally:
        page.remove_listener("console", listen)
    canary = [m for m in messages[before:] if "inline style" in m]
    assert canary, f"{url}: the canary's style was not refused: {messages}"
    return reports + messages[:before] + [m for m in messages[before:] if m not in canary]


def test_every_page_runs_under_the_policy_without_a_violation(context, site, jobs):  # noqa: F811
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    base = site.base
    assert visit(page, f"{base}/accounts/login/", READY) == []
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    a, b = jobs[0], jobs[1]
    # A rule to open the alert pages with, made through their own form (a name that does not
    # resolve here is left to delivery's check).
    page.goto(f"{base}/alerts/new/")
    page.fill("#id_name", "csp rule")
    page.fill("#id_webhook_url", "https://hooks.example.com/edobs")
    page.click("#rule-save")
    page.wait_for_url(f"{base}/alerts/")
    rule = page.locator("#alert-rules tbody a", has_text="csp rule").get_attribute("href")
    page.goto(f"{base}/admin/events/event/")
    event = page.locator("#result_list tbody th a").first.get_attribute("href")
    live = "document.querySelector('#live-indicator[data-state=live]')"
    pages = {
        "/": f"{READY} && {live}",
        f"/jobs/{a}/": f"{READY} && {live} && document.querySelector('#timeline-svg .span-g')",
        f"/jobs/compare/?a={a}&b={b}": f"{READY} && document.getElementById('compare-steps')",
        "/architecture/?window=all": f"{READY} && document.querySelector('#arch-svg .node')",
        "/events/": READY,
        "/failures/": READY,
        f"/state-machines/{MACHINE}/": f"{READY} && document.querySelector('canvas')",
        "/schemas/": READY,
        "/schemas/project/getUserProfile/": f"{READY} && "
        "document.querySelector('.presence-bar').style.width !== ''",
        "/alerts/": f"{READY} && document.getElementById('alert-rules')",
        "/alerts/new/": f"{READY} && document.getElementById('id_webhook_url')",
        rule: f"{READY} && document.getElementById('id_webhook_url').value !== ''",
        "/no-such-page/": READY,
        "/admin/": "document.documentElement.dataset.theme",
        "/admin/auth/user/1/change/": "document.querySelector('.datetimeshortcuts')",
        # The envelope in a <pre> wrapped by a class (it was a style attribute), and a
        # filter_horizontal picker with an inline.
        event: "document.querySelector('.readonly pre') && getComputedStyle("
        "document.querySelector('.readonly pre')).whiteSpace === 'pre-wrap'",
        "/admin/events/team/add/": "document.getElementById('id_members_from')",
    }
    found = {url: visit(page, f"{base}{url}", ready) for url, ready in pages.items()}
    assert found == {url: [] for url in pages}, json.dumps(found, indent=1)


def test_the_header_forbids_framing_plugins_and_foreign_bases(site):  # noqa: F811
    with urllib.request.urlopen(f"{site.base}/accounts/login/", timeout=10) as response:
        policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"

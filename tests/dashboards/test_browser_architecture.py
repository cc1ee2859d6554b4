"""The architecture page in headless Chromium, measured: the graph is legible (text of 12 px or
more at 1:1, no overlaps, each label on its own edge, no text outside its node), zooms and pans,
opens a node's jobs or events, draws orphans apart, works at 390 px, and draws the diff.

One server and one browser for the module (tests/dashboards/test_browser.py's `site`). The
traffic is generated in two windows (the last hour and the hour before): two state machines in
two accounts, sub-second Lambdas, a consumer that appears, one that goes away, a Lambda three
times slower, and an event type nothing produces or consumes. Screenshots go to
docs/screenshots/ with EDOBS_SCREENSHOTS=1, else to a temporary folder.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.dashboards.test_browser import (  # noqa: F401 (module-scoped fixtures)
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
from tests.events.flows import ACCOUNT_B, Step, job_envelopes, orphan_envelope

SCREENSHOTS = os.environ.get("EDOBS_SCREENSHOTS") == "1"  # renew docs/screenshots/
pytestmark = pytest.mark.slow

NOW_PAGE = "/architecture/?window=1h"
DIFF_PAGE = "/architecture/?window=1h&compare=previous"
ORPHAN = "event:shop.monitor/heartbeat"


def order_steps(job: int, *, before: bool) -> list[Step]:
    price = 180 + 7 * job
    if before:
        return [
            Step("priceFn", "orderPlaced", "orderPriced", price),
            Step("legacyArchiveFn", "orderPriced", "orderArchived", 95),
            Step("shipFn", "orderPriced", "orderShipped", 310 + job),
        ]
    return [
        Step("priceFn", "orderPlaced", "orderPriced", 3 * price),
        Step("shipFn", "orderPriced", "orderShipped", 330 + job),
        Step("auditFn", "orderPriced", "orderAudited", 120 + job),
        Step("notifyCustomerFn", "orderShipped", "customerNotified", 240),
    ]


def report_steps(job: int) -> list[Step]:
    return [
        Step("renderReportFn", "reportRequested", "reportRendered", 640 + 11 * job),
        Step("mailReportFn", "reportRendered", "reportMailed", 85),
    ]


def traffic(now: datetime) -> list[dict]:
    envelopes = []
    for job in range(3):
        for before in (True, False):
            start = now - timedelta(minutes=(80 if before else 20) - 6 * job)
            envelopes += job_envelopes(
                machine="OrderMachine", start=start, trigger="orderPlaced",
                steps=order_steps(job, before=before),
            )  # fmt: skip
            envelopes += job_envelopes(
                machine="ReportMachine", account=ACCOUNT_B, source="reports",
                start=start + timedelta(seconds=30), trigger="reportRequested",
                steps=report_steps(job),
            )  # fmt: skip
        envelopes.append(
            orphan_envelope(
                detail_type="heartbeat", source="shop.monitor",
                at=now - timedelta(minutes=10 + job),
            )
        )  # fmt: skip
    return envelopes


@pytest.fixture(scope="module")
def arch(site):  # noqa: F811
    site.send(traffic(datetime.now(UTC)))
    since = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def stored():
        ids = {node["id"] for node in site.api(f"/api/architecture?since={since}")["nodes"]}
        wanted = {"fn:auditFn", "fn:legacyArchiveFn", "fn:mailReportFn", ORPHAN}
        return wanted <= ids and len(site.api("/api/jobs")["results"]) >= 12

    wait_for(stored, 60, "the generated traffic in the API")
    return site


@pytest.fixture(scope="module")
def logged_in(browser, arch):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, arch.base)
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def open_page(browser, arch, logged_in):  # noqa: F811
    contexts = []

    def open_(url: str, width: int = 1440, height: int = 900):
        context = browser.new_context(
            storage_state=logged_in, viewport={"width": width, "height": height}
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{arch.base}{url}")
        page.wait_for_selector("#arch-svg .node")
        page.evaluate("window.edobsArchitecture.ready")
        return page

    yield open_
    for context in contexts:
        context.close()


# --- measurements, in the page ------------------------------------------------------------------

SMALLEST_TEXT = """() => {
  const svg = document.getElementById('arch-svg'), k = svg.getScreenCTM().a;
  return Math.min(...[...svg.querySelectorAll('text')].map(
    (t) => parseFloat(getComputedStyle(t).fontSize) * k));
}"""

BOXES = """(selector) => [...document.querySelectorAll(selector)].map((n) => {
  const b = n.getBBox(), owner = n.closest('[data-id]') || n.closest('[data-edge]');
  return {x: b.x, y: b.y, w: b.width, h: b.height, id: owner.dataset.id || owner.dataset.edge};
})"""

TEXT_OUTSIDE_NODE = """() => {
  const bad = [];
  document.querySelectorAll('#arch-svg .node').forEach((node) => {
    const s = node.querySelector('.node-shape').getBBox();
    node.querySelectorAll('text').forEach((t) => {
      const b = t.getBBox();
      if (b.x < s.x - 0.5 || b.y < s.y - 0.5 || b.x + b.width > s.x + s.width + 0.5
          || b.y + b.height > s.y + s.height + 0.5) bad.push([node.dataset.id, t.textContent]);
    });
  });
  return bad;
}"""

LABEL_OFF_ITS_EDGE = """() => {
  const far = [];
  document.querySelectorAll('#arch-svg .edge').forEach((edge) => {
    const key = edge.dataset.source + ' → ' + edge.dataset.target;
    const label = [...document.querySelectorAll('#arch-svg .edge-label')]
      .find((l) => l.dataset.edge === key);
    const path = edge.querySelector('path'), b = label.querySelector('rect').getBBox();
    const cx = b.x + b.width / 2, cy = b.y + b.height / 2;
    const total = path.getTotalLength();
    let best = Infinity;
    for (let at = 0; at <= total; at += 1) {
      const p = path.getPointAtLength(at);
      best = Math.min(best, Math.hypot(p.x - cx, p.y - cy));
    }
    if (best > 3) far.push([key, best]);
  });
  return far;
}"""


def overlaps(boxes: list[dict]) -> list[tuple[str, str]]:
    found = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
                    and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]):  # fmt: skip
                found.append((a["id"], b["id"]))
    return found


def view_box(page) -> list[float]:
    return [float(v) for v in page.get_attribute("#arch-svg", "viewBox").split()]


# --- the tests, screenshots first (later tests add hostile events) -------------------------------


@pytest.mark.skipif(not SCREENSHOTS, reason="EDOBS_SCREENSHOTS=1 renews docs/screenshots/")
def test_it_saves_screenshots_of_the_graph_and_the_diff(open_page, tmp_path):
    shots = DOCS_SHOTS if os.environ.get("EDOBS_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    for name, url in (("architecture", NOW_PAGE), ("architecture-diff", DIFF_PAGE)):
        for width, height in ((1440, 1000), (390, 844)):
            page = open_page(url, width, height)
            path = shots / f"{name}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            assert path.stat().st_size > 10_000


@pytest.mark.parametrize("width", [1440, 390])
def test_every_text_is_at_least_12_px_at_1_to_1(open_page, width):
    """The default zoom on a wide screen; a phone opens on the whole graph, fitted (issue 27),
    and "1:1" shows it at this size."""
    page = open_page(NOW_PAGE, width, 844)
    if width == 390:
        page.click("[data-zoom=reset]")

    assert page.evaluate(SMALLEST_TEXT) >= 12


def test_no_two_nodes_overlap(open_page):
    page = open_page(DIFF_PAGE)

    boxes = page.evaluate(BOXES, "#arch-svg .node .node-shape")

    assert len(boxes) >= 15
    assert overlaps(boxes) == []


def test_no_text_leaves_its_node(open_page):
    page = open_page(DIFF_PAGE)

    assert page.evaluate(TEXT_OUTSIDE_NODE) == []


def test_no_label_overlaps_another_label_or_a_node(open_page):
    page = open_page(DIFF_PAGE)

    labels = page.evaluate(BOXES, "#arch-svg .edge-label rect")
    nodes = page.evaluate(BOXES, "#arch-svg .node .node-shape")

    assert len(labels) == page.locator("#arch-svg .edge").count() >= 15
    assert overlaps(labels) == []
    assert [pair for pair in overlaps(labels + nodes) if pair[0] in {b["id"] for b in labels}
            and pair[1] in {b["id"] for b in nodes}] == []  # fmt: skip


def test_each_edge_label_sits_on_its_own_edge(open_page):
    page = open_page(DIFF_PAGE)

    assert page.evaluate(LABEL_OFF_ITS_EDGE) == []


def test_it_zooms_and_pans_with_buttons_wheel_and_keys(open_page):
    page = open_page(NOW_PAGE)
    start = view_box(page)

    page.click("[data-zoom=in]")
    zoomed = view_box(page)
    assert zoomed[2] == pytest.approx(start[2] / 1.25, rel=0.01)

    page.hover("#arch-viewport")
    page.mouse.wheel(0, 400)
    assert view_box(page)[2] > zoomed[2]  # zoomed out around the pointer

    page.focus("#arch-viewport")
    before = view_box(page)
    page.keyboard.press("ArrowRight")
    assert view_box(page)[0] > before[0] and view_box(page)[2] == before[2]

    box = page.locator("#arch-viewport").bounding_box()
    before = view_box(page)
    page.mouse.move(box["x"] + 200, box["y"] + 150)
    page.mouse.down()
    page.mouse.move(box["x"] + 100, box["y"] + 100, steps=5)
    page.mouse.up()
    assert view_box(page)[0] > before[0] and view_box(page)[1] > before[1]

    page.click("[data-zoom=reset]")
    assert view_box(page)[2:] == start[2:]


def test_a_refresh_redraws_without_resetting_the_zoom(open_page):
    page = open_page(NOW_PAGE)
    page.click("[data-zoom=in]")
    page.click("[data-zoom=in]")
    zoomed = view_box(page)
    page.evaluate("window.__marker = 'same page'")
    page.evaluate("document.querySelector('#arch-svg .node').dataset.old = '1'")

    page.click("#refresh")
    page.wait_for_function("() => !document.querySelector('#arch-svg .node[data-old]')")

    assert view_box(page) == zoomed
    assert page.evaluate("window.__marker") == "same page"


@pytest.mark.parametrize(
    "node,path,query",
    [
        ("sm:OrderMachine", "/", {"state_machine": ["OrderMachine"]}),
        ("fn:priceFn", "/events/", {"fn": ["priceFn"]}),
        (
            "event:shop/orderPlaced",
            "/events/",
            {"source": ["shop"], "detail_type": ["orderPlaced"]},
        ),
    ],
)
def test_clicking_a_node_opens_its_jobs_or_events(open_page, node, path, query):
    page = open_page(NOW_PAGE)

    page.locator(f'#arch-svg .node[data-id="{node}"] .node-link').click()
    page.wait_for_url(lambda url: urlsplit(url).path == path)

    assert parse_qs(urlsplit(page.url).query) == query


def test_a_node_is_reachable_and_opened_with_the_keyboard(open_page):
    page = open_page(NOW_PAGE)
    page.focus("#arch-viewport")

    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('.node')?.dataset.id") == "fn:auditFn":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == "/events/")

    assert parse_qs(urlsplit(page.url).query) == {"fn": ["auditFn"]}


def test_an_orphan_event_type_is_drawn_apart_and_explained(open_page):
    page = open_page(NOW_PAGE)

    orphan = page.locator(f'#arch-svg .orphans .node[data-id="{ORPHAN}"]')

    assert orphan.count() == 1
    assert page.locator(f'#arch-svg .nodes .node[data-id="{ORPHAN}"]').count() == 0
    text = " ".join(orphan.locator("text").all_text_contents())
    assert "seen 3 times; no function consumed it and no producer was inferred" in text
    assert "add the kit's meta to the producer" in text
    graph = page.evaluate(BOXES, "#arch-svg .nodes .node-shape")
    box = page.evaluate(BOXES, f'#arch-svg .orphans [data-id="{ORPHAN}"] .node-shape')[0]
    assert box["y"] > max(node["y"] + node["h"] for node in graph)  # below the whole graph


def test_at_390_px_the_graph_opens_fitted_is_readable_at_1_to_1_and_the_page_does_not_scroll(
    open_page,
):
    """Issue 27: a phone opens on the whole graph, fitted to the screen; "1:1" reads it."""
    page = open_page(NOW_PAGE, 390, 844)

    assert page.locator("#arch-viewport").bounding_box()["height"] >= 300
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    port = page.locator("#arch-viewport").bounding_box()
    whole = page.locator("#arch-svg .arch-root").bounding_box()
    assert port["x"] - 1 <= whole["x"]
    assert whole["x"] + whole["width"] <= port["x"] + port["width"] + 1
    page.click("[data-zoom=reset]")
    assert page.evaluate(SMALLEST_TEXT) >= 12
    node = page.locator("#arch-svg .node-shape").first.bounding_box()
    assert node["height"] >= 40  # at 1:1


def test_the_diff_marks_added_removed_and_moved(open_page):
    page = open_page(DIFF_PAGE)

    added = page.locator('#arch-svg .edge.added[data-target="fn:auditFn"] path')
    removed = page.locator('#arch-svg .edge.removed[data-target="fn:legacyArchiveFn"] path')
    assert added.count() == removed.count() == 1
    colour = added.evaluate("p => getComputedStyle(p).stroke")
    plain = page.locator("#arch-svg .edge:not(.added):not(.removed) path").first
    assert colour != plain.evaluate("p => getComputedStyle(p).stroke")
    assert removed.evaluate("p => getComputedStyle(p).strokeDasharray") not in ("none", "")
    assert plain.evaluate("p => getComputedStyle(p).strokeDasharray") == "none"
    node_text = page.locator('#arch-svg .node.added[data-id="fn:auditFn"]').text_content()
    assert "+ new" in node_text
    assert (
        "− gone"
        in page.locator('#arch-svg .node.removed[data-id="fn:legacyArchiveFn"]').text_content()
    )
    moved = page.locator(
        '#arch-svg .edge-label.moved[data-edge="event:shop/orderPlaced → fn:priceFn"]'
    )
    assert moved.count() == 1 and "→" in moved.text_content() and "p95" in moved.text_content()
    assert page.locator("#diff-legend").is_visible()


def test_a_drift_badge_links_to_the_schema_and_is_absent_without_drift(open_page, arch):
    page = open_page(NOW_PAGE)
    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    drifted = {
        node["id"] for node in arch.api(f"/api/architecture?since={since}")["nodes"]
        if node.get("drift")
    }  # fmt: skip
    badged = set(page.locator("#arch-svg .node:has(a.drift-badge)").evaluate_all(
        "nodes => nodes.map(n => n.dataset.id)"
    ))  # fmt: skip
    assert badged == drifted  # the page's badges are the API's drift (the traffic changed shapes)

    page.evaluate("""() => window.edobsArchitecture.draw({diff: null, graph: {
        nodes: [
          {id: 'sm:M', kind: 'state_machine', label: 'M', count: 1, sink: false, unknown: true},
          {id: 'event:shop/a b', kind: 'event', label: 'a b', count: 4, sink: true,
           unknown: false, drift: 2}],
        edges: [
          {source: 'sm:M', target: 'event:shop/a b', count: 4, p50_ms: null, p95_ms: null}]}})""")

    badge = page.locator('#arch-svg .node[data-id="event:shop/a b"] a.drift-badge')
    assert badge.get_attribute("href") == "/schemas/shop/a%20b/"
    assert "2 fields" in badge.text_content()
    assert page.evaluate(TEXT_OUTSIDE_NODE) == []


def test_hostile_names_stay_text(open_page, arch):
    now = datetime.now(UTC)
    hostile = job_envelopes(
        machine="EventDrivenMachine", start=now - timedelta(minutes=2), trigger=XSS_SCRIPT,
        source=XSS_IMG, steps=[Step(XSS_IMG, XSS_SCRIPT, "done", 40)],
    )  # fmt: skip
    arch.send(hostile)
    wait_for(
        lambda: any(n["label"] == XSS_IMG for n in arch.api("/api/architecture")["nodes"]),
        30, "the hostile events",
    )  # fmt: skip

    page = open_page("/architecture/?window=1h")

    texts = page.locator("#arch-svg text").all_text_contents()
    assert XSS_IMG in texts and XSS_SCRIPT in texts
    assert_no_script_ran(page)
    assert page.locator("#arch-svg img, #arch-svg script").count() == 0

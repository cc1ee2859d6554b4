"""The job page's timeline in headless Chromium against a real server (daphne, consumer, moto,
Redis; the `site` and `browser` of test_browser.py, one of each for this module).

The traffic is the demo workflow's (infra.traffic's seeded plans, Lambda events built by the
kit with millisecond `meta.emittedAt`), in two accounts: a job that FAILED while its 10th
getUserProfile waited for an answer, a job that failed in GetMultiple while getMultipleFn was
still working, a job still RUNNING, and a job of hostile strings. Screenshots go to
docs/screenshots/ with EDOBS_SCREENSHOTS=1.
"""

# ruff: noqa: F811 (the module's fixtures `site` and `browser` come from test_browser.py)
from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dashboards.formatting import human_ms
from infra.instrument import event_detail
from infra.traffic import JobPlan, plan_job
from tests.dashboards.test_browser import (  # noqa: F401 (site, browser: fixtures)
    DOCS_SHOTS,
    MACHINE,
    TIMEOUT_MS,
    XSS_IMG,
    XSS_SCRIPT,
    Site,
    assert_no_script_ran,
    browser,
    hostile_envelope,
    sign_in,
    site,
    wait_for,
)

SCREENSHOTS = os.environ.get("EDOBS_SCREENSHOTS") == "1"  # renew docs/screenshots/
pytestmark = pytest.mark.slow

ACCOUNT_A, ACCOUNT_B = "123456789012", "210987654321"
CONTRAST_MIN = 4.5


def job_id(account: str, name: str) -> str:
    return f"{account}:us-east-1:{MACHINE}:{name}"


def envelopes_of(plan: JobPlan, account: str, keep=lambda event: True, moved=None) -> list[dict]:
    """The plan's events as EventBridge delivers them (new ids, whole-second `time`), Lambda
    events built by the kit from their trigger as sent; `moved` maps a key to a new time."""
    sent: dict[str, dict] = {}
    out = []
    for event in plan.events:
        if not keep(event):
            continue
        when = (moved or {}).get(event.key, event.time)
        detail = event.detail
        if event.fn:
            detail = event_detail(
                sent[event.trigger], event.detail_type, event.detail, source=event.source,
                fn=event.fn, clock=when.timestamp,
            )  # fmt: skip
        if event.source == "aws.states" and event.detail.get("stopDate"):
            detail = {**detail, "stopDate": int(when.timestamp() * 1000)}
        envelope = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": event.detail_type,
            "source": event.source, "account": account,
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-east-1",
            "resources": list(event.resources), "detail": detail,
        }  # fmt: skip
        sent[event.key] = envelope
        out.append(envelope)
    return out


def _find_plan(check, **kwargs) -> JobPlan:
    """The first seeded plan that `check` accepts (plans are pure: same seed, same job)."""
    for seed in range(5000):
        plan = plan_job(0, seed=seed, **kwargs)
        if check(plan):
            return plan
    raise AssertionError("no seed gives that job")


def failed_at_tenth(start: datetime) -> JobPlan:
    """FAILED while the 10th getUserProfile waited: put, and never answered."""

    def check(plan: JobPlan) -> bool:
        keys = {event.key for event in plan.events}
        return (
            plan.failed and "getUserProfile/10" in keys and "getUserProfile/10/cookies" not in keys
        )

    return _find_plan(check, fail_rate=1.0, account=ACCOUNT_A, start=start)


def failed_in_get_multiple(start: datetime) -> list[dict]:
    """A job of account B that timed out in GetMultiple while getMultipleFn still worked: its
    answer came 1.5 s after the failure."""
    plan = _find_plan(lambda p: not p.failed and len(p.names) >= 2, fail_rate=0.0,
                      account=ACCOUNT_B, start=start)  # fmt: skip
    at = {event.key: event for event in plan.events}
    put = at["getUsers"].time
    keep = {"start", "status/RUNNING", "getUsers", "getUsers/done", "status/SUCCEEDED"}
    envelopes = envelopes_of(
        plan, ACCOUNT_B, keep=lambda event: event.key in keep,
        moved={"getUsers/done": put + timedelta(seconds=4.6),
               "status/SUCCEEDED": put + timedelta(seconds=3.1)},
    )  # fmt: skip
    stop = envelopes[-1]
    stop["detail"].update(status="TIMED_OUT", output=None, error="States.Timeout",
                          cause="GetMultiple timed out waiting for its task token")  # fmt: skip
    return envelopes


def running_job(now: datetime) -> tuple[JobPlan, list[dict]]:
    """A job of account A halfway through its names, its events up to now."""
    plan = _find_plan(lambda p: not p.failed and len(p.names) >= 6, fail_rate=0.0,
                      account=ACCOUNT_A, start=now)  # fmt: skip
    # just after the middle name's getUserProfile was put: its Lambda has not answered yet
    middle = f"getUserProfile/{len(plan.names) // 2}"
    cut = next(e.time for e in plan.events if e.key == middle) + timedelta(milliseconds=10)
    shift = now - cut
    moved = {event.key: event.time + shift for event in plan.events}
    envelopes = envelopes_of(plan, ACCOUNT_A, keep=lambda e: e.time <= cut, moved=moved)
    for envelope in envelopes:
        if envelope["source"] == "aws.states":
            envelope["detail"]["startDate"] += int(shift.total_seconds() * 1000)
    return plan, envelopes


@pytest.fixture(scope="module")
def jobs(site):
    now = datetime.now(UTC).replace(microsecond=0)
    failed = failed_at_tenth(now - timedelta(minutes=6))
    hostile = hostile_envelope(name="hostile-timeline")
    hostile["detail"]["TaskToken"] = XSS_SCRIPT
    running_plan, running = running_job(now)
    sent = {
        "failed": (job_id(ACCOUNT_A, failed.name), envelopes_of(failed, ACCOUNT_A)),
        "multiple": (None, failed_in_get_multiple(now - timedelta(minutes=4))),
        "running": (job_id(ACCOUNT_A, running_plan.name), running),
        "hostile": (job_id(ACCOUNT_A, "hostile-timeline"), [hostile]),
    }
    multiple_name = sent["multiple"][1][-1]["detail"]["name"]
    sent["multiple"] = (job_id(ACCOUNT_B, multiple_name), sent["multiple"][1])
    for _, envelopes in sent.values():
        site.send(envelopes)
    for key, (job, envelopes) in sent.items():
        with_job = sum(1 for envelope in envelopes if envelope["detail"])  # `start` has none
        wait_for(
            lambda job=job, n=with_job: count(site, job) >= n,
            60, f"the {key} job",
        )  # fmt: skip
    return {key: job for key, (job, _) in sent.items()}


@pytest.fixture(scope="module")
def context(browser, site):  # noqa: F811 (fixtures imported above)
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    sign_in(page, site.base)
    page.close()
    yield context
    context.close()


@pytest.fixture
def page(context, jobs):
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.set_viewport_size({"width": 1440, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert not errors, errors


def count(site: Site, job: str) -> int:
    return site.api(f"/api/jobs/{job}/timeline")["job"]["event_count"]


def open_job(page, site: Site, job: str, hash_: str = "") -> dict:
    page.goto(f"{site.base}/jobs/{job}/{hash_}")
    page.wait_for_selector("#timeline-svg .span-g")
    timeline = site.api(f"/api/jobs/{job}/timeline")
    for span, key in zip(timeline["spans"], span_keys(timeline["spans"]), strict=True):
        span["_key"] = key
    return timeline


def span_keys(spans: list[dict]) -> list[str]:
    """timeline.js's keys: an answered span is its answer's id; pending work is its trigger's id,
    suffixed when that id is taken (the trigger may itself answer another span)."""
    taken = {s["end_event"] for s in spans if s["end_event"]}
    keys = []
    for s in spans:
        key, n = s["end_event"], 1
        if not key:
            key = s["start_event"]
            while key in taken:
                key = s["start_event"] + ":pending" + (str(n) if n > 1 else "")
                n += 1
            taken.add(key)
        keys.append(key)
    return keys


def bar(page, key: str):
    return page.locator(f'#timeline-svg .span-g[data-key="{key}"]')


def box(locator) -> dict:
    return locator.locator("rect.span").bounding_box()


def key_of(span: dict) -> str:
    return span["_key"]


@pytest.mark.skipif(not SCREENSHOTS, reason="EDOBS_SCREENSHOTS=1 renews docs/screenshots/")
def test_it_saves_screenshots_of_a_failed_and_a_running_job(page, site, jobs, tmp_path):
    """Runs first, before the other tests add events, while the running job is young."""
    shots = DOCS_SHOTS if os.environ.get("EDOBS_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    for which in ("failed", "running"):
        for width in (1440, 390):
            page.set_viewport_size({"width": width, "height": 1000 if width > 400 else 844})
            timeline = open_job(page, site, jobs[which])
            if which == "failed":  # the waiting trigger, its tooltip shown
                pending = next(s for s in timeline["spans"] if s["status"] == "pending")
                bar(page, key_of(pending)).click()
            else:  # the timeline, not the facts above it, on a phone's screen
                page.evaluate(
                    "scrollTo(0, document.getElementById('timeline-legend')"
                    ".getBoundingClientRect().top + scrollY - 64)"
                )
            page.wait_for_timeout(300)
            path = shots / f"job-{which}-{width}.png"
            page.screenshot(path=str(path), full_page=width > 400)
            assert path.stat().st_size > 10_000
            overflow = page.evaluate(
                "document.getElementById('timeline-box').scrollWidth"
                " <= document.getElementById('timeline-box').clientWidth + 1"
            )
            assert overflow, "the timeline fits its box"


def test_it_draws_the_unanswered_tenth_trigger_and_the_failed_work(page, site, jobs):
    timeline = open_job(page, site, jobs["failed"])
    spans = timeline["spans"]
    assert page.locator("#timeline-svg .span-g").count() == len(spans)
    pending = [s for s in spans if s["status"] == "pending"]
    assert [(s["lane"], s["incoming"]["detailType"]) for s in pending] == [
        ("ProcessMultiple", "getUserProfile")
    ]  # in the lane of the Map state that put it, as what it awaits
    label = page.locator("#timeline-svg text.lane-sublabel", has_text="awaiting getUserProfile")
    assert label.count() == 1
    waiting = bar(page, key_of(pending[0]))
    assert waiting.get_attribute("data-status") == "pending"
    assert waiting.locator("rect.span.pending").count() == 1
    assert waiting.locator("rect.hatch").count() == 1
    # ...up to the job's end: the execution's failure line
    fail_x = float(page.locator("#timeline-svg line.fail-line").get_attribute("x1"))
    rect = waiting.locator("rect.span")
    right = float(rect.get_attribute("x")) + float(rect.get_attribute("width"))
    assert abs(right - fail_x) < 3
    assert page.locator("#timeline-svg .fail-mark").count() == 1
    failed = [s for s in spans if s["status"] == "failed"]
    for span in failed:  # marked by a ✕ where the failure hit, not by colour alone
        assert bar(page, key_of(span)).locator(".span-fail text").text_content() == "✕"
    assert page.locator("#timeline-svg .span-g .span-fail").count() == len(failed)
    cells = page.locator("#span-table-body tr.status-pending td")
    assert (cells.nth(0).text_content(), cells.nth(1).text_content()) == (
        "ProcessMultiple", "awaiting getUserProfile"
    )  # fmt: skip


def test_it_marks_the_work_cut_short_in_get_multiple(page, site, jobs):
    timeline = open_job(page, site, jobs["multiple"])
    [span] = timeline["spans"]
    assert span["fn"] == "getMultipleFn" and span["status"] == "failed"
    node = bar(page, key_of(span))
    assert node.locator("rect.span.failed").count() == 1
    assert node.locator(".span-fail").count() == 1
    node.hover()
    tip = page.locator("#span-tip")
    assert tip.is_visible()
    assert "failed: running when the execution failed" in tip.inner_text()
    assert "✕ failed" in tip.inner_text()
    assert page.locator("#timeline-svg .exec-failed").count() == 1


def test_it_draws_now_on_a_running_job_and_its_clocks_tick(page, site, jobs):
    timeline = open_job(page, site, jobs["running"])
    svg = page.locator("#timeline-svg")
    assert svg.get_attribute("data-running") == "1"
    now_x = float(page.locator("#timeline-svg line.now-line").get_attribute("x1"))
    pending = [s for s in timeline["spans"] if s["status"] == "pending"]
    assert pending, "a running job waits for something"
    rect = bar(page, key_of(pending[0])).locator("rect.span")
    right = float(rect.get_attribute("x")) + float(rect.get_attribute("width"))
    assert abs(right - now_x) < 4  # pending work runs to now
    before = page.locator("#job-duration").text_content()
    exec_before = page.locator("#timeline-svg .exec-text").text_content()
    page.wait_for_function(
        "t => document.getElementById('job-duration').textContent !== t", arg=before, timeout=3000
    )
    page.wait_for_function(
        "t => document.querySelector('#timeline-svg .exec-text').textContent !== t",
        arg=exec_before, timeout=3000,
    )  # fmt: skip


def test_it_shows_a_rich_tooltip_on_hover_and_on_focus(page, site, jobs):
    timeline = open_job(page, site, jobs["failed"])
    span = next(
        s for s in timeline["spans"]
        if s["fn"] == "processSingleFn" and not s["approx"] and s["duration_ms"] < 1000
    )  # fmt: skip
    events = site.api(f"/api/jobs/{jobs['failed']}/events?limit=500")["results"]
    token = next(e for e in events if e["id"] == span["start_event"])["detail"]["TaskToken"]
    bar(page, key_of(span)).hover()
    tip = page.locator("#span-tip")
    text = tip.inner_text()
    start = datetime.fromisoformat(span["start"].replace("Z", "+00:00"))
    assert f"{span['duration_ms']} ms" in text
    assert token in text
    assert start.strftime("%Y-%m-%d %H:%M:%S.") + f"{start.microsecond // 1000:03d} UTC" in text
    assert "getUserProfile (project)" in text and "getUserCookies (project)" in text
    assert tip.get_attribute("role") == "tooltip"
    page.mouse.move(0, 0)
    assert not tip.is_visible()
    # by keyboard: the focused bar shows it too, and is described by it
    bar(page, key_of(span)).focus()
    assert tip.is_visible() and token in tip.inner_text()
    assert bar(page, key_of(span)).get_attribute("aria-describedby") == "span-tip"


def test_it_highlights_the_critical_path_and_says_its_total(page, site, jobs):
    timeline = open_job(page, site, jobs["failed"])
    path = timeline["critical_path"]
    assert len(path) > 1
    stop = datetime.fromisoformat(timeline["execution"]["stop"].replace("Z", "+00:00"))

    def at(value):
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else stop

    spans = [timeline["spans"][i] for i in path]
    total = max(at(s["end"]) for s in spans) - min(at(s["start"]) for s in spans)
    page.click("#critical-toggle")
    assert page.locator("#critical-toggle").get_attribute("aria-pressed") == "true"
    critical = page.locator("#timeline-svg .span-g.critical")
    assert sorted(int(i) for i in critical.evaluate_all("ns => ns.map(n => n.dataset.index)")) == (
        sorted(path)
    )
    assert page.locator("#timeline-svg .span-g.dimmed").count() == len(timeline["spans"]) - len(
        path
    )
    assert page.locator("#critical-total").text_content() == (
        f"{len(path)} spans · {human_ms(total.total_seconds() * 1000)}"
    )
    page.click("#critical-toggle")
    assert page.locator("#timeline-svg .span-g.critical").count() == 0
    assert page.locator("#critical-total").text_content() == ""


def view(page) -> tuple[int, int]:
    svg = page.locator("#timeline-svg")
    return int(svg.get_attribute("data-view0")), int(svg.get_attribute("data-view1"))


def test_it_zooms_and_pans_with_the_minimap_buttons_and_wheel(page, site, jobs):
    open_job(page, site, jobs["failed"])
    full = view(page)
    minimap = page.locator("#timeline-minimap")
    t0, t1 = int(minimap.get_attribute("data-t0")), int(minimap.get_attribute("data-t1"))
    assert full == (t0, t1)
    window_before = minimap.locator("rect.mm-window").get_attribute("width")
    # drag across the second quarter of the minimap's plot
    plot = minimap.locator("rect.mm-bg").bounding_box()
    y = plot["y"] + plot["height"] / 2
    page.mouse.move(plot["x"] + plot["width"] * 0.25, y)
    page.mouse.down()
    page.mouse.move(plot["x"] + plot["width"] * 0.4, y, steps=4)
    page.mouse.move(plot["x"] + plot["width"] * 0.5, y, steps=4)
    page.mouse.up()
    v0, v1 = view(page)
    span = t1 - t0
    assert abs(v0 - (t0 + span * 0.25)) < span * 0.02
    assert abs(v1 - (t0 + span * 0.5)) < span * 0.02
    assert minimap.locator("rect.mm-window").get_attribute("width") != window_before
    # the axis says wall-clock time, in UTC, for the range shown
    assert page.locator("#timeline-svg text.tick-zone").text_content() == "Time (UTC)"
    first_tick = page.locator("#timeline-svg text.tick:not(.tick-zone)").first.text_content()
    shown = datetime.fromtimestamp(v0 / 1000, UTC).strftime("%H:%M")
    assert first_tick.startswith(shown[:2] + ":")
    # buttons: in halves the range, out doubles it back
    page.click("#zoom-in")
    z0, z1 = view(page)
    assert abs((z1 - z0) - (v1 - v0) / 2) <= 2
    page.click("#zoom-out")
    assert abs((view(page)[1] - view(page)[0]) - (v1 - v0)) <= 2
    # drag the chart to pan: same width, earlier range
    before = view(page)
    area = page.locator("#timeline-svg").bounding_box()
    page.mouse.move(area["x"] + area["width"] * 0.5, area["y"] + 20)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.7, area["y"] + 20, steps=5)
    page.mouse.up()
    after = view(page)
    assert after[0] < before[0] and abs((after[1] - after[0]) - (before[1] - before[0])) <= 2
    # Ctrl + wheel zooms in around the pointer
    page.mouse.move(area["x"] + area["width"] * 0.6, area["y"] + 40)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -100)
    page.keyboard.up("Control")
    page.wait_for_function(
        "w => { const d = document.getElementById('timeline-svg').dataset;"
        " return d.view1 - d.view0 < w; }", arg=after[1] - after[0] - 2,
    )  # fmt: skip
    page.click("#zoom-reset")
    assert view(page) == full


def test_it_finds_spans_and_events_in_the_job(page, site, jobs):
    timeline = open_job(page, site, jobs["failed"])
    events = site.api(f"/api/jobs/{jobs['failed']}/events?limit=500")["results"]
    page.fill("#timeline-find", "getUserCookies")
    page.wait_for_selector("#timeline-svg .span-g.match")
    matched = {
        key_of(s) for s in timeline["spans"]
        if "getUserCookies" in {(s["incoming"] or {}).get("detailType"),
                                (s["outgoing"] or {}).get("detailType")}
    }  # fmt: skip
    shown = set(page.locator("#timeline-svg .span-g.match").evaluate_all(
        "ns => ns.map(n => n.dataset.key)"))  # fmt: skip
    assert matched <= shown
    rows = set(page.locator("#event-body tr.match").evaluate_all(
        "ns => ns.map(n => n.dataset.eventId)"))  # fmt: skip
    assert {e["id"] for e in events if e["detail_type"] == "getUserCookies"} <= rows
    assert not rows & {e["id"] for e in events if e["source"] == "aws.states"}
    assert page.locator("#timeline-svg .span-g.dimmed").count() == len(timeline["spans"]) - len(
        shown
    )
    # by event id: its row, and the span it ends
    span = next(s for s in timeline["spans"] if s["fn"] == "postProcessSingleFn")
    page.fill("#timeline-find", span["end_event"])
    page.wait_for_function(
        "() => document.getElementById('find-count').textContent.endsWith(', 1 event')"
    )
    rows = page.locator("#event-body tr.match").evaluate_all("ns => ns.map(n => n.dataset.eventId)")
    assert rows == [span["end_event"]]
    assert "match" in bar(page, key_of(span)).get_attribute("class")
    page.fill("#timeline-find", "")
    page.wait_for_function("() => !document.querySelector('#timeline-svg .span-g.dimmed')")


def test_it_links_a_span_to_its_two_events_and_back(page, site, jobs):
    timeline = open_job(page, site, jobs["failed"])
    span = next(s for s in timeline["spans"] if s["fn"] == "processSingleFn")
    bar(page, key_of(span)).click()
    linked = set(page.locator("#event-body tr.linked").evaluate_all(
        "ns => ns.map(n => n.dataset.eventId)"))  # fmt: skip
    assert linked == {span["start_event"], span["end_event"]}
    assert bar(page, key_of(span)).get_attribute("aria-selected") == "true"
    assert page.locator("#span-detail").is_visible()
    # the reverse: a getUserCookies event starts two spans (postProcessSingleFn, sideEffectFn)
    cookies = span["end_event"]
    touching = {
        key_of(s) for s in timeline["spans"] if cookies in (s["start_event"], s["end_event"])
    }
    assert len(touching) == 3
    page.locator(f'#event-body tr[data-event-id="{cookies}"] td').first.click()
    shown = set(page.locator("#timeline-svg .span-g.linked").evaluate_all(
        "ns => ns.map(n => n.dataset.key)"))  # fmt: skip
    assert shown == touching
    assert page.locator("#timeline-svg .span-g.selected").count() == 1


def test_an_event_row_is_a_tab_stop_and_enter_links_its_spans(page, site, jobs):
    timeline = open_job(page, site, jobs["failed"])
    span = next(s for s in timeline["spans"] if s["fn"] == "processSingleFn")
    trigger = page.locator(f'#event-body tr[data-event-id="{span["start_event"]}"]')
    trigger.focus()
    page.keyboard.press("Tab")  # past the row's own JSON toggle, to the next row
    page.keyboard.press("Tab")
    following = page.evaluate("document.activeElement.dataset.eventId")
    rows = page.locator("#event-body tr.event-row").evaluate_all(
        "ns => ns.map(n => n.dataset.eventId)"
    )
    assert following == rows[rows.index(span["start_event"]) + 1]
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    shown = set(page.locator("#timeline-svg .span-g.linked").evaluate_all(
        "ns => ns.map(n => n.dataset.key)"))  # fmt: skip
    assert key_of(span) in shown
    assert page.locator("#event-body tr.linked").evaluate_all(
        "ns => ns.map(n => n.dataset.eventId)"
    ) == [span["start_event"]]
    assert page.locator("#timeline-svg .span-g.selected").count() == 1


def test_it_selects_the_span_of_a_deep_link_even_after_a_reload(page, site, jobs):
    timeline = open_job(page, site, jobs["failed"])
    span = next(s for s in timeline["spans"] if s["fn"] == "postProcessSingleFn")
    open_job(page, site, jobs["failed"], f"#span={key_of(span)}")
    assert bar(page, key_of(span)).get_attribute("aria-selected") == "true"
    assert page.locator("#span-tip").is_visible()
    assert page.locator("#span-detail").is_visible()
    # selecting another span puts it in the address, without a new history entry
    other = next(s for s in timeline["spans"] if s["status"] == "pending")
    length = page.evaluate("history.length")
    bar(page, key_of(other)).click()
    assert page.evaluate("location.hash") == f"#span={key_of(other)}"
    assert page.evaluate("history.length") == length
    page.reload()
    page.wait_for_selector(f'#timeline-svg .span-g.selected[data-key="{key_of(other)}"]')
    assert "awaiting getUserProfile" in page.locator("#span-detail").inner_text()


def test_it_is_one_tab_stop_with_arrow_keys_between_bars(page, site, jobs):
    timeline = open_job(page, site, jobs["failed"])
    svg = page.locator("#timeline-svg")
    assert svg.get_attribute("role") == "listbox" and svg.get_attribute("aria-label")
    options = page.locator("#timeline-svg [role=option]")
    assert options.count() == len(timeline["spans"])
    assert page.locator("#timeline-svg [tabindex='0']").count() == 1
    page.focus("#zoom-in")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.closest('#timeline-svg') !== null")
    assert focused, "Tab from the tools lands on the timeline"

    def active() -> dict:
        return page.evaluate(
            "(() => { const n = document.activeElement; const r = n.querySelector('rect.span');"
            " return {key: n.dataset.key, y: +r.getAttribute('y'), x: +r.getAttribute('x')}; })()"
        )

    page.keyboard.press("Home")  # getMultipleFn, alone in its row
    first = active()
    page.keyboard.press("ArrowDown")  # processSingleFn's first row
    below = active()
    assert below["y"] > first["y"]
    page.keyboard.press("ArrowRight")
    right = active()
    assert right["key"] != below["key"] and right["y"] == below["y"] and right["x"] > below["x"]
    page.keyboard.press("ArrowLeft")
    assert active()["key"] == below["key"]
    page.keyboard.press("ArrowUp")
    assert active()["key"] == first["key"]
    page.keyboard.press("End")
    last = active()
    assert last["y"] > right["y"] and last["key"] != first["key"]
    page.keyboard.press("Enter")
    assert bar(page, last["key"]).get_attribute("aria-selected") == "true"
    assert page.locator("#timeline-svg [tabindex='0']").count() == 1
    page.keyboard.press("Tab")  # and out again: one stop
    assert page.evaluate("document.activeElement.closest('#timeline-svg') === null")
    # the text alternative: every span as a row of state, work, start, duration and status
    rows = page.locator("#span-table-body tr")
    assert rows.count() == len(timeline["spans"])
    assert page.locator("#span-table thead th").all_text_contents()[:5] == [
        "State", "Work", "Start (UTC)", "Duration", "Status"]  # fmt: skip


CONTRAST_JS = """
() => {
  const rgb = (c) => {
    const m = c.match(/[\\d.]+/g).map(Number);
    return m.length > 3 && m[3] === 0 ? null : m.slice(0, 3);
  };
  const lin = (x) => (x /= 255) <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
  const lum = (c) => 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const fill = (n) => rgb(getComputedStyle(n).fill);
  const under = (n) => {
    for (let e = n; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c) return c;
    }
    return [255, 255, 255];
  };
  const bands = Array.from(document.querySelectorAll('#timeline-svg rect.band')).map(fill);
  const out = [];
  document.querySelectorAll('#timeline-svg text').forEach((t) => {
    const mark = t.closest('.span-fail, .fail-mark'), now = t.closest('.now');
    const span = t.closest('.span-g'), exec = t.closest('.exec');
    let backs;
    if (mark) backs = [fill(mark.querySelector('circle'))];
    else if (now) backs = [fill(now.querySelector('.now-chip'))];
    else if (t.classList.contains('exec-text')) backs = [fill(exec.querySelector('.exec-bar'))];
    else if (span) {
      backs = [fill(span.querySelector('rect.span'))];
      const hatch = document.querySelector('#tl-hatch rect');
      if (span.querySelector('rect.hatch')) backs.push(fill(hatch));
    } else backs = [under(t.closest('svg')), ...bands.filter(Boolean)];
    const colour = fill(t), cls = t.getAttribute('class') || '';
    backs.forEach((b) => out.push({ text: t.textContent, cls, ratio: ratio(colour, b) }));
  });
  return out;
}
"""


@pytest.mark.parametrize(
    ("which", "texts"),
    [("failed", {"span-text", "exec-text"}), ("running", {"now-text", "exec-text"})],
)
def test_it_keeps_every_text_on_bars_and_axis_at_4_5_to_1(page, site, jobs, which, texts):
    open_job(page, site, jobs[which])
    page.click("#zoom-in")  # more text fits on wider bars
    measured = page.evaluate(CONTRAST_JS)
    kinds = {entry["cls"].split()[0] for entry in measured if entry["cls"]}
    assert {"tick", "lane-label"} | texts <= kinds
    low = [entry for entry in measured if entry["ratio"] < CONTRAST_MIN]
    assert not low, low


def test_it_keeps_hostile_strings_as_text(page, site, jobs):
    open_job(page, site, jobs["hostile"])
    node = page.locator("#timeline-svg .span-g").first
    node.hover()
    tip = page.locator("#span-tip").inner_text()
    assert XSS_SCRIPT in tip  # the task token and the trigger, as text
    assert (
        page.locator("#timeline-svg text.lane-label:not(.exec-label)")
        .first.text_content()
        .startswith(XSS_IMG[:12])
    )
    assert XSS_IMG in page.locator("#span-table-body").text_content()
    node.click()
    page.fill("#timeline-find", XSS_IMG)
    page.wait_for_selector("#event-body tr.match")
    assert XSS_IMG in page.locator("#span-detail").inner_text()
    assert XSS_SCRIPT in page.locator("#span-table-body").text_content()
    assert_no_script_ran(page)


def test_it_keeps_the_selection_through_a_live_redraw(page, site, jobs):
    timeline = open_job(page, site, jobs["failed"])
    page.wait_for_selector("#live-indicator[data-state=live]")
    span = next(s for s in timeline["spans"] if s["fn"] == "sideEffectFn")
    bar(page, key_of(span)).click()
    count = page.locator("#timeline-svg .span-g").count()
    events = site.api(f"/api/jobs/{jobs['failed']}/events?limit=500")["results"]
    trigger = next(e for e in events if e["id"] == span["start_event"])
    late = datetime.fromisoformat(trigger["time"].replace("Z", "+00:00")) + timedelta(seconds=1)
    site.send([{
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "auditDone", "source": "project",
        "account": ACCOUNT_A, "time": late.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-east-1",
        "resources": [], "detail": {"execution": trigger["detail"]["execution"], "meta": {
            "fn": "auditFn", "emittedAt": int(late.timestamp() * 1000) + 250,
            "incoming": {"source": "project", "detailType": "getUserCookies", "id": trigger["id"]},
            "outgoing": {"source": "project", "detailType": "auditDone"}}},
    }])  # fmt: skip
    page.wait_for_function(
        f"() => document.querySelectorAll('#timeline-svg .span-g').length > {count}"
    )
    selected = page.locator("#timeline-svg .span-g.selected")
    assert selected.count() == 1 and selected.get_attribute("data-key") == key_of(span)
    assert selected.get_attribute("aria-selected") == "true"
    assert page.locator("#span-table-body tr").count() == count + 1


def test_it_offers_json_and_mermaid_downloads(page, site, jobs):
    open_job(page, site, jobs["failed"])
    for link_id, kind in (("#export-json", "json"), ("#export-mermaid", "mermaid")):
        link = page.locator(link_id)
        assert link.get_attribute("href").endswith(f"/export?format={kind}")
        with page.expect_download() as download:
            link.click()
        assert download.value.suggested_filename.startswith("edobs-")
        body = open(download.value.path(), encoding="utf-8").read()
        if kind == "json":
            assert len(json.loads(body)["events"]) > 20
        else:
            assert body.startswith("gantt") and "section awaiting getUserProfile" in body


LONG = 130  # events: more than one page of the job page's event table


@pytest.fixture(scope="module")
def long_job(site):
    """A job of LONG events, a trigger and its Lambda's answer every two seconds: its event
    table has two pages, the timeline every span."""
    from dashboards.views import EVENTS_PAGE

    assert EVENTS_PAGE < LONG
    name = "long-job"
    arn = f"arn:aws:states:us-east-1:{ACCOUNT_A}:execution:{MACHINE}:{name}"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    envelopes: list[dict] = []
    for n in range(LONG):
        detail: dict = {"execution": arn, "step": n}
        if n % 2:
            detail["meta"] = {
                "fn": "longFn", "outgoing": {"source": "project", "detailType": "done"},
                "incoming": {"source": "project", "detailType": "asked", "id": envelopes[-1]["id"]},
            }  # fmt: skip
        envelopes.append({
            "version": "0", "id": str(uuid.uuid4()), "source": "project",
            "detail-type": "done" if n % 2 else "asked", "account": ACCOUNT_A,
            "time": (start + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1", "resources": [], "detail": detail,
        })  # fmt: skip
    site.send(envelopes)
    job = job_id(ACCOUNT_A, name)
    wait_for(lambda: count(site, job) >= LONG, 90, "the long job")
    return job, envelopes


def page_rows(page) -> list[str]:
    return page.locator("#event-body tr.event-row").evaluate_all(
        "ns => ns.map(n => n.dataset.eventId)"
    )


def test_a_deep_link_to_a_span_whose_events_are_on_another_page_reaches_them(page, site, long_job):
    job, envelopes = long_job
    trigger, answer = envelopes[120]["id"], envelopes[121]["id"]
    open_job(page, site, job, f"#span={answer}")
    assert bar(page, answer).get_attribute("aria-selected") == "true"
    assert page.locator(".pager-count").first.inner_text() == f"1–100 of {LONG}"
    assert page.locator("#event-total").inner_text() == str(LONG)
    assert answer not in page_rows(page)

    button = page.locator(f'#span-detail button[data-event="{answer}"]')
    assert button.inner_text() == "Answer event (another page)"
    button.click()
    page.wait_for_url(f"**/jobs/**?event={answer}#span={answer}")
    page.wait_for_selector(f'#timeline-svg .span-g.selected[data-key="{answer}"]')
    assert page_rows(page) == [e["id"] for e in envelopes[100:]]
    assert page.evaluate("document.activeElement.dataset.eventId") == answer
    linked = page.locator("#event-body tr.linked").evaluate_all(
        "ns => ns.map(n => n.dataset.eventId)"
    )
    assert set(linked) == {trigger, answer}
    assert (
        page.locator(f'#span-detail button[data-event="{answer}"]').inner_text() == "Answer event"
    )

    page.locator('.pager a[rel="prev"]').first.click()
    page.wait_for_url("**?page=1#events")
    assert page_rows(page) == [e["id"] for e in envelopes[:100]]


def test_live_events_join_the_page_they_belong_to(page, site, long_job):
    job, envelopes = long_job
    page.goto(f"{site.base}/jobs/{job}/")
    page.wait_for_selector("#live-indicator[data-state=live]")
    last = datetime.fromisoformat(envelopes[-1]["time"].replace("Z", "+00:00"))
    late = {**envelopes[0], "id": str(uuid.uuid4()), "detail-type": "lateCheck",
            "time": (last + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "detail": {"execution": envelopes[0]["detail"]["execution"], "step": LONG}}  # fmt: skip
    site.send([late])
    # the count follows the job (the refresh that proves the event reached this page) ...
    page.wait_for_function(
        f"() => document.getElementById('event-total').textContent === '{LONG + 1}'"
    )
    # ... while the first page keeps its own rows: the late event belongs on the last page
    assert page_rows(page) == [e["id"] for e in envelopes[:100]]
    page.locator('.pager a[rel="next"]').first.click()
    page.wait_for_selector(f'#event-body tr[data-event-id="{late["id"]}"]')
    assert page_rows(page)[-1] == late["id"]

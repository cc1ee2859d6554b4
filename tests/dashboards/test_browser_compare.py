"""The compare page, the phone layout, the styled 404 and the favicon in headless Chromium.

One server and one browser for the module (test_browser.py's `site` and `browser`). Two demo jobs
of EventDrivenMachine run in real time through the queue, so their Lambdas are stamped to the
millisecond: a success and a failure in the Map. The samples' three jobs go to a second account,
which the team user `tess` may not see. Screenshots of the compare page at 1440 and 390 px go to
docs/screenshots/ with EDOBS_SCREENSHOTS=1, else to a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.dashboards import test_browser
from tests.dashboards.test_browser import (
    DOCS_SHOTS,
    MACHINE,
    TIMEOUT_MS,
    XSS_IMG,
    XSS_SCRIPT,
    QueueAsBus,
    _manage,
    assert_no_script_ran,
    realistic_envelopes,
    wait_for,
)

# One server and one browser for this module too: the fixtures, not copies of them.
site, browser = test_browser.site, test_browser.browser

SCREENSHOTS = os.environ.get("EDOBS_SCREENSHOTS") == "1"  # renew docs/screenshots/
pytestmark = pytest.mark.slow

ACCOUNT_A, ACCOUNT_B = "123456789012", "210987654321"
TEAM_USER, TEAM_PASSWORD = "tess", "tess-passw0rd"
SEED_OK, SEED_FAILED = 9, 6  # five names; six names, the Map fails at the fifth
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
TEAM_SETUP = f"""
from django.contrib.auth.models import User
from events.models import Team, TeamAccount
user = User.objects.create_user({TEAM_USER!r}, password={TEAM_PASSWORD!r})
team = Team.objects.create(name="alpha")
team.members.add(user)
TeamAccount.objects.create(team=team, account={ACCOUNT_A!r})
"""


def run_job(site, *, seed: int, fail_rate: float, ahead: timedelta):
    """One demo job in real time; returns its plan (what was sent).

    The machine's events are timed by their delivery to the queue, the Lambdas' by the kit's
    clock; `ahead` sets the kit's clock ahead by this bus's measured sending time, as a Lambda
    starts only once its trigger is delivered, so no answer is stamped before its trigger."""
    from infra.traffic import plan_job
    from infra.traffic_send import run_traffic

    start = datetime.now(UTC) + ahead
    run_traffic(client=QueueAsBus(site), jobs=1, seed=seed, fail_rate=fail_rate, speed=1,
                start=start)  # fmt: skip
    return plan_job(0, seed=seed, fail_rate=fail_rate, start=start)


def job_id(plan) -> str:
    return f"{ACCOUNT_A}:us-east-1:{MACHINE}:{plan.name}"


def stored(site, plan) -> dict | None:
    found = site.api(f"/api/jobs?state_machine={MACHINE}&limit=100")["results"]
    return next((job for job in found if job["id"] == job_id(plan)), None)


@pytest.fixture(scope="module")
def jobs(site):
    _manage(site.env, "shell", "-c", TEAM_SETUP)
    other_team = [
        json.loads(json.dumps(envelope).replace(ACCOUNT_A, ACCOUNT_B))
        for envelope in realistic_envelopes()
    ]
    sent = time.monotonic()
    site.send(other_team)
    per_batch = (time.monotonic() - sent) / -(-len(other_team) // 10)
    ahead = timedelta(seconds=min(0.5, 2 * per_batch))
    # Last run's success, then this run's failure: the newest job is the failed one.
    plans = {
        "ok": run_job(site, seed=SEED_OK, fail_rate=0.0, ahead=ahead),
        "failed": run_job(site, seed=SEED_FAILED, fail_rate=1.0, ahead=ahead),
    }
    assert plans["ok"].failed is False and plans["failed"].failed is True
    for plan in plans.values():  # every event but the uncorrelated `start`
        wait_for(lambda plan=plan: (stored(site, plan) or {}).get("event_count")
                 == len(plan.events) - 1, 60, f"job {plan.name}")  # fmt: skip
    with_job = sum(1 for envelope in other_team if envelope["detail"])
    wait_for(
        lambda: sum(j["event_count"] for j in site.api("/api/jobs?limit=100")["results"]
                    if j["account"] == ACCOUNT_B) == with_job,
        60, "the other team's jobs",
    )  # fmt: skip
    return {name: job_id(plan) for name, plan in plans.items()} | {"plans": plans}


def login(context, base: str, user: str = TEAM_USER, password: str = TEAM_PASSWORD):
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


@pytest.fixture
def desktop(browser, site, jobs):
    context = browser.new_context(viewport=DESKTOP)
    yield login(context, site.base)
    context.close()


@pytest.fixture
def phone(browser, site, jobs):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)  # fmt: skip
    yield login(context, site.base)
    context.close()


def compare_url(jobs) -> str:
    return f"/jobs/compare/?a={jobs['ok']}&b={jobs['failed']}"


@pytest.mark.skipif(not SCREENSHOTS, reason="EDOBS_SCREENSHOTS=1 renews docs/screenshots/")
def test_it_saves_screenshots_of_the_compare_page(browser, site, jobs, tmp_path):
    """Runs first, before the hostile test adds its steps to the picture."""
    shots = DOCS_SHOTS if os.environ.get("EDOBS_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    comparison = site.api(f"/api/jobs/compare?a={jobs['ok']}&b={jobs['failed']}")
    matched = [step[side]["duration_ms"] for step in comparison["steps"] for side in "ab"]
    assert matched and all(0 < ms < 1000 for ms in matched), matched  # Lambdas: ms, not s
    for name, viewport, scale in (("compare-1440.png", DESKTOP, 1), ("compare-390.png", PHONE, 2)):
        context = browser.new_context(viewport=viewport, device_scale_factor=scale)
        page = login(context, site.base)
        page.goto(f"{site.base}{compare_url(jobs)}")
        page.wait_for_selector("#compare-steps")
        # The phone's picture: the picker, both jobs and the matched steps, not the long tail.
        clip = {"x": 0, "y": 0, "width": viewport["width"], "height": 2000}
        page.screenshot(path=str(shots / name), full_page=True, clip=None if scale == 1 else clip)
        context.close()
        assert (shots / name).stat().st_size > 20_000


def test_it_picks_two_jobs_and_lands_on_the_comparison(desktop, site, jobs):
    page = desktop
    page.click("nav >> text=Compare")
    page.wait_for_url(re.compile(r"/jobs/compare/$"))
    page.select_option("#pick-machine", MACHINE)  # lists its jobs at once (no button press)
    page.wait_for_selector("#pick-a")
    offered = page.locator("#pick-a option").evaluate_all("options => options.map(o => o.value)")
    assert set(offered) == {jobs["ok"], jobs["failed"]}  # not the other team's three
    labels = page.locator("#pick-a option").all_text_contents()
    assert any(label.startswith("SUCCEEDED · ") for label in labels)
    assert any(label.startswith("FAILED · ") for label in labels)
    page.select_option("#pick-a", jobs["ok"])
    page.select_option("#pick-b", jobs["failed"])
    page.click("#compare-go")
    page.wait_for_selector("#compare-steps")
    assert f"a={jobs['ok']}" in page.url.replace("%3A", ":")
    assert f"b={jobs['failed']}" in page.url.replace("%3A", ":")
    assert page.locator("#job-a .badge").text_content() == "SUCCEEDED"
    assert page.locator("#job-b .badge").text_content() == "FAILED"


def test_it_shows_signed_deltas_to_the_millisecond(desktop, site, jobs):
    page = desktop
    page.goto(f"{site.base}{compare_url(jobs)}")
    comparison = site.api(f"/api/jobs/compare?a={jobs['ok']}&b={jobs['failed']}")
    rows = page.locator("#compare-steps tbody tr")
    assert rows.count() == len(comparison["steps"]) >= 4  # the users both jobs processed
    deltas = page.locator("#compare-steps .delta").evaluate_all(
        "spans => spans.map(s => [s.dataset.ms, s.textContent, getComputedStyle(s).color])"
    )
    colours = {}
    for (ms, text, colour), step in zip(deltas, comparison["steps"], strict=True):
        if step["diff_ms"] is None:  # a side's duration is unknown (clock skew): no number
            assert ms == "" and not re.search(r"\d", text), (ms, text)
            continue
        assert int(ms) == step["diff_ms"]
        sign = "+" if step["diff_ms"] > 0 else "−" if step["diff_ms"] < 0 else "±"
        assert text.startswith(sign), text
        colours.setdefault(sign, set()).add(colour)
    assert colours.keys() & {"+", "−"}
    assert all(len(found) == 1 for found in colours.values())
    assert len(set().union(*colours.values())) == len(colours)  # one colour per sign
    # Lambdas work for tens to hundreds of ms: their differences are shown in ms.
    assert any(re.fullmatch(r"[+−]\d{1,3} ms", text) for _, text, _ in deltas), deltas
    bars = page.locator("#compare-steps svg.pair-bars").first.locator("rect")
    assert bars.count() == 2


def test_it_lists_the_steps_only_one_side_has_and_the_changed_fields(desktop, site, jobs):
    page = desktop
    page.goto(f"{site.base}{compare_url(jobs)}")
    only_a = page.locator("#only-a li").all_text_contents()
    only_b = page.locator("#only-b li").all_text_contents()
    assert any("postProcessAllFn" in item for item in only_a)  # the failure never got there
    assert any("awaiting getUserProfile" in item and "never answered" in item for item in only_b)
    paths = set(page.locator("#compare-fields td.field-path").all_text_contents())
    assert {"names", "profile"} <= paths
    assert "name" not in paths  # a user's work is compared with the same user's
    names = page.locator("#compare-fields tr", has=page.locator("td.field-path", has_text="names"))
    for side, plan in (("a", jobs["plans"]["ok"]), ("b", jobs["plans"]["failed"])):
        cell = names.locator(f"td.col-{side}")  # a long value: its first chars, then the whole
        shown = cell.locator("pre").text_content() if cell.locator("pre").count() else None
        assert json.loads(shown or cell.inner_text()) == list(plan.names)


def hostile_step(plan, *, fn: str, note: str, at_ms: int) -> dict:
    """A Lambda answer in `plan`'s job, triggered by its getUsers event (paired by order)."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": XSS_SCRIPT, "source": "project",
        "account": ACCOUNT_A, "resources": [], "region": "us-east-1",
        "time": datetime.fromtimestamp(at_ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": {"execution": plan.execution_arn, "note": note, "meta": {
            "fn": fn, "emittedAt": at_ms,
            "incoming": {"source": "project", "detailType": "getUsers"},
            "outgoing": {"source": "project", "detailType": XSS_SCRIPT}}},
    }  # fmt: skip


def test_it_never_runs_hostile_step_names_or_values(desktop, site, jobs):
    page = desktop
    plans = jobs["plans"]
    first = {name: next(e for e in plan.events if e.detail_type == "getUsers")
             for name, plan in plans.items()}  # fmt: skip
    at = {name: int(event.time.timestamp() * 1000) + 150 for name, event in first.items()}
    site.send([
        hostile_step(plans["ok"], fn=XSS_IMG, note=XSS_SCRIPT, at_ms=at["ok"]),
        hostile_step(plans["failed"], fn=XSS_IMG, note=XSS_IMG + " " + "x" * 120,
                     at_ms=at["failed"]),
        hostile_step(plans["failed"], fn=XSS_SCRIPT, note=XSS_SCRIPT, at_ms=at["failed"] + 5),
    ])  # fmt: skip
    wait_for(
        lambda: any(s["lane"] == XSS_SCRIPT for s in site.api(
            f"/api/jobs/compare?a={jobs['ok']}&b={jobs['failed']}")["only_b"]),
        30, "the hostile steps",
    )  # fmt: skip
    page.goto(f"{site.base}{compare_url(jobs)}")
    page.wait_for_selector("#compare-steps")
    assert_no_script_ran(page)
    assert page.locator("#compare-steps td.step", has_text=XSS_IMG).count() == 1
    assert page.locator("#only-b li", has_text=XSS_SCRIPT).count() == 1
    assert page.locator("#compare-fields td.value", has_text=XSS_SCRIPT).count() >= 1
    long_value = page.locator("#compare-fields details.long-value", has_text=XSS_IMG)
    assert not long_value.locator("pre").is_visible()  # cut, with the whole value behind
    long_value.locator("summary").click()
    assert long_value.locator("pre").inner_text() == XSS_IMG + " " + "x" * 120
    assert_no_script_ran(page)
    page.goto(f"{site.base}/jobs/compare/?state_machine={MACHINE}")
    assert_no_script_ran(page)


def assert_fits(page, url: str) -> None:
    """No sideways scrolling: a phone's browser would zoom out to show a wider page, so its
    window would no longer be 390 px wide either."""
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[1] == PHONE["width"] and width[0] <= width[1], (url, width)


def assert_nav_reachable(page, url: str) -> None:
    for target in (page.locator(".nav-user"), page.get_by_role("button", name="Log out")):
        box = target.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (url, box)
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], (url, box)
        target.click(trial=True, timeout=2_000)  # visible, enabled, not covered by anything


def test_every_page_fits_a_phone_with_the_nav_in_reach(phone, site, jobs):
    page = phone
    pages = [
        "/", f"/jobs/{jobs['failed']}/", "/events/", "/architecture/?window=all",
        compare_url(jobs), f"/jobs/compare/?state_machine={MACHINE}", "/jobs/compare/",
        f"/jobs/{MACHINE}:no-such-job/", f"/state-machines/{MACHINE}/", "/schemas/",
        "/schemas/project/getUserProfile/", "/events/?q=user",
    ]  # fmt: skip
    for url in pages:
        page.goto(f"{site.base}{url}")
        page.wait_for_load_state("load")
        assert_fits(page, url)
        assert_nav_reachable(page, url)
        assert page.get_by_role("link", name="Compare").is_visible(), url
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{site.base}/accounts/login/")
    assert_fits(page, "/accounts/login/")
    assert page.locator("button[type=submit]").bounding_box()["width"] > 0


def test_the_events_table_scrolls_in_its_card_to_its_last_column(phone, site, jobs):
    page = phone
    page.goto(f"{site.base}/events/")
    card = page.locator("section.card.flush", has=page.locator("table.events"))
    sizes = card.evaluate("c => [c.scrollWidth, c.clientWidth]")
    assert sizes[0] > sizes[1]  # wider than the screen: it needs its own scrolling
    last = page.locator("table.events thead th").last
    assert last.bounding_box()["x"] >= PHONE["width"]  # off screen until the card scrolls
    assert "Scroll sideways" in card.evaluate("c => getComputedStyle(c, '::before').content")
    card.evaluate("c => { c.scrollLeft = c.scrollWidth; }")
    page.wait_for_function(
        "() => document.querySelector('table.events thead th:last-child')"
        ".getBoundingClientRect().right <= window.innerWidth"
    )
    box = last.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert_fits(page, "/events/ scrolled")
    head = page.locator("h1").bounding_box()
    assert head["x"] >= 0  # the page itself did not move


def test_the_favicon_resolves(desktop, site):
    page = desktop
    href = page.locator("link[rel=icon]").get_attribute("href")
    icon = page.request.get(f"{site.base}{href}")
    assert icon.status == 200 and "svg" in icon.headers["content-type"]
    assert "<svg" in icon.text()
    legacy = page.request.get(f"{site.base}/favicon.ico")
    assert legacy.status == 200 and legacy.body() == icon.body()


def test_an_unknown_or_hidden_job_is_a_styled_404(desktop, site, jobs):
    page = desktop
    other = site.api("/api/jobs?limit=100")["results"]
    hidden = next(job["id"] for job in other if job["account"] == ACCOUNT_B)
    for url in (f"/jobs/{MACHINE}:no-such-job/", f"/jobs/{hidden}/",
                f"/jobs/compare/?a={hidden}&b={jobs['ok']}"):  # fmt: skip
        response = page.goto(f"{site.base}{url}")
        assert response.status == 404, url
        assert page.locator(".error-card h1").text_content() == "Page not found"
        assert page.locator(".topbar .nav-user").text_content() == TEAM_USER
    page.get_by_role("link", name="Back to the latest jobs").click()
    page.wait_for_url(f"{site.base}/")

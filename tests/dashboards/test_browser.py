"""The pages in headless Chromium against a real server: daphne, the consumer, moto, Redis.

Events go to the SQS queue (moto server), `consume_events` stores and broadcasts them through
Redis, daphne serves the pages and sockets. Screenshots of the four pages go to
docs/screenshots/ with EDOBS_SCREENSHOTS=1, else to a temporary folder (tests change no files).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar
from pathlib import Path

import boto3
import pytest

from tests.services import CHROMIUM_ARGS, free_port

SCREENSHOTS = os.environ.get("EDOBS_SCREENSHOTS") == "1"  # renew docs/screenshots/
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "samples"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
QUEUE = "edobs-browser"
USER, PASSWORD = "wall", "wall-passw0rd"
MACHINE = "EventDrivenMachine"
XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_IMG = '<img src=x onerror="window.__xss=1">'
TIMEOUT_MS = 15_000


# An image of the same broken src as XSS_IMG's, made to fail; resolves once it has.
FAILED_IMAGE_JS = """() => new Promise((done) => {
  const probe = new Image();
  probe.onerror = probe.onload = () => done(true);
  probe.src = "x";
})"""


def assert_no_script_ran(page) -> None:
    """No hostile string drawn so far ran as code, proven without a fixed wait: a <script> the
    server drew runs as the page is parsed, one a script inserts never runs, and an <img
    onerror> runs once its image has failed. So, with the hostile text already drawn, an image
    of the same src is made to fail here first: a hostile one drawn before it failed no later,
    and its handler would have set window.__xss by then."""
    page.evaluate(FAILED_IMAGE_JS)
    assert page.evaluate("typeof window.__xss") == "undefined"


def shoot(page, name: str) -> None:
    """With EDOBS_SCREENSHOTS=1, the page as it is now goes to docs/screenshots/<name>; otherwise
    nothing (tests change no files)."""
    if SCREENSHOTS:
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_SHOTS / name))


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} not seen within {timeout:.0f} s")


class Site:
    """A running edobs: base URL, the SQS queue, and a logged-in JSON reader for the API."""

    def __init__(self, base: str, sqs, queue_url: str) -> None:
        self.base, self.sqs, self.queue_url = base, sqs, queue_url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def login(self) -> None:
        page = self.opener.open(f"{self.base}/accounts/login/", timeout=10).read().decode()
        token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
        data = f"csrfmiddlewaretoken={token}&username={USER}&password={PASSWORD}".encode()
        request = urllib.request.Request(f"{self.base}/accounts/login/", data=data)
        request.add_header("Referer", f"{self.base}/accounts/login/")
        self.opener.open(request, timeout=10).read()

    def api(self, path: str) -> dict:
        with self.opener.open(f"{self.base}{path}", timeout=10) as response:
            return json.loads(response.read())

    def send(self, envelopes: list[dict]) -> None:
        for start in range(0, len(envelopes), 10):
            entries = [
                {"Id": str(i), "MessageBody": json.dumps(envelope)}
                for i, envelope in enumerate(envelopes[start : start + 10])
            ]
            self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)


def _env(tmp: str, moto_url: str, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        EDOBS_VAR_DIR=tmp, REDIS_URL=redis_url, AWS_ENDPOINT_URL=moto_url,
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1", EDOBS_QUEUE_NAME=QUEUE, EDOBS_STORE="orm",
        DJANGO_SUPERUSER_PASSWORD=PASSWORD, DJANGO_DEBUG="false", PYTHONUNBUFFERED="1",
    )  # fmt: skip
    env.pop("DATABASE_URL", None)
    return env


def _manage(env: dict, *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=120,
        capture_output=True,
    )  # fmt: skip


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


_PREPARED: dict[str, str] = {}


def _prepared(env: dict[str, str]) -> str:
    """A var directory made once per test process and copied into each site's own: the database
    migrated with the superuser in it, and, as in production, hashed, gzipped static files
    collected into STATIC_ROOT. (Made per site, the three commands cost each of the dozen
    browser modules 10 to 30 s of a busy machine.)"""
    if "dir" not in _PREPARED:
        prepared = tempfile.mkdtemp(prefix="edobs-browser-prepared-")
        env = {**env, "EDOBS_VAR_DIR": prepared}
        _manage(env, "migrate", "--noinput")
        _manage(env, "collectstatic", "--noinput")
        _manage(env, "createsuperuser", "--noinput", "--username", USER, "--email", "w@x.test")
        shutil.rmtree(Path(prepared) / "metrics", ignore_errors=True)
        _PREPARED["dir"] = prepared
    return _PREPARED["dir"]


@pytest.fixture(scope="module")
def site(redis_url):
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    procs: list[subprocess.Popen] = []
    tmp = tempfile.mkdtemp(prefix="edobs-browser-")
    try:
        host, port = moto.get_host_and_port()
        moto_url = f"http://{host}:{port}"
        env = _env(tmp, moto_url, redis_url)
        sqs = boto3.client(
            "sqs", endpoint_url=moto_url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        shutil.copytree(_prepared(env), tmp, dirs_exist_ok=True)
        web_port = free_port()
        logs = Path(tmp)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(web_port),
             "edobs_site.asgi:application"],
            cwd=ROOT, env=env, stdout=open(logs / "daphne.log", "wb"), stderr=subprocess.STDOUT,
        ))  # fmt: skip
        procs.append(subprocess.Popen(
            [sys.executable, "manage.py", "consume_events", "--wait", "1"],
            cwd=ROOT, env=env, stdout=open(logs / "consumer.log", "wb"), stderr=subprocess.STDOUT,
        ))  # fmt: skip
        base = f"http://127.0.0.1:{web_port}"
        wait_for(lambda: urllib.request.urlopen(f"{base}/accounts/login/", timeout=2), 30, "daphne")
        running = Site(base, sqs, queue_url)
        running.env = env  # for `_manage` in modules that share this fixture
        running.login()
        yield running
    finally:
        _stop(procs)
        moto.stop()
        for name in ("daphne.log", "consumer.log"):
            path = Path(tmp) / name
            if path.exists():
                sys.stderr.write(
                    f"--- {name} (tail) ---\n{path.read_text(errors='replace')[-3000:]}\n"
                )


def realistic_envelopes() -> list[dict]:
    """Several demo jobs from the samples, moved to the last minutes so the windows show them."""
    lines = [
        json.loads(line)
        for line in (SAMPLES / "part1_jobs.jsonl").read_text().splitlines()
        if line.strip()
    ]
    first = min(datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in lines)
    shift = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5) - first
    for envelope in lines:
        when = datetime.fromisoformat(envelope["time"].replace("Z", "+00:00")) + shift
        envelope["time"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        for key in ("startDate", "stopDate"):
            if isinstance(envelope["detail"].get(key), int):
                envelope["detail"][key] += int(shift.total_seconds() * 1000)
    return lines


def hostile_envelope(name: str = "hostile-job") -> dict:
    arn = f"arn:aws:states:us-east-1:123456789012:execution:{MACHINE}:{name}"
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": XSS_SCRIPT, "source": XSS_IMG,
        "account": "123456789012", "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1", "resources": [],
        "detail": {
            "execution": arn, "stateName": XSS_IMG, "note": XSS_SCRIPT,
            "meta": {"fn": XSS_IMG, "incoming": {"source": XSS_IMG, "detailType": XSS_SCRIPT},
                     "outgoing": {"source": XSS_IMG, "detailType": XSS_SCRIPT}},
        },
    }  # fmt: skip


class QueueAsBus:
    """An events client for the simulator that delivers to the queue as EventBridge would: a new
    id, `time` in whole seconds, and the real moment of delivery as SQS's SentTimestamp."""

    def __init__(self, site: Site) -> None:
        self.site, self.meta = site, site.sqs.meta

    def put_events(self, Entries):  # noqa: N803 (boto3's argument name)
        envelopes = [
            {
                "version": "0", "id": str(uuid.uuid4()), "detail-type": entry["DetailType"],
                "source": entry["Source"], "account": "123456789012",
                "time": entry["Time"].strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-east-1",
                "resources": entry["Resources"], "detail": json.loads(entry["Detail"]),
            }
            for entry in Entries
        ]  # fmt: skip
        self.site.send(envelopes)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": e["id"]} for e in envelopes]}


def simulate_one_job(site: Site) -> str:
    """One demo job in real time, its Lambda events built by the kit (meta.emittedAt): the
    timeline of milliseconds that the job screenshot shows. Returns the job id."""
    from infra.traffic import plan_job
    from infra.traffic_send import run_traffic

    seed = 7  # three names, about 7 s
    run_traffic(client=QueueAsBus(site), jobs=1, seed=seed, speed=1)
    name = plan_job(0, seed=seed, fail_rate=0.0, start=datetime.now(UTC)).name
    return f"123456789012:us-east-1:{MACHINE}:{name}"


@pytest.fixture(scope="module")
def loaded(site):
    envelopes = realistic_envelopes()
    site.send(envelopes)
    site.ms_job = simulate_one_job(site)
    with_job = sum(1 for envelope in envelopes if envelope["detail"])  # `start` events have none
    wait_for(
        lambda: sum(j["event_count"] for j in site.api("/api/jobs")["results"]) >= with_job,
        60, "the sample events in the API",
    )  # fmt: skip
    wait_for(
        lambda: site.api(f"/api/jobs/{site.ms_job}/timeline")["job"]["status"] == "SUCCEEDED",
        60, "the simulated job",
    )  # fmt: skip
    return site


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# The cookies of USER's session on each site, after its first sign-in through the form.
_SESSIONS: dict[str, list[dict]] = {}


def sign_in(page, base: str) -> None:
    """Sign in as USER and land on the home page: through the login form the first time on a
    site, then with the cookies that sign-in got (the form costs a page and a password hash of a
    million rounds in the server, per test). A session that no longer holds (signed out, another
    site on the same port) lands on the login form, which signs in afresh."""
    if base in _SESSIONS:
        page.context.add_cookies(_SESSIONS[base])
        page.goto(f"{base}/")
        if page.url == f"{base}/":
            return
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    _SESSIONS[base] = page.context.cookies(f"{base}/")


@pytest.fixture
def page(browser, loaded):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, loaded.base)
    yield page
    context.close()
    assert not dialogs, f"a page opened a dialog: {dialogs}"


def job_with_spans(site: Site) -> dict:
    jobs = site.api("/api/jobs?status=SUCCEEDED")["results"]
    return jobs[0]


@pytest.mark.skipif(not SCREENSHOTS, reason="EDOBS_SCREENSHOTS=1 renews docs/screenshots/")
def test_it_saves_screenshots_of_the_four_pages(page, loaded, tmp_path):
    """Runs first, before the other tests add their test events to the picture."""
    SHOTS = DOCS_SHOTS if os.environ.get("EDOBS_SCREENSHOTS") == "1" else tmp_path
    SHOTS.mkdir(parents=True, exist_ok=True)
    spans = loaded.api(f"/api/jobs/{loaded.ms_job}/timeline")["spans"]
    assert spans and all(0 < span["duration_ms"] < 1000 for span in spans)
    assert not any(span["approx"] for span in spans)
    shots = {
        "home.png": "/?state_machine=EventDrivenMachine",
        "job.png": f"/jobs/{loaded.ms_job}/",
        "architecture.png": "/architecture/?window=1h&state_machine=EventDrivenMachine",
        "events.png": "/events/?source=project",
    }
    for name, url in shots.items():
        page.goto(f"{loaded.base}{url}")
        page.wait_for_load_state("load")
        page.wait_for_timeout(800)
        page.screenshot(path=str(SHOTS / name), full_page=name == "job.png")
        assert (SHOTS / name).stat().st_size > 10_000
        if name == "job.png":  # its bars say milliseconds, not "0 ms" or whole seconds
            # the fourth column: Duration
            labels = page.locator("#span-table-body td:nth-child(4)").all_text_contents()
            assert labels and all(label.endswith(" ms") for label in labels), labels


def test_it_shows_the_job_timeline_with_one_bar_per_span(page, loaded):
    job = job_with_spans(loaded)
    spans = loaded.api(f"/api/jobs/{job['id']}/timeline")["spans"]
    page.goto(f"{loaded.base}/jobs/{job['id']}/")
    page.wait_for_selector("#live-indicator[data-state=live]")
    assert page.locator("#timeline-svg rect.span").count() == len(spans) > 0
    page.locator("#timeline-svg .span-g").first.click()
    assert page.locator("#span-detail").text_content()


def test_it_adds_a_new_event_live_without_reload(page, loaded):
    job = loaded.api("/api/jobs?status=SUCCEEDED")["results"][-1]
    events = loaded.api(f"/api/jobs/{job['id']}/events?limit=500")["results"]
    page.goto(f"{loaded.base}/jobs/{job['id']}/")
    page.wait_for_selector("#live-indicator[data-state=live]")
    rows_before = page.locator("#event-body tr").count()
    bars_before = page.locator("#timeline-svg rect.span").count()
    page.evaluate("window.__marker = 'same page'")
    trigger = next(e for e in events if e["detail_type"] == "getUserProfile")
    new_id = str(uuid.uuid4())
    late = datetime.fromisoformat(events[-1]["time"].replace("Z", "+00:00")) + timedelta(seconds=3)
    loaded.send([{
        "version": "0", "id": new_id, "detail-type": "liveCheck", "source": "project",
        "account": "123456789012", "time": late.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1", "resources": [],
        "detail": {"execution": job["execution_arn"], "meta": {
            "fn": "liveCheckFn", "incoming": {"source": "project", "detailType": "getUserProfile",
                                               "id": trigger["id"]},
            "outgoing": {"source": "project", "detailType": "liveCheck"}}},
    }])  # fmt: skip
    page.wait_for_selector(f'#event-body tr[data-event-id="{new_id}"]')
    assert page.locator("#event-body tr").count() == rows_before + 1
    page.wait_for_function(
        f"() => document.querySelectorAll('#timeline-svg rect.span').length === {bars_before + 1}"
    )
    assert page.locator("#timeline-svg text.lane-label", has_text="liveCheckFn").count() == 1
    assert page.evaluate("window.__marker") == "same page"


def test_it_updates_the_home_page_live(page, loaded):
    page.wait_for_selector("#live-indicator[data-state=live]")
    before = page.locator("#jobs-body tr").count()
    envelope = hostile_envelope(name=f"live-{uuid.uuid4().hex[:8]}")
    envelope["detail-type"], envelope["source"] = "liveHome", "project"
    envelope["detail"]["meta"] = {"fn": "homeFn"}
    loaded.send([envelope])
    name = envelope["detail"]["execution"].rsplit(":", 1)[1]
    job_id = f"{envelope['account']}:{envelope['region']}:{MACHINE}:{name}"
    # Announced, not jumped in (the rows keep their order); "show" brings it in.
    page.wait_for_function(
        "() => document.getElementById('new-jobs-text').textContent === '1 new job'"
    )
    assert page.locator(f'#jobs-body tr[data-job-id="{job_id}"]').count() == 0
    page.click("#new-jobs-show")
    page.wait_for_selector(f'#jobs-body tr[data-job-id="{job_id}"]')
    assert page.locator("#jobs-body tr").count() == before + 1


def test_it_never_runs_hostile_event_content(page, loaded):
    envelope = hostile_envelope()
    loaded.send([envelope])
    wait_for(
        lambda: any(j["name"] == "hostile-job" for j in loaded.api("/api/jobs")["results"]),
        30,
        "the hostile job",
    )
    # Each page, and where its own script draws the hostile strings (the server draws "body").
    urls = {
        "/": "body",
        f"/jobs/{MACHINE}:hostile-job/": "#span-table-body",
        "/events/": "body",
        "/architecture/?window=all": "#arch-svg",
    }
    for url, drawn in urls.items():
        page.goto(f"{loaded.base}{url}")
        page.wait_for_load_state("load")
        page.wait_for_function(
            "([where, texts]) => texts.some((text) => "
            "(document.querySelector(where)?.textContent || '').includes(text))",
            arg=[drawn, [XSS_SCRIPT, XSS_IMG]],
        )
        assert_no_script_ran(page)
        assert (
            XSS_SCRIPT in page.locator("body").inner_text()
            or XSS_IMG in page.locator("body").inner_text()
        ), url

"""The fleet API (DESIGN section 9): job health and filters, state machine metrics, event search."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from .conftest import ACCOUNT_A, ACCOUNT_B, ingest_bodies

pytestmark = pytest.mark.django_db
METRICS = "/api/state-machines/Fleet/metrics"
NOW = datetime.now(UTC).replace(microsecond=0)  # reset before each test: jobs run against it


@pytest.fixture(autouse=True)
def _now():
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


def job_id(name: str, account: str = ACCOUNT_A) -> str:
    return f"{account}:us-east-1:Fleet:{name}"


def status_event(
    name: str, status: str, *, start: datetime, stop=None, account=ACCOUNT_A, error=None
):
    at = stop or start
    detail = {
        "executionArn": f"arn:aws:states:us-east-1:{account}:execution:Fleet:{name}",
        "name": name, "status": status, "startDate": int(start.timestamp() * 1000),
        "stopDate": int(stop.timestamp() * 1000) if stop else None, "error": error,
    }  # fmt: skip
    return envelope(f"{name}-{status}", at, detail, account=account, source="aws.states",
                    detail_type="Step Functions Execution Status Change")  # fmt: skip


def envelope(event_id, at, detail, *, account=ACCOUNT_A, source="project", detail_type="step"):
    return json.dumps({
        "version": "0", "id": event_id, "detail-type": detail_type, "source": source,
        "account": account, "time": at.isoformat().replace("+00:00", "Z"), "region": "us-east-1",
        "resources": [], "detail": detail,
    })  # fmt: skip


def run(name, *, minutes_ago, seconds=None, status="SUCCEEDED", account=ACCOUNT_A, error=None):
    start = NOW - timedelta(minutes=minutes_ago)
    bodies = [status_event(name, "RUNNING", start=start, account=account)]
    if seconds is not None:
        stop = start + timedelta(seconds=seconds)
        bodies.append(
            status_event(name, status, start=start, stop=stop, account=account, error=error)
        )
    return bodies


@pytest.fixture
def fleet_jobs():
    """Account A: five 60 s successes, a failure, a job running 10 min (stuck: the p99 is 60 s)
    and one running 20 s. Account B: its own Fleet jobs, all slow, and events of its own."""
    bodies = []
    for n in range(5):
        bodies += run(f"ok-{n}", minutes_ago=50 - n, seconds=60)
    bodies += run("bad", minutes_ago=30, seconds=30, status="FAILED", error="Boom")
    bodies += run("stuck", minutes_ago=10)
    bodies += run("young", minutes_ago=1 / 3)
    for n in range(5):
        bodies += run(f"b-ok-{n}", minutes_ago=50 - n, seconds=600, account=ACCOUNT_B)
    bodies += run("b-stuck", minutes_ago=40, account=ACCOUNT_B)
    ingest_bodies(bodies)


@pytest.fixture
def searchable():
    at = NOW - timedelta(minutes=5)
    details = {
        "num": {"orderId": 1234, "meta": {"fn": "charge"}},
        "str": {"orderId": "1234", "meta": {"fn": "charge"}},
        "zoe": {"customer": {"name": "Zoë"}, "note": "😀 from 東京", "meta": {"fn": "ship"}},
        "zoe2": {"customer": {"name": "ZOË"}},
    }
    bodies = [
        envelope(key, at + timedelta(seconds=n), d) for n, (key, d) in enumerate(details.items())
    ]
    bodies.append(envelope("b-secret", at, {"orderId": 1234, "note": "😀"}, account=ACCOUNT_B))
    ingest_bodies(bodies)


def results(client, url: str) -> list[dict]:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_it_gives_job_summaries_their_duration_and_stuck_verdict(client, superuser, fleet_jobs):
    client.force_login(superuser)

    jobs = {job["id"]: job for job in results(client, "/api/jobs?state_machine=Fleet")}

    assert jobs[job_id("ok-0")]["duration_ms"] == 60_000
    assert jobs[job_id("ok-0")]["stuck"] is False and jobs[job_id("ok-0")]["stuck_reason"] is None
    stuck = jobs[job_id("stuck")]
    assert stuck["stuck"] is True and stuck["duration_ms"] >= 600_000
    assert re.fullmatch(r"running 10 min, 10(\.\d)?x the p99 of 1 min", stuck["stuck_reason"])
    assert jobs[job_id("young")]["stuck"] is False
    assert jobs[job_id("bad")]["duration_ms"] == 30_000


def test_it_lists_only_stuck_jobs_page_by_page(client, superuser, fleet_jobs):
    client.force_login(superuser)

    stuck = results(client, "/api/jobs?stuck=1")
    first = client.get("/api/jobs?stuck=1&limit=1").json()
    second = client.get(f"/api/jobs?stuck=1&limit=1&cursor={first['next_cursor']}").json()

    # B's p99 is 600 s: its job running 40 min is stuck too; A's young job is not.
    assert [job["id"] for job in stuck] == [job_id("stuck"), job_id("b-stuck", ACCOUNT_B)]
    assert [j["id"] for j in first["results"] + second["results"]] == [j["id"] for j in stuck]
    assert second["next_cursor"] is None
    assert results(client, "/api/jobs?stuck=1&status=SUCCEEDED") == []
    assert len(results(client, "/api/jobs?stuck=0")) == 14


def test_it_judges_stuck_only_against_the_jobs_a_team_sees(client, member, outsider, fleet_jobs):
    client.force_login(outsider)
    assert [job["id"] for job in results(client, "/api/jobs?stuck=1")] == [
        job_id("b-stuck", ACCOUNT_B)
    ]
    assert {job["account"] for job in results(client, "/api/jobs")} == {ACCOUNT_B}
    client.force_login(member)
    assert [job["id"] for job in results(client, "/api/jobs?stuck=1")] == [job_id("stuck")]


def test_it_filters_jobs_by_repeated_status_and_duration(client, superuser, fleet_jobs):
    client.force_login(superuser)

    failed_or_running = results(client, "/api/jobs?status=FAILED&status=RUNNING&status=RUNNING")
    minute = results(client, "/api/jobs?min_duration_ms=50000&max_duration_ms=70000")
    long = results(client, "/api/jobs?min_duration_ms=500000")

    assert {job["id"] for job in failed_or_running} == {
        job_id("bad"), job_id("stuck"), job_id("young"), job_id("b-stuck", ACCOUNT_B)
    }  # fmt: skip
    assert {job["id"] for job in minute} == {job_id(f"ok-{n}") for n in range(5)}
    assert len(long) == 7 and job_id("stuck") in {job["id"] for job in long}


@pytest.mark.parametrize(
    "url",
    [
        "/api/jobs?status=BOGUS", "/api/jobs?status=Failed", "/api/jobs?status=",
        "/api/jobs?min_duration_ms=-1", "/api/jobs?min_duration_ms=1.5",
        "/api/jobs?max_duration_ms=100000000001", "/api/jobs?max_duration_ms=%D9%A1",
        "/api/jobs?min_duration_ms=10&max_duration_ms=9", "/api/jobs?stuck=2", "/api/jobs?stuck=",
        f"{METRICS}?bucket=0h", f"{METRICS}?bucket=1w", f"{METRICS}?bucket=1m",
        f"{METRICS}?bucket=367d",
        f"{METRICS}?since=yesterday",
        f"{METRICS}?since=2026-11-20T10:00:00Z&until=2026-11-20T09:00:00Z",
        f"{METRICS}?since=0001-01-01T00:00:00Z&until=0001-01-02T00:00:00Z&bucket=366d",
        "/api/events?where=noequals", "/api/events?where=a..b=1", "/api/events?where==1",
        "/api/events?limit=0", "/api/events?limit=501", "/api/events?cursor=nope",
        "/api/events?since=bad", "/api/events?q=a%00b", "/api/events?where=a%3D%00",
        "/api/events?" + "&".join(["where=a=1"] * 11), "/api/events?where=a=" + "x" * 1000,
    ],
)  # fmt: skip
def test_it_refuses_bad_parameters_with_400(client, superuser, fleet_jobs, url):
    client.force_login(superuser)
    response = client.get(url, follow=False)
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"error"}


def test_it_gives_a_state_machines_metrics_per_bucket(client, superuser, fleet_jobs):
    client.force_login(superuser)
    since = (NOW - timedelta(hours=2)).isoformat().replace("+00:00", "Z")

    body = client.get(f"{METRICS}?since={since}&bucket=15m").json()

    assert body["state_machine"] == "Fleet" and body["bucket"] == "15m"
    assert 9 <= len(body["buckets"]) <= 10
    total = body["total"]
    assert (total["started"], total["succeeded"], total["failed"]) == (14, 10, 1)
    assert total["errors"] == [{"error": "Boom", "count": 1}]
    assert sum(bucket["started"] for bucket in body["buckets"]) == 14
    assert [b for b in body["buckets"] if b["errors"]][0]["errors"] == total["errors"]
    assert total["p50_ms"] == 60_000 and total["p95_ms"] == 600_000


def test_it_scopes_metrics_to_the_teams_accounts(client, member, outsider, fleet_jobs):
    client.force_login(outsider)
    outside = client.get("/api/state-machines/Fleet/metrics").json()["total"]
    client.force_login(member)
    inside = client.get("/api/state-machines/Fleet/metrics").json()["total"]

    assert (outside["started"], outside["succeeded"], outside["failed"]) == (6, 5, 0)
    assert outside["p50_ms"] == 600_000 and outside["errors"] == []
    assert (inside["started"], inside["succeeded"], inside["failed"]) == (8, 5, 1)
    assert inside["p50_ms"] == 60_000


def test_it_answers_empty_metrics_for_an_unknown_state_machine(client, superuser, fleet_jobs):
    client.force_login(superuser)
    response = client.get("/api/state-machines/Nope/metrics?bucket=1d")
    assert response.status_code == 200
    assert response.json()["total"]["started"] == 0
    assert client.get("/api/state-machines/" + "x" * 201 + "/metrics").status_code == 404


def ids(client, url: str) -> list[str]:
    return [event["id"] for event in results(client, url)]


def test_it_searches_events_by_detail_field_text_and_function(client, superuser, searchable):
    client.force_login(superuser)

    assert ids(client, "/api/events?where=orderId=1234&account=" + ACCOUNT_A) == ["num"]
    assert ids(client, '/api/events?where=orderId="1234"') == ["str"]
    assert ids(client, "/api/events?where=customer.name=%22Zo%C3%AB%22") == ["zoe"]
    assert ids(client, "/api/events?where=customer.name=ZOË") == ["zoe2"]
    assert ids(client, "/api/events?where=orderId=1234&where=meta.fn=charge") == ["num"]
    assert ids(client, "/api/events?q=zoë") == ["zoe2", "zoe"]
    assert ids(client, "/api/events?q=東京") == ["zoe"]
    assert ids(client, "/api/events?q=%F0%9F%98%80") == ["zoe", "b-secret"]
    assert ids(client, "/api/events?q=ZOE2") == ["zoe2"]
    assert ids(client, "/api/events?fn=charge") == ["str", "num"]
    assert ids(client, "/api/events?source=nope") == []


def test_it_pages_an_event_search_newest_first(client, superuser, searchable):
    client.force_login(superuser)
    everything = ids(client, "/api/events")
    seen, cursor = [], ""
    for _ in range(10):
        body = client.get(f"/api/events?limit=2{cursor}").json()
        seen += [event["id"] for event in body["results"]]
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"
        assert body["next"].endswith(body["next_cursor"])

    assert everything == ["zoe2", "zoe", "str", "b-secret", "num"]  # b-secret: num's second
    assert seen == everything


def test_it_shows_an_outsider_none_of_another_teams_events(client, outsider, searchable):
    client.force_login(outsider)
    assert ids(client, "/api/events") == ["b-secret"]
    assert ids(client, "/api/events?q=%F0%9F%98%80") == ["b-secret"]
    assert ids(client, "/api/events?where=orderId=1234") == ["b-secret"]
    assert ids(client, f"/api/events?account={ACCOUNT_A}") == []


@pytest.mark.parametrize("url", ["/api/events", "/api/state-machines/Fleet/metrics"])
def test_it_refuses_anonymous_users(client, searchable, url):
    response = client.get(url)
    assert response.status_code in (401, 403)
    assert set(response.json()) == {"error"}


def test_it_documents_the_new_parameters_and_endpoints(client, member):
    client.force_login(member)
    paths = json.loads(client.get("/api/schema").content)["paths"]
    assert "/api/events" in {p.rstrip("/") for p in paths}
    jobs = next(v for k, v in paths.items() if k.rstrip("/") == "/api/jobs")["get"]
    status = next(p for p in jobs["parameters"] if p["name"] == "status")
    assert status["schema"]["type"] == "array" and "TIMED_OUT" in status["schema"]["items"]["enum"]
    assert {"stuck", "min_duration_ms", "max_duration_ms"} <= {
        p["name"] for p in jobs["parameters"]
    }


def test_it_answers_a_short_stuck_page_with_a_cursor_and_misses_nothing(
    client, superuser, fleet_jobs, monkeypatch
):
    from events.read import selectors

    monkeypatch.setattr(selectors, "STUCK_PAGE", 1)
    monkeypatch.setattr(selectors, "STUCK_SCAN_PAGES", 1)  # one job read per request
    client.force_login(superuser)
    pages, cursor = [], ""
    for _ in range(10):
        body = client.get(f"/api/jobs?stuck=1&limit=1{cursor}").json()
        pages.append([job["id"] for job in body["results"]])
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"

    assert pages[0] == []  # the young job, newest, is not stuck: a short page
    assert sum(pages, []) == [job_id("stuck"), job_id("b-stuck", ACCOUNT_B)]


def test_a_timelines_job_carries_its_duration_and_stuck_verdict(client, superuser, fleet_jobs):
    client.force_login(superuser)
    job = client.get(f"/api/jobs/{job_id('stuck')}/timeline").json()["job"]
    assert job["stuck"] is True and job["duration_ms"] >= 600_000
    assert re.fullmatch(r"running 10 min, 10(\.\d)?x the p99 of 1 min", job["stuck_reason"])
    young = client.get(f"/api/jobs/{job_id('young')}/timeline").json()["job"]
    assert (young["stuck"], young["stuck_reason"]) == (False, None)


def test_it_picks_a_bucket_that_fits_when_none_is_asked_for(client, superuser, fleet_jobs):
    """30 days in 1 h buckets would be 720 (over 500): the answer picks 3 h, as Grafana would."""
    client.force_login(superuser)
    since = (NOW - timedelta(days=30)).isoformat().replace("+00:00", "Z")

    response = client.get(f"{METRICS}?since={since}")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["bucket"] == "3h" and body["bucket_auto"] is True
    assert 240 <= len(body["buckets"]) <= 500
    assert body["total"]["started"] == 14
    asked = client.get(f"{METRICS}?since={since}&bucket=1h")
    assert asked.status_code == 400 and "500" in asked.json()["error"]
    hour = (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    small = client.get(f"{METRICS}?since={hour}").json()
    assert small["bucket"] == "1m" and small["bucket_auto"] is True
    assert client.get(f"{METRICS}?since={hour}&bucket=15m").json()["bucket_auto"] is False


def test_it_gives_the_failure_rate_and_p99_per_bucket(client, superuser, fleet_jobs):
    client.force_login(superuser)
    since = (NOW - timedelta(hours=2)).isoformat().replace("+00:00", "Z")

    body = client.get(f"{METRICS}?since={since}&bucket=2h").json()

    total = body["total"]
    assert total["failure_rate"] == round(1 / 11, 4)  # 1 failed of 11 finished
    assert total["p99_ms"] == 600_000
    empty = [b for b in body["buckets"] if b["succeeded"] + b["failed"] == 0]
    assert all(b["failure_rate"] is None and b["p99_ms"] is None for b in empty)

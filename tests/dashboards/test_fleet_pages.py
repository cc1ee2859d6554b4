"""The fleet pages through Django's test client: the home list (stuck, filters, sorting,
paging), a state machine's page, and the events search page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from events.ingest.services import InboundMessage, event_ingest
from events.models import Team, TeamAccount

pytestmark = pytest.mark.django_db
ACCOUNT_A = "123456789012"
ACCOUNT_B = "210987654321"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now():
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


def ingest(bodies: list[str]) -> None:
    event_ingest(messages=[InboundMessage(body=body) for body in bodies])


def envelope(event_id, at, detail, *, account=ACCOUNT_A, source="project", detail_type="step"):
    return json.dumps({
        "version": "0", "id": event_id, "detail-type": detail_type, "source": source,
        "account": account, "time": at.isoformat().replace("+00:00", "Z"), "region": "us-east-1",
        "resources": [], "detail": detail,
    })  # fmt: skip


def status_event(machine, name, status, *, start, stop=None, account=ACCOUNT_A, error=None):
    detail = {
        "executionArn": f"arn:aws:states:us-east-1:{account}:execution:{machine}:{name}",
        "name": name, "status": status, "startDate": int(start.timestamp() * 1000),
        "stopDate": int(stop.timestamp() * 1000) if stop else None, "error": error,
    }  # fmt: skip
    kind = {"source": "aws.states", "detail_type": "Step Functions Execution Status Change"}
    return envelope(f"{machine}-{name}-{status}", stop or start, detail, account=account, **kind)


def run(machine, name, *, minutes_ago, ms=None, status="SUCCEEDED", account=ACCOUNT_A, error=None):
    start = NOW - timedelta(minutes=minutes_ago)
    bodies = [status_event(machine, name, "RUNNING", start=start, account=account)]
    if ms is not None:
        stop = start + timedelta(milliseconds=ms)
        bodies.append(status_event(machine, name, status, start=start, stop=stop,
                                   account=account, error=error))  # fmt: skip
    return bodies


@pytest.fixture
def member(django_user_model):
    user = django_user_model.objects.create_user(username="mia", password="pw-123456789")
    team = Team.objects.create(name="alpha")
    team.members.add(user)
    TeamAccount.objects.create(team=team, account=ACCOUNT_A)
    return user


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def fleet():
    """Account A, OrderFlow: six sub-second successes, two failures (Boom, Timeout), one job
    running 10 min (stuck). Account B: its own OrderFlow and a SecretFlow."""
    bodies = []
    for n in range(6):
        bodies += run("OrderFlow", f"ok-{n}", minutes_ago=50 - n, ms=400 + 50 * n)
    bodies += run("OrderFlow", "bad-1", minutes_ago=30, ms=900, status="FAILED", error="Boom")
    bodies += run("OrderFlow", "bad-2", minutes_ago=29, ms=1500, status="FAILED", error="Timeout")
    bodies += run("OrderFlow", "stuck", minutes_ago=10)
    bodies += run("ShipFlow", "ship-1", minutes_ago=20, ms=12_000)
    for n in range(3):
        bodies += run("OrderFlow", f"b-{n}", minutes_ago=40, ms=300, account=ACCOUNT_B)
    bodies += run("SecretFlow", "secret-1", minutes_ago=5, ms=200, account=ACCOUNT_B)
    ingest(bodies)


def job_ids(content: str) -> list[str]:
    return re.findall(r'<tr data-job-id="([^"]+)"', content)


def names(content: str) -> list[str]:
    return [job.rsplit(":", 1)[1] for job in job_ids(content)]


# ---- home ----------------------------------------------------------------------------------


def test_it_shows_a_stuck_job_with_its_reason(member_client, fleet):
    content = member_client.get("/").content.decode()

    row = content.split(f'data-job-id="{ACCOUNT_A}:us-east-1:OrderFlow:stuck"')[1].split("</tr>")[0]
    assert 'class="badge badge-stuck">stuck</span>' in row
    assert re.search(r'class="stuck-reason">running 10 min, \d+(\.\d)?x the p99 of \d+ ms<', row)
    assert content.count('badge-stuck">stuck') == 1


def test_it_filters_stuck_jobs_only(member_client, fleet):
    assert names(member_client.get("/?stuck=1").content.decode()) == ["stuck"]


def test_it_filters_by_several_statuses_and_duration(member_client, fleet):
    failed = names(member_client.get("/?status=FAILED&status=RUNNING").content.decode())
    slow = names(member_client.get("/?min_duration=0.5&max_duration=1").content.decode())

    assert sorted(failed) == ["bad-1", "bad-2", "stuck"]
    assert sorted(slow) == ["bad-1", "ok-2", "ok-3", "ok-4", "ok-5"]  # 500..900 ms


def test_it_matches_the_state_machine_by_part_of_its_name_in_any_case(member_client, fleet):
    content = member_client.get("/?state_machine=shipf").content.decode()
    assert names(content) == ["ship-1"]


def test_it_sorts_by_a_column_both_ways(member_client, fleet):
    down = names(member_client.get("/?sort=-duration&status=SUCCEEDED").content.decode())
    up = names(member_client.get("/?sort=duration&status=SUCCEEDED").content.decode())

    assert down == ["ship-1", "ok-5", "ok-4", "ok-3", "ok-2", "ok-1", "ok-0"]
    assert up == list(reversed(down))
    content = member_client.get("/?sort=duration").content.decode()
    assert 'aria-sort="ascending"' in content


def test_it_pages_with_a_visible_count_and_links(member_client, fleet, monkeypatch):
    monkeypatch.setattr("dashboards.jobs.PAGE_SIZE", 4)

    first = member_client.get("/?sort=started").content.decode()
    third = member_client.get("/?sort=started&page=3").content.decode()

    assert "1–4 of 10 jobs" in first and 'rel="next" href="?sort=started&amp;page=2"' in first
    assert 'rel="prev"' not in first
    assert "9–10 of 10" in third and 'rel="prev" href="?sort=started&amp;page=2"' in third
    assert 'rel="next"' not in third
    seen = names(first) + names(member_client.get("/?sort=started&page=2").content.decode())
    assert len(set(seen + names(third))) == 10  # no job twice, none left out


def test_it_says_no_job_matches_the_filters(member_client, fleet):
    filtered = member_client.get("/?state_machine=nothing-like-it").content.decode()
    assert "No jobs match these filters" in filtered and "No jobs yet" not in filtered


def test_it_says_no_jobs_yet_without_filters(member_client):
    assert "No jobs yet" in member_client.get("/").content.decode()


def test_it_labels_times_utc_and_reads_them_as_utc(member_client, fleet):
    since = (NOW - timedelta(minutes=35)).strftime("%Y-%m-%dT%H:%M:%S")
    content = member_client.get(f"/?since={since}").content.decode()

    assert "Active since (<span data-zone-label>UTC</span>)" in content
    assert "Started (UTC)" in content
    assert sorted(names(content)) == ["bad-1", "bad-2", "ship-1", "stuck"]


def test_it_keeps_other_teams_jobs_off_the_home_page(member_client, fleet):
    content = member_client.get("/").content.decode()
    assert all(job.startswith(ACCOUNT_A) for job in job_ids(content)) and job_ids(content)
    assert "SecretFlow" not in content


def test_it_draws_a_sparkline_card_per_state_machine(member_client, fleet):
    content = member_client.get("/").content.decode()
    data = json.loads(content.split('id="sparks-data" type="application/json">')[1].split("<")[0])

    by_name = {spark["name"]: spark for spark in data}
    assert set(by_name) == {"OrderFlow", "ShipFlow"}
    assert by_name["OrderFlow"]["total"]["failed"] == 2 and sum(by_name["OrderFlow"]["failed"]) == 2
    assert sum(by_name["OrderFlow"]["started"]) == 9 and len(by_name["OrderFlow"]["started"]) >= 24
    assert 'href="/state-machines/OrderFlow/"' in content


# ---- a state machine's page ------------------------------------------------------------------


def test_it_shows_a_state_machines_numbers_as_charts_and_tables(member_client, fleet):
    response = member_client.get("/state-machines/OrderFlow/?window=1h")
    content = response.content.decode()

    assert response.status_code == 200
    data = json.loads(content.split('id="sm-data" type="application/json">')[1].split("<")[0])
    api = member_client.get(
        f"/api/state-machines/OrderFlow/metrics?since={data['buckets'][0]['start']}"
        f"&until={data['buckets'][-1]['end']}&bucket={data['bucket']}"
    ).json()
    assert data["buckets"] == api["buckets"] and data["total"] == api["total"]
    assert data["total"]["started"] == 9 and data["total"]["failed"] == 2  # A's only
    assert {e["error"] for e in data["total"]["errors"]} == {"Boom", "Timeout"}
    assert 'id="chart-counts"' in content and "vendor/chart.umd.min.js" in content
    assert '<td>Boom</td><td class="num">1</td>' in content
    assert "bad-1</a>" in content and "stuck</a>" in content  # links to failed and stuck jobs


@pytest.mark.parametrize("window,bucket", [("1h", "1m"), ("24h", "1h"), ("7d", "6h")])
def test_it_picks_a_bucket_for_the_window(member_client, fleet, window, bucket):
    content = member_client.get(f"/state-machines/OrderFlow/?window={window}").content.decode()
    assert json.loads(content.split('id="sm-data" type="application/json">')[1].split("<")[0])[
        "bucket"] == bucket  # fmt: skip


def test_it_takes_a_custom_window_in_utc(member_client, fleet):
    since = (NOW - timedelta(minutes=35)).strftime("%Y-%m-%dT%H:%M")
    until = (NOW - timedelta(minutes=25)).strftime("%Y-%m-%dT%H:%M")
    content = member_client.get(
        f"/state-machines/OrderFlow/?window=custom&since={since}&until={until}"
    ).content.decode()
    data = json.loads(content.split('id="sm-data" type="application/json">')[1].split("<")[0])
    assert data["bucket"] == "1m" and data["total"]["failed"] == 2
    assert "Since (<span data-zone-label>UTC</span>)" in content


@pytest.mark.parametrize("name", ["NoSuchFlow", "SecretFlow"])
def test_it_shows_an_empty_state_for_an_unknown_or_hidden_state_machine(member_client, fleet, name):
    response = member_client.get(f"/state-machines/{name}/")
    assert response.status_code == 404
    assert 'id="sm-empty"' in response.content.decode()
    assert "chart-counts" not in response.content.decode()


def test_it_refuses_anonymous_users_on_the_state_machine_page(client, fleet):
    response = client.get("/state-machines/OrderFlow/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# ---- events ----------------------------------------------------------------------------------


@pytest.fixture
def searchable():
    at = NOW - timedelta(minutes=5)
    rows = [
        ("e-charge", {"orderId": 1234, "meta": {"fn": "chargeCardFn"}}, "payment.charged"),
        ("e-charge-str", {"orderId": "1234", "meta": {"fn": "chargeCardFn"}}, "payment.charged"),
        ("e-ship", {"note": "😀 shipped", "meta": {"fn": "shipFn"}}, "order.shipped"),
        ("e-jp", {"note": "注文を受けました", "meta": {"fn": "shipFn"}}, "order.received"),
    ]
    bodies = [
        envelope(eid, at + timedelta(seconds=n), detail, detail_type=dtype)
        for n, (eid, detail, dtype) in enumerate(rows)
    ]
    bodies.append(envelope("e-secret", at, {"orderId": 1234, "note": "😀"}, account=ACCOUNT_B))
    ingest(bodies)


def event_ids(content: str) -> list[str]:
    return re.findall(r'class="event-row" data-event-id="([^"]+)"', content)


@pytest.mark.parametrize(
    "query,found",
    [
        ("fn=chargecard", ["e-charge-str", "e-charge"]),
        ("q=%F0%9F%98%80", ["e-ship"]),
        ("q=%E6%B3%A8%E6%96%87", ["e-jp"]),
        ("where=orderId%3D1234", ["e-charge"]),
        ("where=orderId%3D%221234%22", ["e-charge-str"]),
        ("detail_type=ORDER.", ["e-jp", "e-ship"]),
        ("source=PROJ&fn=ship&sort=time", ["e-ship", "e-jp"]),
    ],
)
def test_it_searches_events(member_client, searchable, query, found):
    content = member_client.get(f"/events/?{query}").content.decode()
    assert event_ids(content) == found


def test_it_explains_the_where_syntax_and_utc(member_client, searchable):
    content = member_client.get("/events/").content.decode()
    assert "<code>orderId=1234</code> is the number 1234" in content
    assert "Since (<span data-zone-label>UTC</span>)" in content and "Time (UTC)" in content


def test_it_says_no_event_matches_the_filters(member_client, searchable):
    content = member_client.get("/events/?q=nothing-like-this").content.decode()
    assert "No events match these filters." in content


def test_it_pages_events_with_a_count(member_client):
    at = NOW - timedelta(hours=1)
    ingest([envelope(f"p-{n:03d}", at + timedelta(seconds=n), {"n": n}) for n in range(120)])

    first = member_client.get("/events/").content.decode()
    last = member_client.get("/events/?page=3").content.decode()

    assert "1–50 of 120 events" in first and 'rel="next" href="?page=2"' in first
    assert event_ids(first)[0] == "p-119" and len(event_ids(first)) == 50
    assert "101–120 of 120" in last and event_ids(last)[-1] == "p-000"
    assert 'rel="prev" href="?page=2"' in last and 'rel="next"' not in last


def test_it_keeps_200_events_well_under_728_kb(member_client):
    at = NOW - timedelta(hours=1)
    detail = {"items": [{"sku": f"SKU-{n}", "qty": n, "note": "y" * 200} for n in range(20)]}
    ingest([envelope(f"s-{n:03d}", at + timedelta(seconds=n), detail) for n in range(200)])

    response = member_client.get("/events/?per=200")

    assert len(event_ids(response.content.decode())) == 200
    assert len(response.content) < 250_000


def test_it_hides_another_teams_events(member_client, searchable):
    content = member_client.get("/events/?q=%F0%9F%98%80").content.decode()
    assert "e-secret" not in content

# ruff: noqa: F811  (the fixtures imported from test_fleet_pages are used by name)
"""Honest query states through Django's test client (issue 27): a filter that cannot be read
lists nothing, paging says where and why it stops, the state machine page shows failure rates,
p99 and totals in the charts' units and links each bucket to its jobs, and the architecture
shows each function's failure rate."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.dashboards import test_fleet_pages as pages
from tests.dashboards.test_fleet_pages import (  # noqa: F401  (fixtures, used by name)
    _now,  # autouse: pages.NOW is each test's now, not the collection's (a 1 h window)
    envelope,
    event_ids,
    fleet,
    ingest,
    job_ids,
    member,
    member_client,
    searchable,
)
from tests.events import flows

pytestmark = pytest.mark.django_db


# ---- a filter that cannot be read ----------------------------------------------------------------


@pytest.mark.parametrize("query", ["where=a%3E10", "since=yesterday", "q=ship&until=soon"])
def test_an_invalid_event_filter_shows_the_error_and_no_events(member_client, searchable, query):
    content = member_client.get(f"/events/?{query}").content.decode()

    assert 'class="alert" role="alert"' in content
    assert event_ids(content) == []  # not the unfiltered events
    assert "a filter above could not be read" in content
    assert " events</p>" not in content  # no count of events that were never searched


@pytest.mark.parametrize("query", ["since=yesterday", "until=tomorrow&status=FAILED",
                                   "min_duration=fast"])  # fmt: skip
def test_an_invalid_job_filter_shows_the_error_and_no_jobs(member_client, fleet, query):
    response = member_client.get(f"/?{query}")
    content = response.content.decode()

    assert 'class="alert" role="alert"' in content
    assert job_ids(content) == []
    assert "a filter above could not be read" in content
    live = json.loads(content.split('id="jobs-live" type="application/json">')[1].split("<")[0])
    assert live["invalid"] is True and live["jobs"] == []  # home.js announces none either


@pytest.mark.parametrize("query", ["since=yesterday", "until=soon",
                                   "since=2026-11-20T12:00&until=2026-11-20T11:00"])  # fmt: skip
def test_an_invalid_window_shows_no_state_machine_numbers(member_client, fleet, query):
    content = member_client.get(
        f"/state-machines/OrderFlow/?window=custom&{query}"
    ).content.decode()

    assert 'class="alert" role="alert"' in content and 'id="sm-invalid"' in content
    assert 'id="sm-data"' not in content and 'id="chart-counts"' not in content
    assert "live-indicator" not in content  # nothing on the page would refresh


def test_an_invalid_window_shows_no_architecture(member_client, fleet):
    content = member_client.get("/architecture/?window=custom&since=yesterday").content.decode()
    data = json.loads(content.split('id="arch-data" type="application/json">')[1].split("<")[0])

    assert "since: not a date and time" in content and "could not be read" in content
    assert data["graph"]["nodes"] == [] and data["diff"] is None
    everything = member_client.get("/architecture/?window=all").content.decode()
    assert "sm:OrderFlow" in everything  # what the invalid window used to draw


def test_a_valid_filter_still_lists(member_client, fleet):
    content = member_client.get("/?status=FAILED").content.decode()
    assert len(job_ids(content)) == 2 and "could not be read" not in content


# ---- where paging stops ------------------------------------------------------------------------


@pytest.fixture
def busy():
    """1,030 events in the last hour: more than the 1,000 an event listing reads."""
    at = pages.NOW - timedelta(minutes=50)
    detail = {"meta": {"fn": "busyFn"}}
    ingest([envelope(f"b-{n:04d}", at + timedelta(seconds=2 * n), {"n": n, **detail})
            for n in range(1_030)])  # fmt: skip


def test_paging_stops_at_1000_events_and_says_why_and_how_to_narrow(member_client, busy):
    last = member_client.get("/events/?page=20").content.decode()
    past = member_client.get("/events/?page=21").content.decode()

    assert "951–1,000 of 1,000+ events" in last and 'rel="next"' not in last
    assert 'id="pager-stop"' in last and "Paging stops at the newest 1,000 matching events" in last
    assert event_ids(past) == []
    stop = re.search(r'<p class="pager-stop" id="pager-stop" role="status">(.*?)</p>', past).group(
        1
    )
    assert "newest 1,000 matching events (page 21 is past them)" in stop
    assert "narrow the search" in stop and "Since" in stop
    assert 'href="?page=20"' in stop  # the last page there is
    narrowed = member_client.get("/events/?until=" + (pages.NOW - timedelta(minutes=40)).strftime(
        "%Y-%m-%dT%H:%M:%S")).content.decode()  # fmt: skip
    assert "pager-stop" not in narrowed and "of 300 events" in narrowed


def test_a_page_past_the_last_says_so(member_client, searchable):
    content = member_client.get("/events/?page=9").content.decode()
    assert event_ids(content) == []
    assert "Page 9 is past the last page (1)." in content and 'href="?page=1"' in content


# ---- the state machine page ----------------------------------------------------------------------


def sm_data(content: str) -> dict:
    return json.loads(content.split('id="sm-data" type="application/json">')[1].split("<")[0])


def test_the_totals_use_the_units_of_the_axes(member_client, fleet):
    content = member_client.get("/state-machines/OrderFlow/?window=1h").content.decode()
    totals = content.split('id="sm-totals"')[1].split("</section>")[0]

    # six successes of 400..650 ms, failures of 900 ms and 1.5 s: the axis says "1.5 s"
    assert re.search(r'data-total="p50_ms">\d+ ms<', totals)
    assert 'data-total="p99_ms">1.5 s<' in totals and 'data-total="p95_ms">1.5 s<' in totals
    assert 'data-total="failure_pct">25 %<' in totals  # 2 failed of 8 finished
    assert " ms p50" not in content


def test_it_charts_the_failure_rate_and_p99_per_bucket(member_client, fleet):
    content = member_client.get("/state-machines/OrderFlow/?window=1h").content.decode()
    data = sm_data(content)

    assert 'id="chart-failure-rate"' in content and "p99 ms" in content
    failing = [b for b in data["buckets"] if b["failed"]]
    assert failing and all(b["failure_rate"] == 1.0 for b in failing)
    assert data["total"]["p99_ms"] == 1500 and data["live_ms"] == 3_600_000
    assert data["list_key"] == "state_machine"


def test_each_bucket_links_to_its_jobs_on_the_home_page(member_client, fleet):
    content = member_client.get("/state-machines/OrderFlow/?window=1h").content.decode()
    body = content.split('id="buckets-body">')[1].split("</tbody>")[0]
    failed_links = re.findall(r'<td class="num"><a href="([^"]+)">(\d+)</a></td>', body)

    assert len(failed_links) == 2  # the two minutes with a failure
    for href, count in failed_links:
        query = parse_qs(urlsplit(href.replace("&amp;", "&")).query)
        assert query["state_machine"] == ["OrderFlow"]
        assert set(query["status"]) == {"FAILED", "TIMED_OUT", "ABORTED"}
        listed = pages.names(member_client.get(href.replace("&amp;", "&")).content.decode())
        assert len(listed) == int(count) and all(name.startswith("bad-") for name in listed)
    first = re.search(r'<th scope="row" class="nowrap"><a href="([^"]+)">', body).group(1)
    assert "status" not in parse_qs(urlsplit(first.replace("&amp;", "&")).query)


# ---- function failure rates on the architecture --------------------------------------------------


def test_the_architecture_shows_each_functions_failure_rate(member_client):
    """Four OrderFlow jobs run chargeFn (3 s) then shipFn (200 ms); one fails 1.5 s in, while
    chargeFn runs: chargeFn failed 1 of 4 runs, shipFn none."""
    envelopes = []
    for n in range(4):
        start = pages.NOW - timedelta(minutes=30 - n)
        job = flows.job_envelopes(machine="OrderFlow", start=start, trigger="orderPlaced", steps=[
            flows.Step("chargeFn", "orderPlaced", "payment.charged", 3_000),
            flows.Step("shipFn", "payment.charged", "order.shipped", 200),
        ])  # fmt: skip
        if n == 3:
            stop = job[-1]["detail"]
            stop["status"], stop["error"] = "FAILED", "Card.Declined"
            stop["stopDate"] = stop["startDate"] + 1_500
        envelopes += job
    ingest(flows.bodies(envelopes))

    content = member_client.get("/architecture/?window=1h").content.decode()
    data = json.loads(content.split('id="arch-data" type="application/json">')[1].split("<")[0])

    nodes = {node["id"]: node for node in data["graph"]["nodes"]}
    charge, ship = nodes["fn:chargeFn"], nodes["fn:shipFn"]
    assert (charge["count"], charge["failed"], charge["failure_rate"]) == (4, 1, 0.25)
    assert (ship["count"], ship["failed"], ship["failure_rate"]) == (4, 0, 0.0)
    assert all("failure_rate" not in n for n in nodes.values() if n["kind"] != "fn")
    assert data["graph"]["failures_sampled"] is False

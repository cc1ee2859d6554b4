"""Pages, API routes and links for the execution shapes of real traffic: Distributed Map
children (`Parent/Label` state machines), names with URL-significant characters, express."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from urllib.parse import quote

import pytest

from events.ingest.services import InboundMessage, event_ingest
from tests.events import shapes_traffic as traffic

pytestmark = pytest.mark.django_db

ODD = "run label?#%é"  # a Map Run label with URL-significant and non-ASCII characters


def ingest(envelopes: list[dict]) -> None:
    event_ingest(messages=[InboundMessage(body=body) for body in traffic.bodies(envelopes)])


def hrefs(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]+)"', html)]


@pytest.fixture
def map_child(admin_client):
    start = traffic.now()
    ingest(traffic.map_run("MapFlow", "run-label", 3, start=start, failed=1))
    return traffic.job_id("MapFlow/run-label", "child-2")


def test_it_shows_the_home_page_with_a_map_child_stored(admin_client, map_child):
    response = admin_client.get("/")
    assert response.status_code == 200
    links = hrefs(response.content.decode())
    assert "/state-machines/MapFlow/run-label/" in links


def test_it_serves_the_state_machine_page_of_a_map_run(admin_client, map_child):
    response = admin_client.get("/state-machines/MapFlow/run-label/")
    assert response.status_code == 200
    assert "MapFlow/run-label" in response.content.decode()
    # Its "failed" link lists the run's failed children, one by one.
    failed = next(h for h in hrefs(response.content.decode()) if "status=FAILED" in h)
    assert "map_run=MapFlow%2Frun-label" in failed
    listed = admin_client.get(failed).content.decode()
    assert "/jobs/123456789012:us-east-1:MapFlow/run-label:child-0/" in hrefs(listed)
    metrics = admin_client.get("/api/state-machines/MapFlow/run-label/metrics")
    assert metrics.status_code == 200
    assert metrics.json()["total"]["started"] == 3


def test_it_serves_every_page_and_route_of_a_child_with_url_significant_characters(admin_client):
    start = traffic.now()
    machine = f"MapFlow/{ODD}"
    arn = traffic.execution_arn(machine, "child 1")
    ingest(traffic.run(arn, start=start, seconds=2))
    job = traffic.job_id(machine, "child 1")
    quoted = quote(job, safe="/:")
    for url in (
        f"/jobs/{quoted}/", f"/api/jobs/{quoted}/timeline", f"/api/jobs/{quoted}/events",
        f"/api/job/{quoted}", f"/state-machines/{quote(machine, safe='/')}/",
        f"/api/state-machines/{quote(machine, safe='/')}/metrics",
        f"/jobs/compare/?a={quote(job, safe='')}&b={quote(job, safe='')}",
    ):  # fmt: skip
        assert admin_client.get(url).status_code == 200, url
    assert admin_client.get(f"/api/jobs/{quoted}/timeline").json()["job"]["id"] == job
    # The links the pages make lead to the Map Run's children, the child, its state machine.
    run_link = next(h for h in hrefs(admin_client.get("/").content.decode()) if "map_run=" in h)
    children = admin_client.get("/" + run_link)
    assert children.status_code == 200
    child_link = next(
        h for h in hrefs(children.content.decode()) if h.startswith(f"/jobs/{traffic.ACCOUNT}:")
    )
    child = admin_client.get(child_link)
    assert child.status_code == 200
    assert child.context["job"].id == job
    machine_link = next(h for h in hrefs(child.content.decode()) if "/state-machines/" in h)
    assert admin_client.get(machine_link).status_code == 200


def test_it_lists_links_and_draws_an_express_execution(admin_client):
    start = traffic.now()
    arn = f"arn:aws:states:{traffic.REGION}:{traffic.ACCOUNT}:express:Quick:run-1:{'a' * 8}"
    envelope = traffic.status_event(arn, "RUNNING", start=start)
    envelope["detail"] = {"execution": arn, "meta": {"fn": "work"}}
    done = traffic.status_event(arn, "RUNNING", start=start + timedelta(seconds=1))
    done["detail"] = {"execution": arn, "meta": {"fn": "finish"}}
    ingest([envelope, done])
    job = traffic.job_id("Quick", "run-1")
    assert job in [row["id"] for row in admin_client.get("/api/jobs").json()["results"]]
    assert f"/jobs/{job}/" in hrefs(admin_client.get("/").content.decode())
    assert admin_client.get(f"/jobs/{job}/").status_code == 200
    timeline = admin_client.get(f"/api/jobs/{job}/timeline").json()
    assert [span["fn"] for span in timeline["spans"]] == ["work", "finish"]

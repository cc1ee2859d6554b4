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


def _crawl(client, start: str, *, depth: int, per_kind: int = 3) -> dict[str, int]:
    """{url: status} of every page link reachable from `start` within `depth` clicks; at most
    `per_kind` links of one path and set of query fields (the buckets of a state machine page
    are 24 of one kind)."""
    seen: dict[str, int] = {}
    kinds: dict[tuple, int] = {}
    level = [start]
    for _ in range(depth + 1):
        following = []
        for url in level:
            if url in seen:
                continue
            response = client.get(url)
            seen[url] = response.status_code
            if response.status_code != 200 or "text/html" not in response["Content-Type"]:
                continue
            for link in hrefs(response.content.decode()):
                link = link.split("#")[0]  # a fragment: an encoded '#' is %23
                path, _, query = link.partition("?")
                if not link.startswith("/") or link.startswith(("/static/", "/admin", "/accounts")):
                    continue
                kind = (path if "/jobs/" in path else path.split(":")[0], *sorted(
                    field.split("=")[0] for field in query.split("&") if field))  # fmt: skip
                kinds[kind] = kinds.get(kind, 0) + 1
                if kinds[kind] <= per_kind:
                    following.append(link)
        level = following
    return seen


def test_every_link_from_home_works_with_standard_and_express_map_children_stored(admin_client):
    """Every link two clicks from home, with a Map Run whose label holds '/', '?', '#', '%'
    and 'é' (its parent named by the children's input) and an express Map child stored."""
    start = traffic.now()
    label = "run/label?#%é"
    parent = traffic.execution_arn("MapFlow", "batch-1")
    express = (
        f"arn:aws:states:{traffic.REGION}:{traffic.ACCOUNT}:express:Fast/{label}:c-1:{'e' * 8}"
    )
    ingest([
        *traffic.run(parent, start=start, seconds=60),
        *traffic.map_run("MapFlow", label, 3, start=start, failed=1, parent_arn=parent),
        *traffic.run(express, start=start, seconds=1),
    ])  # fmt: skip

    statuses = _crawl(admin_client, "/", depth=2)

    assert len(statuses) > 40 and {url: s for url, s in statuses.items() if s != 200} == {}
    child = quote(traffic.job_id(f"MapFlow/{label}", "child-0"), safe="/:")
    reached = [
        f"/?map_run={quote(f'MapFlow/{label}', safe='')}",
        f"/jobs/{child}/",  # from the Map Run's list
        f"/jobs/{traffic.job_id('MapFlow', 'batch-1')}/",
        f"/jobs/{quote(traffic.job_id(f'Fast/{label}', 'c-1'), safe='/:')}/",
        f"/state-machines/{quote(f'MapFlow/{label}', safe='/')}/",
        f"/state-machines/{quote(f'Fast/{label}', safe='/')}/",
    ]
    assert [url for url in reached if url not in statuses] == [], sorted(statuses)

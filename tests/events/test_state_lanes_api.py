"""The job view by state through the API (issue 25): timeline lanes are the workflow's states,
fixed per state machine; compare pairs Map iterations by item and picks its B by outcome."""

from __future__ import annotations

import pytest

from .conftest import ingest_bodies
from .state_flows import bodies, job_id, orders_job

pytestmark = pytest.mark.django_db

# job one runs Validate then Enrich and charges ann then bob; job two the other way round, and
# fails waiting for Ship; job three is the newest success
ONE, TWO, THREE = "one", "two", "three"


@pytest.fixture
def jobs():
    ingest_bodies(bodies(
        orders_job(ONE),
        orders_job(TWO, first="Enrich", items=("bob", "ann"), fail=True, t0=1795165300000,
                   slow=250),
        orders_job(THREE, t0=1795165400000),
    ))  # fmt: skip


def get(client, user, url: str):
    client.force_login(user)
    return client.get(url)


def timeline(client, user, name: str) -> dict:
    response = get(client, user, f"/api/jobs/{job_id(name)}/timeline")
    assert response.status_code == 200
    return response.json()


def test_it_lays_spans_out_in_the_lanes_of_their_states(client, member, jobs):
    spans = timeline(client, member, ONE)["spans"]

    by_fn = {span["fn"]: (span["state"], span["lane"]) for span in spans}
    assert by_fn == {
        "validateFn": ("Validate", "Validate"),  # its trigger's stateName
        "enrichFn": ("Enrich", "Enrich"),  # its trigger's executionContext ($$.State.Name)
        "auditFn": ("Enrich", "Enrich"),  # triggered by enrichFn's answer: the same state
        "chargeFn": ("Charge", "Charge"),
        "pingFn": (None, "pingFn"),  # nothing names a state: its function lane, as before
    }
    enrich = [span for span in spans if span["state"] == "Enrich"]
    assert len({span["fn_lane"] for span in enrich}) == 1  # one lane, two Lambdas in it
    assert sorted(span["sub_lane"] for span in enrich) == [0, 1]


def test_it_puts_a_pending_span_in_the_lane_of_its_state(client, member, jobs):
    spans = timeline(client, member, TWO)["spans"]

    pending = [span for span in spans if span["status"] == "pending"]
    assert [(s["state"], s["lane"], s["fn"], s["incoming"]["detailType"]) for s in pending] == [
        ("Ship", "Ship", None, "ship")
    ]


def test_two_jobs_whose_states_came_in_other_orders_get_the_same_lanes_and_colours(
    client, member, jobs
):
    lanes, colours = {}, {}
    for name in (ONE, TWO):
        spans = timeline(client, member, name)["spans"]
        order = sorted({(span["fn_lane"], span["lane"]) for span in spans})
        lanes[name] = [lane for _, lane in order]
        colours[name] = {span["lane"]: span["colour"] for span in spans if span["state"]}
    shared = colours[ONE].keys() & colours[TWO].keys()
    assert shared == {"Validate", "Enrich", "Charge"}
    assert {state: colours[TWO][state] for state in shared} == {
        state: colours[ONE][state] for state in shared
    }
    assert len(set(colours[TWO].values())) == len(colours[TWO]) == 4  # and Ship: all differ
    first_seen = {ONE: ["Validate", "Enrich"], TWO: ["Enrich", "Validate"]}
    for name, states in first_seen.items():  # the jobs really disagree on their own
        spans = sorted(timeline(client, member, name)["spans"], key=lambda span: span["start"])
        seen = [s["state"] for s in spans if s["state"] in states]
        assert list(dict.fromkeys(seen)) == states
    assert lanes[ONE][:3] == lanes[TWO][:3]
    assert set(lanes[ONE][:3]) == {"Validate", "Enrich", "Charge"}
    assert lanes[ONE][-1] == "pingFn"  # lanes with no state after the states'
    assert lanes[TWO][-1] == "pingFn"


def test_it_pairs_map_iterations_by_their_item(client, member, jobs):
    response = get(client, member, f"/api/jobs/compare?a={job_id(ONE)}&b={job_id(TWO)}")

    assert response.status_code == 200
    body = response.json()
    charges = [step for step in body["steps"] if step["lane"] == "chargeFn"]
    # B charged bob first: position would pair ann with bob
    assert [(s["state"], s["item"], s["n"], s["n_b"]) for s in charges] == [
        ("Charge", "item=ann", 0, 1),
        ("Charge", "item=bob", 1, 0),
    ]
    # ann took 100 ms in A and 200 + 250 in B; bob 200 in A and 100 + 250 in B
    assert [s["diff_ms"] for s in charges] == [350, 150]
    assert [step["state"] for step in body["only_b"]] == ["Ship"]
    assert body["totals"]["only_b"] == 1 and body["totals"]["left_out"] == []
    assert body["totals"]["diff_ms"] == sum(step["diff_ms"] for step in body["steps"])


def test_it_compares_with_the_newest_job_of_the_other_outcome_by_default(client, member, jobs):
    to_success = get(client, member, f"/api/jobs/compare?a={job_id(TWO)}")
    to_failure = get(client, member, f"/api/jobs/compare?a={job_id(ONE)}")

    assert to_success.status_code == to_failure.status_code == 200
    assert to_success.json()["b"]["id"] == job_id(THREE)  # the newest success, for a failure
    assert to_failure.json()["b"]["id"] == job_id(TWO)  # a failure, not the newest job, THREE


def test_it_keeps_the_default_partner_within_the_users_accounts(client, outsider, jobs):
    response = get(client, outsider, f"/api/jobs/compare?a={job_id(TWO)}")

    assert response.status_code == 404

"""The job view's endpoints (DESIGN section 9): compare two jobs, export one; team scoping."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import ACCOUNT_A, ingest_bodies, sample_lines
from .test_api import JOB_FAILED, JOB_OK, envelope

SHORT_FAILED = "EventDrivenMachine:b87e4e2b-537d-4128-83a9-e88963b759f5"
HOSTILE_JOB = f"{ACCOUNT_A}:us-east-1:Hostile:h2"
HOSTILE_TEXT = 'evil:fn#1;\nsection pwned %% "x"'
COMPARE = f"/api/jobs/compare?a={JOB_OK}&b={JOB_FAILED}"
SAFE_NAME = re.compile(r'attachment; filename="edobs-[a-z0-9-]+-[0-9a-f]{12}\.json"')
TASK = re.compile(r"^    [\w .()/-]+ :(crit, |active, )?s\d+, \d+, \d+$")

pytestmark = pytest.mark.django_db


@pytest.fixture
def events():
    """The samples (account A) and a job whose fn and detail-types are hostile."""
    ingest_bodies(sample_lines())
    meta = {"stateMachine": "Hostile", "job": "h2"}
    ingest_bodies(
        [
            envelope("h2-1", time="2026-11-20T10:00:00Z", detail={"meta": meta},
                     detail_type=HOSTILE_TEXT),
            envelope("h2-2", time="2026-11-20T10:00:02Z", detail_type=HOSTILE_TEXT + " done",
                     detail={"meta": {**meta, "fn": HOSTILE_TEXT, "incoming": {
                         "source": "project", "detailType": HOSTILE_TEXT, "id": "h2-1"}}}),
        ]
    )  # fmt: skip


def get(client, user, url: str, **headers):
    if user is not None:
        client.force_login(user)
    return client.get(url, headers=headers)


# --- compare ------------------------------------------------------------------------------------


def test_it_compares_two_jobs(client, superuser, events):
    response = get(client, superuser, COMPARE)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"a", "b", "steps", "only_a", "only_b", "totals"}
    assert (body["a"]["id"], body["b"]["id"]) == (JOB_OK, JOB_FAILED)
    first = body["steps"][0]
    assert (first["state"], first["lane"], first["n"], first["diff_ms"]) == (
        "GetMultiple",
        "getMultipleFn",
        0,
        2000,
    )
    assert first["fields"][0]["path"] == "names"
    assert (body["only_a"][-1]["state"], body["only_a"][-1]["lane"]) == (
        "PostProcessAll",
        "postProcessAllFn",
    )
    assert body["only_b"][-1]["lane"] == "awaiting generateReport"
    assert body["totals"]["steps"] == len(body["steps"]) and body["totals"]["left_out"] == []


def test_it_compares_jobs_named_by_short_forms(client, member, events):
    response = get(client, member, f"/api/jobs/compare/?a={SHORT_FAILED}&b={SHORT_FAILED}")

    assert response.status_code == 200
    assert response.json()["a"]["id"] == response.json()["b"]["id"] == JOB_FAILED
    assert response.json()["only_a"] == []


@pytest.mark.parametrize("query", [f"a={JOB_OK}&b=", f"b={JOB_OK}", "", f"a=&b={JOB_OK}"])
def test_it_refuses_a_comparison_without_both_jobs(client, superuser, events, query):
    response = get(client, superuser, f"/api/jobs/compare?{query}")

    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert "required" in response.json()["error"]


@pytest.mark.parametrize("query", [f"a={JOB_OK}&b=nope", f"a=nope&b={JOB_OK}"])
def test_it_answers_404_for_an_unknown_job_to_compare(client, superuser, events, query):
    response = get(client, superuser, f"/api/jobs/compare?{query}")

    assert response.status_code == 404
    assert response.json() == {"error": "job not found"}


def test_it_hides_jobs_from_an_outsider_in_a_comparison(client, outsider, events):
    response = get(client, outsider, COMPARE)

    assert response.status_code == 404
    assert response.json() == {"error": "job not found"}


def test_it_needs_a_login_to_compare(client, events):
    assert get(client, None, COMPARE).status_code in (401, 403)


# --- export -------------------------------------------------------------------------------------


def test_it_exports_every_event_as_a_json_download(client, member, events):
    response = get(client, member, f"/api/jobs/{JOB_FAILED}/export?format=json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert SAFE_NAME.fullmatch(response["Content-Disposition"])
    assert "b87e4e2b-537d-4128-83a9-e88963b759f5" in response["Content-Disposition"]
    body = response.json()
    assert body["job"]["id"] == JOB_FAILED
    ats = [event["at"] for event in body["events"]]
    assert len(ats) == body["job"]["event_count"] == 29 and ats == sorted(ats)
    assert body["events"][0]["id"].startswith("250e7b34")
    assert {event["job"] for event in body["events"]} == {JOB_FAILED}


def test_it_exports_json_by_default_whatever_the_accept_header(client, member, events):
    response = get(client, member, f"/api/jobs/{JOB_OK}/export", accept="text/html")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert len(response.json()["events"]) == 22


def test_it_names_a_hostile_job_file_safely(client, superuser, events):
    response = get(client, superuser, f"/api/jobs/{HOSTILE_JOB}/export")

    assert response.status_code == 200
    assert re.fullmatch(r'attachment; filename="edobs-h2-[0-9a-f]{12}\.json"',
                        response["Content-Disposition"])  # fmt: skip


def test_it_exports_a_mermaid_gantt_chart(client, member, events):
    response = get(client, member, f"/api/jobs/{JOB_FAILED}/export?format=mermaid")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    lines = response.content.decode().splitlines()
    assert lines[:4] == [
        "gantt",
        "    title EventDrivenMachine b87e4e2b-537d-4128-83a9-e88963b759f5",
        "    dateFormat x",
        "    axisFormat %H:%M:%S",
    ]
    sections = [line for line in lines if line.startswith("    section ")]
    assert sections[0] == "    section getMultipleFn"
    assert sections[-1] == "    section awaiting generateReport"
    tasks = [line for line in lines[4:] if line not in sections]
    assert len(tasks) == 20 and all(TASK.fullmatch(task) for task in tasks)
    assert tasks[-1].endswith(":active, s19, 1795165355000, 1795165362000")  # to the last end
    assert sum(":crit, " in task for task in tasks) == 1


def test_it_keeps_hostile_text_out_of_the_mermaid_syntax(client, superuser, events):
    response = get(client, superuser, f"/api/jobs/{HOSTILE_JOB}/export?format=mermaid")

    assert response.status_code == 200
    lines = response.content.decode().splitlines()
    assert lines[4] == "    section evil fn 1 section pwned x"
    assert TASK.fullmatch(lines[5]) and lines[5].startswith("    1. evil fn 1 section pwned x to")
    assert len(lines) == 6
    assert not any(char in "".join(lines[4:]).replace(" :", "") for char in '#;%"')


@pytest.mark.parametrize("wanted", ["xml", "", "JSON", "api"])
def test_it_refuses_another_export_format(client, superuser, events, wanted):
    response = get(client, superuser, f"/api/jobs/{JOB_OK}/export?format={wanted}")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "format" in response.json()["error"]


@pytest.mark.parametrize("wanted", ["json", "mermaid"])
def test_it_answers_404_for_an_unknown_job_to_export(client, superuser, events, wanted):
    response = get(client, superuser, f"/api/jobs/nope/export?format={wanted}")

    assert response.status_code == 404
    assert response.json() == {"error": "job not found"}


@pytest.mark.parametrize("wanted", ["json", "mermaid"])
def test_it_hides_a_job_from_an_outsider_in_an_export(client, outsider, events, wanted):
    response = get(client, outsider, f"/api/jobs/{JOB_FAILED}/export?format={wanted}")

    assert response.status_code == 404
    assert json.loads(response.content) == {"error": "job not found"}


def test_it_needs_a_login_to_export(client, events):
    response = get(client, None, f"/api/jobs/{JOB_OK}/export?format=mermaid")

    assert response.status_code in (401, 403)
    assert response["Content-Type"] == "application/json"


def test_it_gives_span_status_and_critical_path_in_the_timeline(client, member, events):
    body = get(client, member, f"/api/jobs/{JOB_FAILED}/timeline").json()

    statuses = [span["status"] for span in body["spans"]]
    assert statuses.count("pending") == 1 and statuses.count("failed") == 1
    assert body["critical_path"] == [0, 1, 3, 7, 9, 13, 17, 19]

"""The compare page (/jobs/compare/), the styled 404 and the favicon, through Django's test client.

The sample jobs (tests/samples/part1_jobs.jsonl) are two successes and a failure of one state
machine; copies of them go to another team's account and to a second state machine.
"""

from __future__ import annotations

import json
import re
import uuid
from html import unescape

import pytest
from django.test import Client
from django.utils.html import escape

from events.models import Team, TeamAccount
from tests.dashboards import test_pages
from tests.dashboards.test_pages import (
    ACCOUNT_A,
    ACCOUNT_B,
    IMG,
    MACHINE,
    SCRIPT,
    ingest,
    sample_bodies,
)

member, member_client = test_pages.member, test_pages.member_client  # the fixtures

pytestmark = pytest.mark.django_db

OTHER_MACHINE = "NightlyReport"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def copied(bodies: list[str], **replace: str) -> list[str]:
    """The same jobs with fresh event ids and execution names (consistently, so triggers still
    pair), and the given strings replaced: another account, another state machine."""
    fresh: dict[str, str] = {}
    text = UUID.sub(lambda m: fresh.setdefault(m.group(0), str(uuid.uuid4())), "\n".join(bodies))
    for old, new in replace.items():
        text = text.replace(old, new)
    return text.splitlines()


@pytest.fixture
def jobs(member_client):
    ingest(sample_bodies())
    ingest(copied(sample_bodies(), **{ACCOUNT_A: ACCOUNT_B}))
    ingest(copied(sample_bodies(), **{MACHINE: OTHER_MACHINE}))
    listed = member_client.get("/api/jobs", {"state_machine": MACHINE}).json()["results"]
    return {
        "ok": next(job for job in listed if job["status"] == "SUCCEEDED"),
        "failed": next(job for job in listed if job["status"] == "FAILED"),
        "other": member_client.get("/api/jobs", {"state_machine": OTHER_MACHINE}).json()["results"][
            0
        ],
    }


@pytest.fixture
def outsider_client(django_user_model):
    """A second browser: `client` is the member's."""
    client = Client()
    user = django_user_model.objects.create_user(username="otto", password="pw-123456789")
    team = Team.objects.create(name="beta")
    team.members.add(user)
    TeamAccount.objects.create(team=team, account=ACCOUNT_B)
    client.force_login(user)
    return client


def options(content: str, name: str) -> list[str]:
    select = content.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
    return [unescape(value) for value in re.findall(r'<option value="([^"]*)"', select)]


def test_it_sends_anonymous_users_to_login(client):
    response = client.get("/jobs/compare/", {"a": "x", "b": "y"})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/jobs/compare/")


def test_it_offers_only_the_teams_state_machines_and_jobs(member_client, jobs):
    start = member_client.get("/jobs/compare/")
    picked = member_client.get("/jobs/compare/", {"state_machine": MACHINE})

    assert start.status_code == picked.status_code == 200
    assert options(start.content.decode(), "state_machine") == ["", MACHINE, OTHER_MACHINE]
    offered = options(picked.content.decode(), "a")
    assert len(offered) == 3 and all(job_id.startswith(f"{ACCOUNT_A}:") for job_id in offered)
    assert options(picked.content.decode(), "b") == offered
    assert 'name="state_machine" value="EventDrivenMachine"' in picked.content.decode()


def test_it_preselects_a_success_against_the_newest_failure(member_client, jobs):
    content = member_client.get("/jobs/compare/", {"state_machine": MACHINE}).content.decode()

    def chosen(name):
        select = content.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
        return unescape(re.search(r'<option value="([^"]*)" selected', select).group(1))

    assert chosen("b") == jobs["failed"]["id"]  # the newest job
    assert chosen("a") != jobs["failed"]["id"]
    assert chosen("a").startswith(f"{ACCOUNT_A}:us-east-1:{MACHINE}:")


def test_a_link_with_one_job_preselects_a_partner_of_another_status(member_client, jobs):
    """What a "Compare with…" link from a job page gives: that job as A, a failure for a
    success (or the other way round) as B, ready to compare."""
    response = member_client.get("/jobs/compare/", {"a": jobs["ok"]["id"]})

    assert response.status_code == 200
    content = response.content.decode()
    assert f'<option value="{jobs["ok"]["id"]}" selected' in content.split('name="b"')[0]
    assert f'<option value="{jobs["failed"]["id"]}" selected' in content.split('name="b"')[1]
    assert 'id="compare-steps"' not in content  # not compared until asked


def test_it_shows_matched_steps_with_signed_deltas(member_client, jobs):
    response = member_client.get(
        "/jobs/compare/", {"a": jobs["ok"]["id"], "b": jobs["failed"]["id"]}
    )

    assert response.status_code == 200
    content = response.content.decode()
    api = member_client.get(
        "/api/jobs/compare", {"a": jobs["ok"]["id"], "b": jobs["failed"]["id"]}
    ).json()
    steps = content.split('id="compare-steps"', 1)[1].split("</table>", 1)[0]
    assert steps.count('<tr data-lane="') == len(api["steps"]) > 0
    deltas = re.findall(r'class="delta delta-(\w+)" data-ms="(-?\d*)">([^<]+)<', steps)
    assert len(deltas) == len(api["steps"])
    for css, ms, text in deltas:
        if int(ms) > 0:
            assert css == "slower" and text.startswith("+"), text
        elif int(ms) < 0:
            assert css == "faster" and text.startswith("−"), text
        else:
            assert css == "same" and text == "±0 ms"
    assert {css for css, _, _ in deltas} & {"slower", "faster"}


def test_it_lists_the_steps_only_one_side_has(member_client, jobs):
    content = member_client.get(
        "/jobs/compare/", {"a": jobs["ok"]["id"], "b": jobs["failed"]["id"]}
    ).content.decode()

    only_a = content.split('id="only-a"', 1)[1].split("</section>", 1)[0]
    only_b = content.split('id="only-b"', 1)[1].split("</section>", 1)[0]
    assert "postProcessAllFn" in only_a  # the success reached the report; the failure did not
    assert "awaiting generateReport" in only_b and "never answered" in only_b
    api = member_client.get(
        "/api/jobs/compare", {"a": jobs["ok"]["id"], "b": jobs["failed"]["id"]}
    ).json()
    assert only_b.count("<li ") == len(api["only_b"]) > 1  # Map iterations of other users


def test_it_lists_the_detail_fields_that_differ(member_client, jobs):
    content = member_client.get(
        "/jobs/compare/", {"a": jobs["ok"]["id"], "b": jobs["failed"]["id"]}
    ).content.decode()

    fields = content.split('id="compare-fields"', 1)[1].split("</table>", 1)[0]
    paths = re.findall(r'<td class="mono field-path">([^<]+)</td>', fields)
    api = member_client.get(
        "/api/jobs/compare", {"a": jobs["ok"]["id"], "b": jobs["failed"]["id"]}
    ).json()
    assert "names" in paths
    assert set(paths) == {f["path"] for step in api["steps"] for f in step["fields"]}
    assert not {"TaskToken", "execution", "meta.incoming.id"} & set(paths)
    names = next(f for step in api["steps"] for f in step["fields"] if f["path"] == "names")
    for side in ("a", "b"):  # lists as JSON
        assert escape(json.dumps(names[side], ensure_ascii=False)) in fields


def test_an_outsider_gets_the_styled_404_for_another_teams_job(outsider_client, jobs):
    response = outsider_client.get(
        "/jobs/compare/", {"a": jobs["ok"]["id"], "b": jobs["failed"]["id"]}
    )

    assert response.status_code == 404
    content = response.content.decode()
    assert "Page not found" in content and 'href="/"' in content
    assert jobs["ok"]["name"] not in content


def test_an_outsider_is_not_offered_another_teams_jobs(outsider_client, jobs):
    content = outsider_client.get("/jobs/compare/", {"state_machine": MACHINE}).content.decode()

    offered = options(content, "a")
    assert len(offered) == 3 and all(job_id.startswith(f"{ACCOUNT_B}:") for job_id in offered)
    assert options(content, "state_machine") == [MACHINE]  # their own copy only


def test_it_answers_404_for_an_unknown_or_impossible_job(member_client, jobs):
    for job_id in (f"{MACHINE}:no-such-job", "x" * 2000, "a\x00b"):
        response = member_client.get("/jobs/compare/", {"a": job_id, "b": jobs["ok"]["id"]})
        assert response.status_code == 404, job_id
        assert "Page not found" in response.content.decode()


def test_it_explains_jobs_of_different_state_machines(member_client, jobs):
    response = member_client.get(
        "/jobs/compare/", {"a": jobs["ok"]["id"], "b": jobs["other"]["id"]}
    )

    assert response.status_code == 400
    content = response.content.decode()
    assert "run different state machines" in content
    assert MACHINE in content and OTHER_MACHINE in content
    assert 'id="compare-steps"' not in content


def test_it_escapes_hostile_step_names_and_values(member_client, jobs):
    arn = jobs["ok"]["execution_arn"]
    envelope = json.loads(copied(sample_bodies()[:1])[0])  # a `start` event, made hostile
    envelope.update(
        {"detail-type": "done", "time": jobs["ok"]["started_at"]},
        detail={"execution": arn, "note": SCRIPT, "meta": {"fn": IMG}},
    )
    ingest([json.dumps(envelope)])

    content = member_client.get(
        "/jobs/compare/", {"a": jobs["failed"]["id"], "b": jobs["ok"]["id"]}
    ).content.decode()

    assert SCRIPT not in content and IMG not in content
    assert "&lt;img src=x onerror=alert(1)&gt;" in content


def test_the_job_page_of_an_unknown_job_is_the_styled_404(member_client, jobs):
    response = member_client.get(f"/jobs/{MACHINE}:no-such-job/")

    assert response.status_code == 404
    content = response.content.decode()
    assert 'class="card error-card"' in content and "Back to the latest jobs" in content
    assert 'rel="icon"' in content


def test_the_favicon_answers_without_a_login(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"] == "/static/dashboards/favicon.svg"

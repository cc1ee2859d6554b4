"""The admin: every page renders for a superuser with hostile content escaped; requeue works;
staff who are not superusers see only their teams' rows."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.urls import reverse

from events.models import Connection, Event, Job, RejectedMessage, Team, TeamAccount

from .conftest import ACCOUNT_A, ACCOUNT_B, ingest_bodies, sample_lines

EVIL = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;"

pytestmark = pytest.mark.django_db


@pytest.fixture
def hostile():
    """An event, a job, a rejected message and a team, each carrying markup."""
    body = {
        "version": "0", "id": f"id-{EVIL}", "detail-type": EVIL, "source": EVIL,
        "account": ACCOUNT_A, "time": "2026-11-20T09:00:00Z", "region": "us-east-1",
        "resources": [EVIL],
        "detail": {"note": EVIL, "meta": {"stateMachine": "M", "job": EVIL, "fn": EVIL}},
    }  # fmt: skip
    report = ingest_bodies([json.dumps(body), f'{{"not": "{EVIL}"}}'])
    assert report.outcomes == ["stored", "quarantined"]
    team = Team.objects.create(name=EVIL)
    TeamAccount.objects.create(team=team, account=ACCOUNT_A)
    return {
        "event": Event.objects.get(),
        "job": Job.objects.get(),
        "rejected": RejectedMessage.objects.get(),
        "team": team,
    }


def _pages(hostile) -> list[str]:
    event, job = hostile["event"], hostile["job"]
    rejected, team = hostile["rejected"], hostile["team"]
    return [
        "/admin/",
        "/admin/events/event/",
        "/admin/events/event/?source=" + "x",
        f"/admin/events/event/?q={event.event_id}",
        f"/admin/events/event/{event.pk}/change/",
        "/admin/events/job/",
        reverse("admin:events_job_change", args=[quote(job.pk)]),
        "/admin/events/rejectedmessage/",
        f"/admin/events/rejectedmessage/{rejected.pk}/change/",
        "/admin/events/team/",
        f"/admin/events/team/{team.pk}/change/",
        "/admin/events/team/add/",
    ]


def test_it_renders_every_admin_page_with_hostile_content_escaped(client, superuser, hostile):
    client.force_login(superuser)
    for url in _pages(hostile):
        response = client.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        assert EVIL not in content, url
    event_page = client.get(f"/admin/events/event/{hostile['event'].pk}/change/").content.decode()
    assert ESCAPED in event_page
    assert "&quot;note&quot;" in event_page
    job_page = client.get(reverse("admin:events_job_change", args=[quote(hostile["job"].pk)]))
    assert ESCAPED in job_page.content.decode()


def test_it_keeps_non_staff_out_of_the_admin(client, member, hostile):
    client.force_login(member)
    response = client.get("/admin/events/event/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_it_requeues_a_rejected_message_to_the_queue(client, superuser, hostile, sqs_queue):
    rejected = hostile["rejected"]
    client.force_login(superuser)

    response = client.post(
        "/admin/events/rejectedmessage/",
        {"action": "requeue", "_selected_action": [rejected.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Requeued 1 messages." in response.content.decode()
    received = sqs_queue.client.receive_message(QueueUrl=sqs_queue.url, MaxNumberOfMessages=10)
    assert [message["Body"] for message in received["Messages"]] == [rejected.body]
    rejected.refresh_from_db()
    assert rejected.requeued_at is not None


def test_it_filters_events_by_job(admin_client):
    ingest_bodies(sample_lines())
    job = Job.objects.order_by("-last_event_at").first()

    response = admin_client.get("/admin/events/event/", {"job": job.id})

    assert response.status_code == 200
    assert response.context["cl"].result_count == job.event_count


# Staff who are not superusers: only their teams' rows (events.admin).
VIEW = ["view_event", "view_job", "view_connection", "view_rejectedmessage", "view_team"]


@pytest.fixture
def staff_b(outsider):
    """The outsider (team B, ACCOUNT_B) as staff with every view permission."""
    outsider.is_staff = True
    outsider.save()
    outsider.user_permissions.set(Permission.objects.filter(codename__in=VIEW))
    return outsider


@pytest.fixture
def two_accounts(member, hostile):
    """The samples and the hostile rows in ACCOUNT_A; one sample job copied to ACCOUNT_B."""
    ingest_bodies(sample_lines())
    job_a = Job.objects.filter(account=ACCOUNT_A).order_by("-last_event_at").first()
    copies = [_in_account_b(event.raw, job_a.name) for event in job_a.events.all()]
    assert set(ingest_bodies(copies).outcomes) == {"stored"}
    return {"job_a": job_a, "job_b": Job.objects.get(account=ACCOUNT_B), **hostile}


def _in_account_b(envelope: dict, job_name: str) -> str:
    """The envelope as another execution in ACCOUNT_B (its ARNs and meta too)."""
    text = json.dumps(dict(envelope, id=envelope["id"] + "-b"))
    return text.replace(ACCOUNT_A, ACCOUNT_B).replace(job_name, "b-" + job_name)


def _changelist(client, url: str):
    response = client.get(url)
    assert response.status_code == 200, url
    return response, list(response.context["cl"].result_list)


def test_it_shows_staff_only_the_events_of_their_teams_accounts(client, staff_b, two_accounts):
    client.force_login(staff_b)

    response, events = _changelist(client, "/admin/events/event/")

    assert events and {event.account for event in events} == {ACCOUNT_B}
    content = response.content.decode()
    assert ACCOUNT_A not in content  # nor in the account filter's choices
    assert two_accounts["job_a"].id not in content  # nor in the recent-job filter's
    assert two_accounts["job_b"].id in content
    assert Event.objects.filter(account=ACCOUNT_A).count() > len(events)


def test_it_shows_staff_only_the_jobs_of_their_teams_accounts(client, staff_b, two_accounts):
    client.force_login(staff_b)

    response, jobs = _changelist(client, "/admin/events/job/")

    assert [job.id for job in jobs] == [two_accounts["job_b"].id]
    assert ACCOUNT_A not in response.content.decode()


def test_it_answers_404_for_another_teams_event_and_job(client, staff_b, two_accounts):
    client.force_login(staff_b)
    event_a = two_accounts["job_a"].events.first()
    job_a, job_b = two_accounts["job_a"], two_accounts["job_b"]

    for url in (
        f"/admin/events/event/{event_a.pk}/change/",
        reverse("admin:events_job_change", args=[quote(job_a.pk)]),
        reverse("admin:events_job_history", args=[quote(job_a.pk)]),
    ):
        assert client.get(url).status_code == 404, url
    own = client.get(reverse("admin:events_job_change", args=[quote(job_b.pk)]))
    assert own.status_code == 200
    assert ACCOUNT_A not in own.content.decode()


def test_it_shows_rejected_bodies_to_superusers_only(client, staff_b, superuser, two_accounts):
    rejected = two_accounts["rejected"]
    client.force_login(staff_b)

    assert client.get("/admin/events/rejectedmessage/").status_code == 403
    assert client.get(f"/admin/events/rejectedmessage/{rejected.pk}/change/").status_code == 404
    assert "rejectedmessage" not in client.get("/admin/").content.decode()
    client.force_login(superuser)
    _, shown = _changelist(client, "/admin/events/rejectedmessage/")
    assert shown == [rejected]


def test_it_shows_staff_only_their_teammates_connections(
    client, staff_b, member, django_user_model, two_accounts
):  # fmt: skip
    teammate = django_user_model.objects.create_user("carol", password="pw-carol-123")
    staff_b.teams.get().members.add(teammate)
    for user in (staff_b, teammate, member):
        Connection.objects.create(channel_name=f"c!{user.username}", user=user, path="/ws/")
    client.force_login(staff_b)

    _, connections = _changelist(client, "/admin/events/connection/")

    assert {c.user for c in connections} == {staff_b, teammate}
    alices = Connection.objects.get(user=member)
    response = client.get(f"/admin/events/connection/{alices.pk}/change/")
    assert response.status_code == 404


def test_it_shows_staff_only_their_own_teams(client, staff_b, two_accounts):
    client.force_login(staff_b)

    _, teams = _changelist(client, "/admin/events/team/")

    assert [team.name for team in teams] == ["Team B"]


def test_it_shows_superusers_every_account(client, superuser, two_accounts):
    client.force_login(superuser)

    _, jobs = _changelist(client, "/admin/events/job/")

    assert {job.account for job in jobs} == {ACCOUNT_A, ACCOUNT_B}

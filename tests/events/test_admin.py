"""The admin: every page renders for a superuser with hostile content escaped; requeue works."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from events.models import Event, Job, RejectedMessage, Team, TeamAccount

from .conftest import ACCOUNT_A, ingest_bodies, sample_lines

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

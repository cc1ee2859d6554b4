"""The pages, through Django's test client: access, team scoping, content, hostile events."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings

from events.ingest.services import InboundMessage, event_ingest
from events.models import Team, TeamAccount

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
ACCOUNT_A = "123456789012"
ACCOUNT_B = "210987654321"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
MACHINE = "EventDrivenMachine"


def sample_bodies(name: str = "part1_jobs.jsonl") -> list[str]:
    return [line for line in (SAMPLES / name).read_text().splitlines() if line.strip()]


def ingest(bodies: list[str]) -> None:
    event_ingest(messages=[InboundMessage(body=body) for body in bodies])


def hostile_envelope(*, account: str = ACCOUNT_A, name: str = "hostile-job") -> dict:
    arn = f"arn:aws:states:us-east-1:{account}:execution:{MACHINE}:{name}"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": SCRIPT,
        "source": IMG,
        "account": account,
        "time": "2026-11-20T09:30:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "execution": arn,
            "stateName": SCRIPT,
            "note": IMG,
            "meta": {
                "fn": SCRIPT,
                "incoming": {"source": IMG, "detailType": SCRIPT},
                "outgoing": {"source": IMG, "detailType": SCRIPT},
            },
        },
    }


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
def sample_jobs():
    ingest(sample_bodies())


def first_job_id(client) -> str:
    return client.get("/api/jobs").json()["results"][0]["id"]


@pytest.mark.parametrize("url", ["/", "/architecture/", "/events/", "/jobs/EventDrivenMachine:x/"])
def test_it_sends_anonymous_users_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "url,shows",
    [
        ("/", 'data-job-id="'),
        ("/architecture/?window=all", "getMultipleFn"),
        ("/events/", 'class="event-row"'),
    ],
)
def test_it_shows_each_page_to_a_member(member_client, sample_jobs, url, shows):
    response = member_client.get(url)
    assert response.status_code == 200
    content = response.content.decode()
    assert "mia" in content and 'action="/accounts/logout/"' in content
    assert shows in content  # the sample jobs' data, not an empty page


def test_it_lists_the_latest_jobs_with_status_badges(member_client, sample_jobs):
    content = member_client.get("/").content.decode()
    assert content.count('data-job-id="') == 3
    assert "badge-failed" in content and "badge-succeeded" in content
    assert 'id="jobs-live"' in content


def test_it_filters_jobs_by_status(member_client, sample_jobs):
    content = member_client.get("/?status=FAILED").content.decode()
    assert content.count('data-job-id="') == 1
    assert "badge-failed" in content and "badge-succeeded" not in content


def test_it_draws_one_bar_per_span_on_the_job_page(member_client, sample_jobs):
    job_id = first_job_id(member_client)
    spans = member_client.get(f"/api/jobs/{job_id}/timeline").json()["spans"]
    response = member_client.get(f"/jobs/{job_id}/")
    assert response.status_code == 200
    content = response.content.decode()
    # the table of spans: the timeline's text alternative (timeline.js draws the bars)
    assert content.count('<tr data-key="') == len(spans) > 0
    assert 'id="timeline-data"' in content and "dashboards/timeline.js" in content
    assert (
        content.count('class="event-row"')
        == member_client.get("/api/jobs").json()["results"][0]["event_count"]
    )


def test_it_marks_the_failure_on_the_failed_job(member_client, sample_jobs):
    failed = member_client.get("/api/jobs?status=FAILED").json()["results"][0]
    content = member_client.get(f"/jobs/{failed['id']}/").content.decode()
    assert 'class="status-failed"' in content and 'class="status-pending"' in content
    assert "<td>awaiting generateReport</td>" in content
    assert 'class="error-box"' in content


def test_it_accepts_a_bare_execution_name(member_client, sample_jobs):
    job = member_client.get("/api/jobs").json()["results"][0]
    response = member_client.get(f"/jobs/{job['name']}/")
    assert response.status_code == 200
    content = response.content.decode()
    assert job["name"] in content
    assert content.count('class="event-row"') == job["event_count"]


def test_it_hides_another_teams_job(member_client, sample_jobs, client, django_user_model):
    other = hostile_envelope(account=ACCOUNT_B, name="secret-job")
    ingest([json.dumps(other)])
    hidden = member_client.get(f"/jobs/{MACHINE}:secret-job/")
    home = member_client.get("/").content.decode()
    events = member_client.get("/events/").content.decode()
    assert hidden.status_code == 404
    assert "secret-job" not in hidden.content.decode()
    assert "secret-job" not in home and home.count('data-job-id="') == 3  # theirs still there
    assert "secret-job" not in events and 'class="event-row"' in events
    # ...while a user of that account's team does see it on the same pages.
    owner = django_user_model.objects.create_user(username="ole", password="pw-123456789")
    team = Team.objects.create(name="beta")
    team.members.add(owner)
    TeamAccount.objects.create(team=team, account=ACCOUNT_B)
    client.force_login(owner)
    assert "secret-job" in client.get(f"/jobs/{MACHINE}:secret-job/").content.decode()
    assert "secret-job" in client.get("/").content.decode()


def test_it_draws_the_architecture_with_counts(member_client, sample_jobs):
    response = member_client.get("/architecture/?window=all")
    content = response.content.decode()

    assert 'id="arch-viewport"' in content and "dashboards/vendor/elk.bundled.js" in content
    data = response.context["data"]
    assert "fn:getMultipleFn" in {node["id"] for node in data["graph"]["nodes"]}
    assert data["diff"] is None and data["base"] is None
    # the edges as a table, for readers without the picture
    assert "<td>getMultipleFn</td>" in content and "<td>×" in content and "<th>p95</th>" in content


def test_it_compares_the_architecture_with_an_empty_period_as_nothing(member_client, sample_jobs):
    """The samples are all in the retention: the period before "all" holds no events, so the
    page says there is nothing to compare with instead of marking every node "+ new"."""
    response = member_client.get("/architecture/?window=all&compare=previous")

    data = response.context["data"]
    content = response.content.decode()
    assert 'id="diff-not-comparable"' in content and "nothing to compare with" in content
    assert 'id="diff-legend"' not in content
    assert data["diff"]["comparable"] is False
    assert all(
        data["diff"][key] == []
        for key in ("nodes_added", "nodes_removed", "edges_added", "edges_removed", "edges_moved")
    )
    since, until = (datetime.fromisoformat(data["base"][key]) for key in ("since", "until"))
    assert until - since == timedelta(hours=settings.EDOBS_RETENTION_HOURS)  # as long as "all"


def test_it_refuses_a_compared_window_that_ends_before_it_starts(member_client, sample_jobs):
    url = (
        "/architecture/?window=all&compare=custom"
        "&base_since=2026-11-20T10:00&base_until=2026-11-20T09:00"
    )

    response = member_client.get(url)

    assert response.status_code == 200
    assert "compare since: must be before compare until" in response.content.decode()
    assert response.context["data"]["diff"] is None


def test_it_searches_events_by_text(member_client, sample_jobs):
    content = member_client.get("/events/?q=getUserCookies").content.decode()
    assert content.count('class="event-row"') > 0
    assert "generateReport</span>" not in content


def test_it_filters_events_by_detail_type(member_client, sample_jobs):
    content = member_client.get("/events/?detail_type=generateReport").content.decode()
    assert content.count('class="event-row"') == 3


@pytest.fixture
def hostile(sample_jobs):
    ingest([json.dumps(hostile_envelope())])
    return f"{MACHINE}:hostile-job"


@pytest.mark.parametrize(
    "url",
    ["/", "/jobs/EventDrivenMachine:hostile-job/", "/events/", "/architecture/?window=all"],
)
def test_it_escapes_hostile_event_content(member_client, hostile, url):
    response = member_client.get(url)
    assert response.status_code == 200
    content = response.content.decode()
    assert "<script>alert(1)" not in content
    assert "<img src=x" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content or "\\u003Cscript\\u003E" in content


def test_it_shows_hostile_text_escaped_in_the_timeline(member_client, hostile):
    content = member_client.get(f"/jobs/{hostile}/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "&lt;img src=x onerror=alert(1)&gt;" in content


def big_job(count: int, size: int) -> str:
    """`count` events of `size` bytes of detail in one job; returns the job id."""
    bodies = []
    for n in range(count):
        envelope = hostile_envelope(name="big-job")
        envelope["id"] = f"big-{n:03d}"
        envelope["time"] = f"2026-11-20T09:{n // 60:02d}:{n % 60:02d}Z"
        envelope["detail"]["blob"] = "x" * size
        bodies.append(json.dumps(envelope))
    ingest(bodies)
    return f"{ACCOUNT_A}:us-east-1:{MACHINE}:big-job"


@pytest.mark.parametrize("url", ["/jobs/{job}/"])
def test_it_keeps_a_page_of_sixty_250_kb_events_under_2_mb(member_client, url):
    """Each event shows at most EDOBS_PAGE_EVENT_BYTES of its JSON and links the rest."""
    job = big_job(60, 250_000)
    response = member_client.get(url.format(job=job))
    assert response.status_code == 200
    content = response.content.decode()
    assert len(response.content) < 2_000_000
    assert content.count('class="event-row"') == 60
    assert len(re.findall(r"\(truncated, \d{3} KB\)", content)) == 60
    link = f"/api/events/big-007?account={ACCOUNT_A}"
    assert f'href="{link.replace("&", "&amp;")}"' in content or f'href="{link}"' in content
    whole = member_client.get(link)
    assert whole.status_code == 200
    assert whole.json()["detail"]["blob"] == "x" * 250_000


def test_it_shows_a_small_event_whole_with_a_link(member_client, sample_jobs):
    content = member_client.get("/events/?detail_type=generateReport").content.decode()
    assert "truncated," not in content
    assert content.count(">full JSON</a>") == 3


def test_it_lists_sixty_250_kb_events_in_a_few_kb_each_with_a_link(member_client):
    """/events/ rows carry a one-line summary; the whole event is one link (or click) away."""
    big_job(60, 250_000)
    response = member_client.get("/events/?per=100")
    assert response.status_code == 200
    content = response.content.decode()
    assert content.count('class="event-row"') == 60
    assert len(response.content) < 150_000
    assert "x" * 200 not in content  # no blob, not even cut to the page budget
    link = f"/api/events/big-007?account={ACCOUNT_A}"
    assert f'href="{link.replace("&", "&amp;")}"' in content

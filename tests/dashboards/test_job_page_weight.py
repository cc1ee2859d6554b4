"""The job page's weight stays bounded however many events a job holds: its event table shows
one page of EVENTS_PAGE events with the count and links to the rest (issue 24 section 4)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dashboards.views import EVENTS_PAGE
from events.ingest.services import InboundMessage, event_ingest
from events.models import Team, TeamAccount

pytestmark = pytest.mark.django_db

ACCOUNT = "123456789012"
MACHINE = "HeavyMachine"
EVENTS = 1_000
EVENT_BYTES = 20 * 1024


def heavy_job(name: str) -> list[dict]:
    """EVENTS events of about EVENT_BYTES each, in one execution: a trigger and its answer by a
    Lambda (meta.incoming.id), so the timeline holds EVENTS / 2 spans."""
    arn = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:{MACHINE}:{name}"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    out: list[dict] = []
    for n in range(EVENTS):
        trigger = n % 2 == 0
        detail: dict = {"execution": arn, "step": n,
                        "payload": [f"item {n}-{k} " + "x" * 40 for k in range(380)]}  # fmt: skip
        if not trigger:
            detail["meta"] = {
                "fn": "workFn", "incoming": {"source": "project", "detailType": "workRequested",
                                             "id": out[-1]["id"]},
                "outgoing": {"source": "project", "detailType": "workDone"},
            }  # fmt: skip
        out.append({
            "version": "0", "id": str(uuid.uuid4()), "source": "project",
            "detail-type": "workRequested" if trigger else "workDone", "account": ACCOUNT,
            "time": (start + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1", "resources": [], "detail": detail,
        })  # fmt: skip
    return out


@pytest.fixture
def member_client(client, django_user_model):
    user = django_user_model.objects.create_user("alice", password="pw-alice-123")
    team = Team.objects.create(name="A")
    team.members.add(user)
    TeamAccount.objects.create(team=team, account=ACCOUNT)
    client.force_login(user)
    return client


@pytest.fixture
def heavy(member_client):
    envelopes = heavy_job("heavy-1")
    assert all(len(json.dumps(e)) >= EVENT_BYTES for e in envelopes)
    event_ingest(messages=[InboundMessage(body=json.dumps(e)) for e in envelopes])
    return f"{ACCOUNT}:us-east-1:{MACHINE}:heavy-1", envelopes


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr class="event-row" data-event-id="([^"]+)"', html)


def test_it_keeps_the_page_of_1000_events_of_20_kb_under_3_mb(member_client, heavy):
    job, envelopes = heavy

    response = member_client.get(f"/jobs/{job}/")

    assert response.status_code == 200
    # before paging: every event's row, about 13 MB
    assert len(response.content) <= 3 * 1024 * 1024, len(response.content)
    html = response.content.decode()
    assert row_ids(html) == [e["id"] for e in envelopes[:EVENTS_PAGE]]
    assert f'id="event-total">{EVENTS}<' in html
    assert f"1–{EVENTS_PAGE} of 1,000" in html
    assert 'rel="next" href="?page=2#events"' in html
    # the timeline stays whole: every span, none of the details
    timeline = json.loads(re.search(
        r'<script id="timeline-data" type="application/json">(.*?)</script>', html, re.S
    ).group(1))  # fmt: skip
    assert len(timeline["spans"]) == EVENTS // 2
    assert "item 0-0" not in html.split('id="timeline-data"')[1]


def test_the_rest_of_the_events_is_on_the_next_pages_and_an_event_finds_its_page(
    member_client, heavy
):
    job, envelopes = heavy
    last = member_client.get(f"/jobs/{job}/", {"page": EVENTS // EVENTS_PAGE}).content.decode()
    assert row_ids(last) == [e["id"] for e in envelopes[-EVENTS_PAGE:]]
    assert 'rel="prev"' in last and 'rel="next"' not in last

    wanted = envelopes[737]["id"]
    found = member_client.get(f"/jobs/{job}/", {"event": wanted}).content.decode()
    assert wanted in row_ids(found)
    assert "701–800 of 1,000" in found
    # the links to the neighbour pages drop `event`, so that they page
    assert 'href="?page=7#events"' in found and 'href="?page=9#events"' in found

    beyond = member_client.get(f"/jobs/{job}/", {"page": 999, "event": "no-such-id"})
    assert row_ids(beyond.content.decode()) == [e["id"] for e in envelopes[-EVENTS_PAGE:]]

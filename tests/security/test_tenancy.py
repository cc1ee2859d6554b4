"""Two teams whose accounts run the same state machine and execution name see only their own.

Dev (team A, account 111111111111) and prod (team B, 222222222222) both run `orders` with the
deterministic execution name `run-42`; prod's run fails, and one of its envelopes reuses an id
of dev's. Every API endpoint, page, socket and admin list is read as each team: each sees
exactly its own job, events, status, error and cause, and not a byte of the other's.

It runs on SQLite and on DynamoDB (moto) here, and once more on PostgreSQL in a child pytest
whose DATABASE_URL is the session's PostgreSQL server (the whole app then runs on it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from moto import mock_aws

from events.ingest.services import InboundMessage, event_ingest
from events.models import Team, TeamAccount
from events.routing import websocket_urlpatterns
from events.stores import reset_stores
from infra.table import ensure_table
from tests.markers import send_marker

ROOT = Path(__file__).resolve().parents[2]
ON_POSTGRES = os.environ.get("EDOBS_TENANCY_ON_POSTGRES") == "1"
MACHINE, NAME, REGION = "orders", "run-42", "us-east-1"
TEAMS = {
    # account, what only this team's events say, its final status, error and cause
    "a": ("111111111111", "dev-only-marker", "SUCCEEDED", None, None),
    "b": ("222222222222", "prod-only-marker", "FAILED", "Prod.PaymentDeclined", "prod-only-cause"),
}
SHARED_ID = "0f6c1f36-7d3e-4a6c-9f49-000000000042"  # dev's envelope id, reused by prod
START = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
VIEW = ["view_event", "view_job", "view_connection", "view_rejectedmessage"]

pytestmark = pytest.mark.django_db(transaction=True)


def job_of(team: str) -> str:
    return f"{TEAMS[team][0]}:{REGION}:{MACHINE}:{NAME}"


def _arn(account: str) -> str:
    return f"arn:aws:states:{REGION}:{account}:execution:{MACHINE}:{NAME}"


def _envelope(team: str, n: int, detail: dict, *, source="project", detail_type="step", id=None):
    account = TEAMS[team][0]
    return json.dumps(
        {
            "version": "0", "id": id or f"{team}-{n:04d}-7d3e-4a6c-9f49-0000000000{n:02d}",
            "detail-type": detail_type, "source": source, "account": account,
            "time": (START + timedelta(seconds=n)).isoformat().replace("+00:00", "Z"),
            "region": REGION, "resources": [_arn(account)], "detail": detail,
        }
    )  # fmt: skip


def _status(team: str, n: int, status: str, *, id=None) -> str:
    account, _, _, error, cause = TEAMS[team]
    ms = int((START + timedelta(seconds=n)).timestamp() * 1000)
    detail = {
        "executionArn": _arn(account), "name": NAME, "status": status, "startDate": ms,
        "stopDate": None if status == "RUNNING" else ms,
        "stateMachineArn": f"arn:aws:states:{REGION}:{account}:stateMachine:{MACHINE}",
    }  # fmt: skip
    if status == "FAILED":
        detail.update(error=error, cause=cause)
    return _envelope(
        team, n, detail, source="aws.states",
        detail_type="Step Functions Execution Status Change", id=id,
    )  # fmt: skip


def _work(team: str, n: int, *, id=None) -> str:
    account, marker = TEAMS[team][:2]
    detail = {
        "execution": _arn(account), "note": marker,
        "meta": {"fn": "chargeFn", "incoming": {"source": "project", "detailType": "order"},
                 "outgoing": {"source": "project", "detailType": "charged"}},
    }  # fmt: skip
    return _envelope(team, n, detail, detail_type="charged", id=id)


def traffic() -> list[str]:
    """Both runs, interleaved as a shared bus would deliver them."""
    final = {"a": "SUCCEEDED", "b": "FAILED"}
    bodies = []
    for team in ("a", "b"):
        shared = SHARED_ID if team == "b" else None
        bodies += [
            _status(team, 0, "RUNNING"),
            _work(team, 1, id=SHARED_ID if team == "a" else None),
            _work(team, 2),
            _status(team, 3, final[team], id=shared),
        ]
    return bodies[0::4] + bodies[1::4] + bodies[2::4] + bodies[3::4]


def ingest(bodies: list[str]):
    return event_ingest(messages=[InboundMessage(body=body) for body in bodies])


# ---- the world: stores, layer, teams ----------------------------------------------------------


@pytest.fixture(params=["orm", "dynamodb"])
def store(request, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    request.addfinalizer(channel_layers.backends.clear)
    request.addfinalizer(reset_stores)
    reset_stores()
    if request.param == "dynamodb":
        if ON_POSTGRES:
            pytest.skip("the child run on PostgreSQL checks the ORM store only")
        mock = mock_aws()
        mock.start()
        request.addfinalizer(mock.stop)
        ensure_table(boto3.client("dynamodb", region_name="us-east-1"), "edobs-tenancy")
        settings.EDOBS_STORE, settings.EDOBS_TABLE_NAME = "dynamodb", "edobs-tenancy"
    else:
        settings.EDOBS_STORE = "orm"
    return request.param


@pytest.fixture
def users(store):
    """A team member per account, each also staff with every view permission."""
    found = {}
    for team, (account, *_rest) in TEAMS.items():
        user = User.objects.create_user(f"{team}1", password="pw-" + team * 8, is_staff=True)
        user.user_permissions.set(Permission.objects.filter(codename__in=VIEW))
        group = Team.objects.create(name=f"team-{team}")
        group.members.add(user)
        TeamAccount.objects.create(team=group, account=account)
        found[team] = user
    report = ingest(traffic())
    assert report.counts["stored"] == 8, report.outcomes  # the reused id is stored twice
    return found


def other(team: str) -> str:
    return "b" if team == "a" else "a"


def assert_only_own(team: str, text: str, where: str) -> None:
    theirs = other(team)
    account, marker, *_rest, cause = TEAMS[theirs]
    for secret in (account, marker, "Prod.PaymentDeclined" if theirs == "b" else "\0"):
        assert secret not in text, f"{where}: team {team} sees {secret!r} of team {theirs}"
    if cause:
        assert cause not in text, where


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# ---- the API ----------------------------------------------------------------------------------


@pytest.mark.parametrize("team", ["a", "b"])
def test_each_team_reads_only_its_own_run_through_the_api(users, team):
    if ON_POSTGRES:
        assert connection.vendor == "postgresql"
    account, marker, status, error, cause = TEAMS[team]
    client = client_of(users[team])
    forms = [job_of(team), f"{MACHINE}:{NAME}", NAME]

    jobs = client.get("/api/jobs").json()["results"]
    assert [(j["id"], j["status"], j["error"], j["cause"]) for j in jobs] == [
        (job_of(team), status, error, cause)
    ]
    for form in forms:
        timeline = client.get(f"/api/jobs/{form}/timeline").json()
        assert timeline["job"]["id"] == job_of(team), form
        assert timeline["execution"]["status"] == status
        assert timeline["execution"]["error"] == error
        events = client.get(f"/api/jobs/{form}/events").json()["results"]
        assert len(events) == 4 and {e["account"] for e in events} == {account}, form
        original = client.get(f"/api/job/{form}").json()["events"]
        assert {item["pk"] for item in original} == {f"EVENT#{job_of(team)}"}
        assert sum(item.get("note") == marker for item in original) == 2
    latest = client.get("/api/latest").json()["latest"]
    assert [(item["sk"], item["account"]) for item in latest] == [
        (f"EVENT#{job_of(team)}", account)
    ]
    for url in ["/api/jobs", "/api/latest", "/api/architecture", *[f"/api/job/{f}" for f in forms]]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_only_own(team, response.content.decode(), url)


@pytest.mark.parametrize("team", ["a", "b"])
def test_another_teams_full_job_id_is_not_found(users, team):
    client = client_of(users[team])
    theirs = job_of(other(team))

    for url in [f"/api/jobs/{theirs}/timeline", f"/api/jobs/{theirs}/events", f"/api/job/{theirs}"]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json() == {"error": "job not found"}
    assert client.get(f"/jobs/{theirs}/").status_code == 404


def test_the_architecture_counts_only_the_teams_own_events(users):
    for team in ("a", "b"):
        graph = client_of(users[team]).get("/api/architecture?since=2000-01-01T00:00:00Z").json()
        counts = {node["id"]: node["count"] for node in graph["nodes"]}
        assert counts["fn:chargeFn"] == 2, (team, counts)


# ---- the pages --------------------------------------------------------------------------------


@pytest.mark.parametrize("team", ["a", "b"])
def test_each_team_sees_only_its_own_run_on_every_page(users, team):
    account, marker, status, error, cause = TEAMS[team]
    client = client_of(users[team])

    home = client.get("/").content.decode()
    assert job_of(team) in home and status in home
    job_page = client.get(f"/jobs/{MACHINE}:{NAME}/")
    assert job_page.status_code == 200
    page = job_page.content.decode()
    assert marker in page and status in page
    if cause:
        assert cause in page and error in page
    events_page = client.get("/events/?q=marker").content.decode()
    assert marker in events_page
    for url, text in [("/", home), ("/jobs/", page), ("/events/", events_page)]:
        assert_only_own(team, text, url)
    assert_only_own(team, client.get("/architecture/?window=all").content.decode(), "arch")


# ---- the admin --------------------------------------------------------------------------------


@pytest.mark.parametrize("team", ["a", "b"])
def test_each_teams_staff_sees_only_its_own_rows_in_the_admin(users, store, team):
    client = client_of(users[team])

    for url in ("/admin/events/event/", "/admin/events/job/", "/admin/events/connection/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_only_own(team, response.content.decode(), url)
        if store == "orm" and url != "/admin/events/connection/":
            assert TEAMS[team][0] in response.content.decode(), url
    assert client.get("/admin/events/rejectedmessage/").status_code == 403


# ---- the sockets ------------------------------------------------------------------------------


async def _socket(path: str, user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def _heard(communicator, user, path: str, job: str) -> list[dict]:
    """Every frame the socket got before a marker sent now to its own channel (as an event of
    `job`): all it was given so far, with no fixed wait that a slow machine could outlast."""
    marker = await send_marker(user, path, job)
    messages = []
    while (message := await communicator.receive_json_from(timeout=5)) != marker:
        messages.append(message)
    return messages


@pytest.mark.parametrize("team", ["a", "b"])
async def test_each_team_hears_only_its_own_run_live(users, team):
    account, marker = TEAMS[team][:2]
    # (path, a job it listens for: the team's own, or the other team's it may not see)
    watched = [
        (f"/ws/jobs/{MACHINE}:{NAME}/", job_of(team)),
        (f"/ws/jobs/{NAME}/", job_of(team)),
        (f"/ws/jobs/{job_of(other(team))}/", job_of(other(team))),
        ("/ws/events/", job_of(team)),
    ]
    sockets = [await _socket(path, users[team]) for path, _ in watched]
    try:
        snapshots = [await s.receive_json_from(timeout=5) for s in sockets[:3]]
        assert [len(s["events"]) for s in snapshots] == [4, 4, 0]
        assert {e["account"] for s in snapshots for e in s["events"]} == {account}
        await sync_to_async(ingest)([_work("a", 5), _work("b", 5)])
        heard = [
            await _heard(s, users[team], path, job)
            for s, (path, job) in zip(sockets, watched, strict=True)
        ]
        for messages in heard[:2] + heard[3:]:
            assert [m["event"]["account"] for m in messages] == [account]
            assert messages[0]["event"]["detail"]["note"] == marker
        assert heard[2] == []
        assert_only_own(team, json.dumps([snapshots, heard]), "sockets")
    finally:
        for communicator in sockets:
            await communicator.disconnect()


# ---- PostgreSQL: the same suite with the whole app on it ---------------------------------------


@pytest.mark.skipif(ON_POSTGRES, reason="this is the parent of the PostgreSQL run")
@pytest.mark.django_db(transaction=False)
def test_the_same_suite_holds_with_the_app_on_postgresql(postgres_url):
    env = {**os.environ, "DATABASE_URL": postgres_url, "EDOBS_TENANCY_ON_POSTGRES": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    tail = run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode == 0, tail
    passed = re.search(r"(\d+) passed", run.stdout)
    assert passed and int(passed.group(1)) >= 11 and " failed" not in run.stdout, tail

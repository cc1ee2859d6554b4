"""Every URL and socket refuses anonymous users; teams see only their own accounts.

The URL conf and the WebSocket routes are enumerated, so a new route cannot be missed.
"""

import json
import re
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from events.models import Team, TeamAccount
from events.services import InboundMessage, event_ingest

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
ACCOUNT_A, ACCOUNT_B = "123456789012", "210987654321"
JOB = "123456789012:us-east-1:EventDrivenMachine:a6a3a450-6513-470e-a69e-0d37f2a74de4"
# Reachable without a login, by design.
PUBLIC = {"login", "admin:login", "logout", "admin:logout"}


def _patterns(resolvers, prefix="", namespace=""):
    for item in resolvers:
        if isinstance(item, URLResolver):
            ns = f"{namespace}{item.namespace}:" if item.namespace else namespace
            yield from _patterns(item.url_patterns, prefix + str(item.pattern), ns)
        elif isinstance(item, URLPattern):
            yield prefix + str(item.pattern), f"{namespace}{item.name or ''}"


def _concrete(pattern: str) -> str:
    """A URL that matches a route or regex pattern, with a job id or `1` for its arguments."""
    url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: JOB if "job" in m.group(1) else "1", pattern)
    url = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: JOB if "job" in m.group(2) else "1", url)
    url = re.sub(r"\(\?:[^)]*\)\??", "", url)
    return "/" + url.replace("^", "").replace("$", "").replace("\\Z", "").replace("/?", "/")


def all_urls() -> list[tuple[str, str]]:
    return sorted({(_concrete(p), name) for p, name in _patterns(get_resolver().url_patterns)})


@pytest.fixture
def teams(db):
    member = User.objects.create_user("alice", password="pw-alice-123")
    outsider = User.objects.create_user("bob", password="pw-bob-123")
    team_a, team_b = Team.objects.create(name="A"), Team.objects.create(name="B")
    team_a.members.add(member)
    team_b.members.add(outsider)
    TeamAccount.objects.create(team=team_a, account=ACCOUNT_A)
    TeamAccount.objects.create(team=team_b, account=ACCOUNT_B)
    lines = (SAMPLES / "part1_jobs.jsonl").read_text().splitlines()
    event_ingest(messages=[InboundMessage(body=line) for line in lines if line.strip()])
    return member, outsider


def test_the_enumeration_finds_the_routes_that_matter():
    names = {name for _, name in all_urls()}

    assert {"api-latest", "api-job", "api-jobs", "api-schema", "login", "admin:index"} <= names


@pytest.mark.parametrize("url,name", [(u, n) for u, n in all_urls() if n not in PUBLIC])
def test_it_refuses_anonymous_users_everywhere(url, name, db):
    response = Client().get(url)

    if response.status_code in (301, 302):
        assert "login" in response["Location"], (url, response["Location"])
    else:
        assert response.status_code in (401, 403, 404, 405), (url, response.status_code)
        assert JOB not in response.content.decode(errors="replace")


@pytest.mark.parametrize("url,name", [(u, n) for u, n in all_urls() if u.startswith("/api/")])
def test_an_outsider_reads_nothing_of_another_team(url, name, teams):
    _, outsider = teams
    client = Client()
    client.force_login(outsider)

    response = client.get(url)

    assert response.status_code in (200, 404), (url, response.status_code)
    assert "a6a3a450" not in response.content.decode(), url


def test_a_member_reads_their_own_team(teams):
    member, _ = teams
    client = Client()
    client.force_login(member)

    assert client.get(f"/api/job/{JOB}").status_code == 200
    assert client.get(f"/api/jobs/{JOB}/timeline").status_code == 200


def test_admin_pages_refuse_team_members_who_are_not_staff(teams):
    member, _ = teams
    client = Client()
    client.force_login(member)

    for url in ("/admin/", "/admin/events/event/", "/admin/events/job/"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


@pytest.mark.parametrize(
    "url,data",
    [
        ("/accounts/login/", {"username": "alice", "password": "pw-alice-123"}),
        ("/accounts/logout/", {}),
        ("/admin/login/", {"username": "alice", "password": "pw-alice-123"}),
    ],
)
def test_it_enforces_csrf_on_every_form(url, data, teams):
    client = Client(enforce_csrf_checks=True)

    assert client.post(url, data).status_code == 403


def test_it_enforces_csrf_on_admin_actions(teams, admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    data = {"action": "requeue", "_selected_action": ["1"]}

    assert client.post("/admin/events/rejectedmessage/", data).status_code == 403


def _websocket_paths() -> list[str]:
    from events.routing import websocket_urlpatterns

    return [_concrete(str(route.pattern)) for route in websocket_urlpatterns]


def _application():
    from edobs_site.asgi import application

    return application


HEADERS = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", _websocket_paths())
async def test_every_socket_refuses_anonymous_users(path):
    communicator = WebsocketCommunicator(_application(), path, headers=HEADERS)
    connected, _ = await communicator.connect()
    # A close code needs an accepted socket: refused means closed at once with 4401.
    closed = await communicator.receive_output(timeout=2) if connected else None
    await communicator.disconnect()

    assert not connected or closed == {"type": "websocket.close", "code": 4401}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", _websocket_paths())
async def test_every_socket_refuses_a_foreign_origin(path, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    headers = [(b"origin", b"http://evil.example"), (b"host", b"127.0.0.1")]
    communicator = WebsocketCommunicator(_application(), path, headers=headers)
    connected, _ = await communicator.connect()
    await communicator.disconnect()

    assert not connected


def test_schema_lists_only_the_api(teams, admin_user):
    client = Client()
    client.force_login(admin_user)

    schema = client.get("/api/schema", {"format": "json"})

    assert schema.status_code == 200
    assert all(p.startswith("/api/") for p in json.loads(schema.content)["paths"])

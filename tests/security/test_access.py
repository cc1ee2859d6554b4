"""Every URL and socket refuses anonymous users; teams see only their own accounts.

The URL conf and the WebSocket routes are enumerated, so a new route cannot be missed.
"""

import json
import re
from pathlib import Path
from urllib.parse import quote

import boto3
import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from moto import mock_aws

from events.ingest.services import InboundMessage, event_ingest
from events.models import RejectedMessage, Team, TeamAccount

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
ACCOUNT_A, ACCOUNT_B = "123456789012", "210987654321"
JOB = "123456789012:us-east-1:EventDrivenMachine:a6a3a450-6513-470e-a69e-0d37f2a74de4"
# Reachable without a login, by design (the favicon holds no data: a redirect to a static file).
PUBLIC = {"login", "admin:login", "logout", "admin:logout", "favicon"}
# The sign-in through an OpenID provider starts and ends signed out (404 without an issuer).
PUBLIC |= {"oidc_authentication_init", "oidc_authentication_callback"}
# Prometheus has no login: an allow-list of networks or a bearer token instead, refused below.
SCRAPER_ONLY = {"metrics"}


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


@pytest.mark.parametrize("url,name", [(u, n) for u, n in all_urls() if n in SCRAPER_ONLY])
def test_a_scraper_only_url_refuses_an_unlisted_address(url, name, db):
    response = Client().get(url, REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 403 and b"edobs_" not in response.content, url


@pytest.mark.parametrize(
    "url,name", [(u, n) for u, n in all_urls() if n not in PUBLIC | SCRAPER_ONLY]
)
def test_it_refuses_anonymous_users_everywhere(url, name, db):
    response = Client().get(url)

    if url.startswith("/api/"):
        # What an API client sees: a refusal in the one JSON error shape, no data.
        assert response.status_code in (401, 403), (url, response.status_code)
        assert set(response.json()) == {"error"}, (url, response.content)
    else:
        # What a browser sees: the login page, which brings it back here afterwards.
        assert response.status_code == 302, (url, response.status_code)
        login = "/admin/login/" if url.startswith("/admin/") else "/accounts/login/"
        assert response["Location"] == f"{login}?next={quote(url, safe='/')}", url


# Answer only POST: swept by test_an_outsider_cannot_replay_another_teams_job below.
POST_ONLY = ("api-job-replay", "api-event-replay")
# The schema, the workers' health and the user's own preferences hold no account's data.
NOT_SWEPT = ("api-schema", "api-health", "api-preferences", *POST_ONLY)
API_URLS = [(u, n) for u, n in all_urls() if u.startswith("/api/") and n not in NOT_SWEPT]
EVENT = "9c1caaf7-5e87-46ed-88da-f4016b4013ef"  # an event of JOB
# Where the enumeration's placeholder (`1`) names nothing, the URL that names the sample job.
URL_FOR = {
    "api-event": f"/api/events/{EVENT}/",
    "api-state-machine-metrics": "/api/state-machines/EventDrivenMachine/metrics/",
    "api-schema-detail": "/api/schemas/project/getUserCookies/",
}
# What shows the sample job on each answer, and the query that reaches back to its (old) time.
SHOWS_THE_JOB = {
    "api-architecture": "getMultipleFn",
    "api-architecture-diff": "getMultipleFn",  # removed: the window of 2020 holds nothing
    "api-state-machine-metrics": "States.TaskFailed",
    "api-failures": "States.TaskFailed",  # the samples' failed job (JOB succeeded)
    "api-schemas": "getUserCookies",
    "api-schema-detail": "getUserCookies",
}
SCHEMA_WINDOW = {"since": "2026-11-19T00:00:00Z", "until": "2026-11-22T00:00:00Z"}
QUERY = {
    "api-architecture": {"since": "2020-01-01T00:00:00Z"},
    "api-schemas": SCHEMA_WINDOW,
    "api-schema-detail": SCHEMA_WINDOW,
    "api-architecture-diff": {  # the base holds the job, the window nothing (an empty base
        "since": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z",  # compares nothing)
        "base_since": "2020-01-02T00:00:00Z", "base_until": "2999-01-01T00:00:00Z",
    },
    "api-jobs-compare": {"a": JOB, "b": JOB},
    "api-failures": SCHEMA_WINDOW,
    "api-state-machine-metrics": {
        "since": "2026-11-19T00:00:00Z",
        "until": "2026-11-22T00:00:00Z",
        "bucket": "1d",
    },
}
# Answers that name one job or event: another team's is "not found".
NAMES_ONE = {"api-event", "api-jobs-compare", "api-schema-detail"}


@pytest.mark.parametrize("url,name", API_URLS)
def test_an_outsider_reads_nothing_of_another_team(url, name, teams):
    member, outsider = teams
    url = URL_FOR.get(name, url)
    seen = {}
    for user in (member, outsider):
        client = Client()
        client.force_login(user)
        seen[user.username] = client.get(url, QUERY.get(name, {}))
    mark = SHOWS_THE_JOB.get(name, "a6a3a450")

    # The member of the account's team sees the job here, so its absence below means something.
    assert seen["alice"].status_code == 200, (url, seen["alice"].content[:200])
    assert mark in seen["alice"].content.decode(), url
    refused = seen["bob"]
    assert mark not in refused.content.decode(), url
    if JOB in url or name in NAMES_ONE:
        assert refused.status_code == 404, (url, refused.status_code)
        assert set(refused.json()) == {"error"}, url
    elif name == "api-state-machine-metrics":  # a state machine the outsider never ran
        assert refused.status_code == 200, (url, refused.status_code)
        assert refused.json()["total"]["started"] == 0, refused.content[:200]
        assert seen["alice"].json()["total"]["started"] == 3
    elif name == "api-failures":  # the window it answers for, and no failure
        assert refused.status_code == 200, (url, refused.status_code)
        assert (refused.json()["groups"], refused.json()["scanned"]) == ([], 0)
        assert seen["alice"].json()["scanned"] == 1
    elif name == "api-schemas":  # the windows it answers for, and no type
        assert refused.status_code == 200, (url, refused.status_code)
        assert refused.json()["types"] == [], refused.content[:200]
    else:
        assert refused.status_code == 200, (url, refused.status_code)
        assert not any(refused.json().values()), (url, refused.content[:200])  # empty lists


def test_an_outsider_cannot_replay_another_teams_job(teams):
    from django.contrib.auth.models import Permission

    _, outsider = teams
    outsider.user_permissions.add(Permission.objects.get(codename="replay_event"))
    client = Client()
    client.force_login(outsider)
    urls = {name: url for url, name in all_urls() if name in POST_ONLY}
    urls["api-event-replay"] = f"/api/events/{EVENT}/replay/"

    for url in urls.values():
        response = client.post(url, {"bus": "default", "dry_run": True}, "application/json")
        assert response.status_code == 404, (url, response.status_code)
        assert set(response.json()) == {"error"}, url
    assert len(urls) == 2


def test_a_member_reads_their_own_team(teams):
    member, _ = teams
    client = Client()
    client.force_login(member)

    events = client.get(f"/api/job/{JOB}").json()["events"]
    timeline = client.get(f"/api/jobs/{JOB}/timeline").json()

    assert len(events) == 22
    assert {event["account"] for event in events} == {ACCOUNT_A}
    assert timeline["execution"]["status"] == "SUCCEEDED"
    assert len(timeline["spans"]) > 0


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

    response = client.post(url, data)

    assert response.status_code == 403
    assert "CSRF verification failed" in response.content.decode()
    assert "_auth_user_id" not in client.session  # the login did not happen


def test_it_enforces_csrf_on_admin_actions(teams, admin_user):
    rejected = RejectedMessage.objects.create(body="{", reason="not JSON", message_id="m-1")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    data = {"action": "requeue", "_selected_action": [str(rejected.pk)]}

    response = client.post("/admin/events/rejectedmessage/", data)

    assert response.status_code == 403
    assert "CSRF verification failed" in response.content.decode()
    assert RejectedMessage.objects.filter(pk=rejected.pk).exists()  # not requeued


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
    # Accepted, then closed with 4401: what a browser can read (a refused handshake is a bare
    # HTTP 403 it cannot tell from anything else).
    closed = await communicator.receive_output(timeout=5) if connected else None
    await communicator.disconnect()

    assert connected, path
    assert closed == {"type": "websocket.close", "code": 4401}, path


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", _websocket_paths())
async def test_every_socket_refuses_a_foreign_origin(path, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    outcomes = []
    for origin in (b"http://127.0.0.1", b"http://evil.example"):
        headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
        communicator = WebsocketCommunicator(_application(), path, headers=headers)
        outcomes.append((await communicator.connect())[0])
        await communicator.disconnect()

    # The site's own origin gets through the handshake (to be told 4401), a foreign one not.
    assert outcomes == [True, False], path


def test_schema_lists_only_the_api(teams, admin_user):
    client = Client()
    client.force_login(admin_user)

    schema = client.get("/api/schema", {"format": "json"})

    assert schema.status_code == 200
    assert all(p.startswith("/api/") for p in json.loads(schema.content)["paths"])


ACCOUNT_C = "555566667777"


def _delivered_without_account() -> str:
    """An envelope as moto's EventBridge delivers it to SQS: with no `account` (FACTS.md).

    Its job comes from `meta` alone (no execution ARN), so nothing else names an account.
    """
    with mock_aws():
        sqs, events = (boto3.client(name, region_name="us-east-1") for name in ("sqs", "events"))
        url = sqs.create_queue(QueueName="edobs-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        events.put_rule(Name="edobs", EventPattern=json.dumps({"source": ["project"]}))
        target = {"Id": "q", "Arn": queue_arn["Attributes"]["QueueArn"]}
        events.put_targets(Rule="edobs", Targets=[target])
        detail = {"meta": {"stateMachine": "Nightly", "job": "nightly-1"}}
        events.put_events(
            Entries=[{"Source": "project", "DetailType": "start", "Detail": json.dumps(detail)}]
        )
        [message] = sqs.receive_message(QueueUrl=url)["Messages"]
    return message["Body"]


def test_an_envelope_without_account_belongs_to_edobs_account_and_its_team_only(teams, settings):
    member, outsider = teams
    owner = User.objects.create_user("carol", password="pw-carol-123")
    team_c = Team.objects.create(name="C")
    team_c.members.add(owner)
    TeamAccount.objects.create(team=team_c, account=ACCOUNT_C)
    settings.EDOBS_ACCOUNT = ACCOUNT_C
    body = _delivered_without_account()
    assert "account" not in json.loads(body)  # the case under test

    event_ingest(messages=[InboundMessage(body=body)])

    seen = {}
    for user in (owner, member, outsider):
        client = Client()
        client.force_login(user)
        seen[user.username] = client.get("/api/jobs", {"state_machine": "Nightly"}).json()
    [job] = seen["carol"]["results"]
    assert (job["account"], job["state_machine"], job["name"]) == (
        ACCOUNT_C,
        "Nightly",
        "nightly-1",
    )
    assert seen["alice"]["results"] == [] and seen["bob"]["results"] == []
    client = Client()
    client.force_login(owner)
    [event] = client.get(f"/api/jobs/{job['id']}/events").json()["results"]
    assert event["account"] == ACCOUNT_C

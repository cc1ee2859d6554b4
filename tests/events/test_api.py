"""The REST API (DESIGN section 6): shapes, pagination, filters, logins and team scoping."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from rest_framework.authtoken.models import Token

from .conftest import ACCOUNT_A, ACCOUNT_B, ingest_bodies, sample_lines

JOB_OK = "123456789012:us-east-1:EventDrivenMachine:a6a3a450-6513-470e-a69e-0d37f2a74de4"
JOB_FAILED = "123456789012:us-east-1:EventDrivenMachine:b87e4e2b-537d-4128-83a9-e88963b759f5"
JOB_SECOND = "123456789012:us-east-1:EventDrivenMachine:c38084a0-3d93-4d4c-804c-25d64affdcd1"
HOSTILE_JOB = "123456789012:us-east-1:Hostile:h1"
B_JOB = "210987654321:us-east-1:Other:b1"
SINCE = "since=2026-11-19T00:00:00Z"
ORIGINAL_KEYS = {"pk", "sk", "account", "source", "detailType"}
SUMMARY_KEYS = {
    "id", "execution_arn", "state_machine", "name", "account", "region", "status", "started_at",
    "stopped_at", "first_event_at", "last_event_at", "event_count",
}  # fmt: skip
EVENT_KEYS = {
    "id", "source", "detail_type", "account", "region", "time", "at", "at_source", "received_at",
    "resources", "detail", "job", "fn", "incoming", "outgoing", "raw",
}  # fmt: skip

pytestmark = pytest.mark.django_db


def envelope(event_id: str, *, time: str, detail: dict, account: str = ACCOUNT_A, **extra) -> str:
    return json.dumps(
        {
            "version": "0", "id": event_id, "detail-type": extra.get("detail_type", "hostile"),
            "source": extra.get("source", "project"), "account": account, "time": time,
            "region": "us-east-1", "resources": [], "detail": detail,
        }
    )  # fmt: skip


HOSTILE_DETAIL = {
    "pk": "EVIL", "sk": "EVIL", "latest": "0", "account": "000000000000", "source": "evil",
    "detailType": "evil", "meta": {"stateMachine": "Hostile", "job": "h1"}, "note": "<b>x</b>",
}  # fmt: skip


@pytest.fixture
def events():
    """The samples (account A), a hostile event (account A) and one job of account B."""
    ingest_bodies(sample_lines())
    ingest_bodies(
        [
            envelope("hostile-1", time="2026-11-20T10:00:00Z", detail=HOSTILE_DETAIL),
            envelope(
                "b-1", time="2026-11-20T11:00:00Z", account=ACCOUNT_B,
                detail={"meta": {"stateMachine": "Other", "job": "b1"}},
            ),
        ]
    )  # fmt: skip


def get(client, user, url: str):
    if user is not None:
        client.force_login(user)
    return client.get(url)


def _ms(time: str) -> str:
    return str(int(datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp() * 1000))


def _last_sample_event(job_id: str) -> dict:
    """The job's newest envelope; of several in the same second, the last to arrive."""
    name = job_id.split(":")[3]
    envelopes = [json.loads(line) for line in sample_lines() if name in line]
    return sorted(envelopes, key=lambda e: e["time"])[-1]


def test_it_gives_latest_in_the_original_shape(client, superuser, events):
    response = get(client, superuser, "/api/latest")
    assert response.status_code == 200
    items = {item["sk"]: item for item in response.json()["latest"]}
    assert set(items) == {
        f"EVENT#{job}" for job in (JOB_OK, JOB_FAILED, JOB_SECOND, HOSTILE_JOB, B_JOB)
    }
    item = items[f"EVENT#{JOB_FAILED}"]
    last = _last_sample_event(JOB_FAILED)
    assert item == {
        **last["detail"],
        "pk": "LATEST", "sk": f"EVENT#{JOB_FAILED}", "latest": _ms(last["time"]),
        "account": ACCOUNT_A, "source": last["source"], "detailType": last["detail-type"],
    }  # fmt: skip
    assert list(response.json()["latest"])[0]["sk"] == f"EVENT#{B_JOB}"


def test_it_never_lets_detail_fields_overwrite_the_original_keys(client, superuser, events):
    latest = get(client, superuser, "/api/latest").json()["latest"]
    item = next(item for item in latest if item["sk"] == f"EVENT#{HOSTILE_JOB}")
    assert item == {
        **HOSTILE_DETAIL,
        "pk": "LATEST", "sk": f"EVENT#{HOSTILE_JOB}", "latest": "1795168800000",
        "account": ACCOUNT_A, "source": "project", "detailType": "hostile",
    }  # fmt: skip
    events_ = client.get(f"/api/job/{HOSTILE_JOB}").json()["events"]
    assert events_ == [
        {
            **HOSTILE_DETAIL,
            "pk": f"EVENT#{HOSTILE_JOB}", "sk": "1795168800000",
            "account": ACCOUNT_A, "source": "project", "detailType": "hostile",
        }
    ]  # fmt: skip


def test_it_gives_a_jobs_events_in_the_original_shape_and_order(client, superuser, events):
    response = get(client, superuser, f"/api/job/{JOB_OK}")
    assert response.status_code == 200
    items = response.json()["events"]
    expected = [json.loads(line) for line in sample_lines() if JOB_OK.split(":")[3] in line]
    assert len(items) == len(expected) == 22
    assert [item["detailType"] for item in items] == [e["detail-type"] for e in expected]
    for item, envelope_ in zip(items, expected, strict=True):
        assert item["pk"] == f"EVENT#{JOB_OK}"
        assert isinstance(item["sk"], str) and item["sk"].isdigit()
        assert set(item) == ORIGINAL_KEYS | set(envelope_["detail"])
    assert [int(item["sk"]) for item in items] == sorted(int(item["sk"]) for item in items)


def test_it_resolves_a_bare_execution_name_to_the_newest_job(client, superuser, events):
    old = {"meta": {"stateMachine": "A", "job": "same"}}
    new = {"meta": {"stateMachine": "B", "job": "same"}}
    ingest_bodies(
        [
            envelope("old", time="2026-11-20T08:00:00Z", detail=old),
            envelope("new", time="2026-11-20T12:00:00Z", detail=new),
        ]
    )
    items = get(client, superuser, "/api/job/same").json()["events"]
    assert [item["pk"] for item in items] == [f"EVENT#{ACCOUNT_A}:us-east-1:B:same"]
    name = JOB_OK.split(":")[3]
    assert len(client.get(f"/api/job/{name}").json()["events"]) == 22
    assert client.get(f"/api/jobs/{name}/events").json()["results"][0]["job"] == JOB_OK


@pytest.mark.parametrize(
    "url", ["/api/job/Nope:none", "/api/job/none", "/api/jobs/Nope:none/events",
            "/api/jobs/Nope:none/timeline"],
)  # fmt: skip
def test_it_answers_404_with_an_error_for_an_unknown_job(client, superuser, events, url):
    response = get(client, superuser, url)
    assert response.status_code == 404
    assert set(response.json()) == {"error"}


def test_it_paginates_jobs_with_a_cursor(client, superuser, events):
    client.force_login(superuser)
    seen, url = [], "/api/jobs?limit=2"
    while url:
        page = client.get(url)
        assert page.status_code == 200
        body = page.json()
        assert len(body["results"]) <= 2
        seen += [job["id"] for job in body["results"]]
        url = body["next"] and f"/api/jobs?limit=2&cursor={body['next_cursor']}"
    assert seen == [B_JOB, HOSTILE_JOB, JOB_FAILED, JOB_SECOND, JOB_OK]
    assert all(SUMMARY_KEYS <= set(job) for job in client.get("/api/jobs").json()["results"])


def test_it_paginates_a_jobs_events_with_a_cursor(client, superuser, events):
    client.force_login(superuser)
    seen, cursor = [], None
    while True:
        query = f"?limit=5&cursor={cursor}" if cursor else "?limit=5"
        body = client.get(f"/api/jobs/{JOB_FAILED}/events{query}").json()
        assert all(set(event) == EVENT_KEYS for event in body["results"])
        seen += [event["id"] for event in body["results"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 29
    times = [
        event["time"] for event in client.get(f"/api/jobs/{JOB_FAILED}/events").json()["results"]
    ]
    assert times == sorted(times)


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=10000", "limit=-1", "limit=ten", "cursor=garbage"]
)
@pytest.mark.parametrize("path", ["/api/jobs", f"/api/jobs/{JOB_OK}/events"])
def test_it_refuses_a_bad_limit_or_cursor_with_400(client, superuser, events, path, query):
    response = get(client, superuser, f"{path}?{query}")
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize("url", ["/api/latest?limit=0", "/api/latest?limit=10000"])
def test_it_bounds_the_latest_limit(client, superuser, events, url):
    response = get(client, superuser, url)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


def test_it_filters_jobs_by_status_and_state_machine(client, superuser, events):
    client.force_login(superuser)
    failed = client.get("/api/jobs?status=FAILED").json()["results"]
    assert [job["id"] for job in failed] == [JOB_FAILED]
    succeeded = client.get("/api/jobs?status=succeeded").json()["results"]
    assert {job["id"] for job in succeeded} == {JOB_OK, JOB_SECOND}
    unknown = client.get("/api/jobs?status=UNKNOWN").json()["results"]
    assert {job["id"] for job in unknown} == {HOSTILE_JOB, B_JOB}
    hostile = client.get("/api/jobs?state_machine=Hostile").json()["results"]
    assert [job["id"] for job in hostile] == [HOSTILE_JOB]


def test_it_gives_a_timeline(client, superuser, events):
    response = get(client, superuser, f"/api/jobs/{JOB_FAILED}/timeline")
    assert response.status_code == 200
    body = response.json()
    assert body["job"]["id"] == JOB_FAILED
    assert {"spans", "execution"} <= set(body)
    assert body["execution"]["status"] == "FAILED"


def test_it_gives_the_architecture_of_a_window(client, superuser, events):
    response = get(client, superuser, f"/api/architecture?{SINCE}")
    assert response.status_code == 200
    body = response.json()
    assert {node["id"] for node in body["nodes"]} >= {"fn:processSingleFn", "sm:EventDrivenMachine"}
    assert body["edges"]
    assert get(client, superuser, "/api/architecture?since=yesterday").status_code == 400


def test_it_serves_the_schema_to_a_logged_in_user(client, member):
    response = get(client, member, "/api/schema")
    assert response.status_code == 200
    assert "/api/jobs/" in json.loads(response.content)["paths"]
    assert get(client, member, "/api/schema?format=yaml").content.startswith(b"openapi:")


ALL_URLS = [
    "/api/latest", f"/api/job/{JOB_OK}", "/api/jobs", f"/api/jobs/{JOB_OK}/events",
    f"/api/jobs/{JOB_OK}/timeline", "/api/architecture", "/api/schema", "/api/events/hostile-1",
    "/api/health",
]  # fmt: skip


@pytest.mark.parametrize("url", ALL_URLS)
def test_it_refuses_anonymous_users(client, events, url):
    response = client.get(url)
    assert response.status_code in (401, 403)
    assert set(response.json()) == {"error"}
    assert JOB_OK not in response.content.decode()


def test_it_accepts_a_token(client, member, events):
    token = Token.objects.create(user=member)
    response = client.get("/api/jobs", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 4
    bad = client.get("/api/jobs", HTTP_AUTHORIZATION="Token not-a-token")
    assert bad.status_code in (401, 403)
    assert set(bad.json()) == {"error"}


def test_it_shows_a_member_only_their_teams_accounts(client, member, events):
    client.force_login(member)
    ids = {job["id"] for job in client.get("/api/jobs").json()["results"]}
    assert ids == {JOB_OK, JOB_FAILED, JOB_SECOND, HOSTILE_JOB}
    assert client.get(f"/api/job/{B_JOB}").status_code == 404
    graph = client.get(f"/api/architecture?{SINCE}").json()
    assert "sm:Other" not in {node["id"] for node in graph["nodes"]}


@pytest.mark.parametrize(
    "url",
    [
        f"/api/job/{JOB_OK}",
        f"/api/jobs/{JOB_OK}/events",
        f"/api/jobs/{JOB_OK}/timeline",
        "/api/job/a6a3a450-6513-470e-a69e-0d37f2a74de4",
    ],
)
def test_it_hides_another_teams_job_from_an_outsider(client, outsider, events, url):
    response = get(client, outsider, url)
    assert response.status_code == 404
    assert JOB_OK not in response.content.decode()


def test_it_lists_nothing_of_another_team_to_an_outsider(client, outsider, events):
    client.force_login(outsider)
    assert [job["id"] for job in client.get("/api/jobs").json()["results"]] == [B_JOB]
    assert [item["sk"] for item in client.get("/api/latest").json()["latest"]] == [f"EVENT#{B_JOB}"]
    graph = json.dumps(client.get(f"/api/architecture?{SINCE}").json())
    assert "EventDrivenMachine" not in graph and "processSingleFn" not in graph


def test_it_shows_a_user_without_a_team_nothing(client, django_user_model, events):
    loner = django_user_model.objects.create_user(username="loner", password="x")
    client.force_login(loner)
    assert client.get("/api/jobs").json()["results"] == []
    assert client.get("/api/latest").json()["latest"] == []
    assert client.get(f"/api/architecture?{SINCE}").json()["nodes"] == []


# ---- one event's whole JSON, and lists cut to a byte budget --------------------------------

BIG_JOB = "123456789012:us-east-1:Big:big1"


def big_envelope(n: int, *, size: int, account: str = ACCOUNT_A, event_id: str = "") -> str:
    detail = {"meta": {"stateMachine": "Big", "job": "big1"}, "blob": "x" * size, "n": n}
    return envelope(
        event_id or f"big-{n:03d}", time=f"2026-11-20T12:00:{n % 60:02d}Z", detail=detail,
        account=account,
    )  # fmt: skip


def test_it_gives_one_events_whole_json(client, member, events):
    response = get(client, member, "/api/events/hostile-1")
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= EVENT_KEYS
    assert body["detail"] == HOSTILE_DETAIL and body["raw"]["id"] == "hostile-1"
    assert get(client, member, f"/api/events/hostile-1?account={ACCOUNT_A}").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/api/events/no-such-event",
        "/api/events/b-1",  # account B: not the member's
        f"/api/events/b-1?account={ACCOUNT_B}",
        f"/api/events/hostile-1?account={ACCOUNT_B}",
        f"/api/events/{'x' * 2000}",
    ],
)
def test_it_answers_404_for_an_event_unknown_or_not_visible(client, member, events, url):
    response = get(client, member, url)
    assert response.status_code == 404
    assert response.json() == {"error": "event not found"}


def test_it_asks_for_the_account_of_an_id_two_accounts_used(client, superuser, outsider, events):
    """Both accounts are known (granted to a team): a superuser must say which one."""
    ingest_bodies([big_envelope(1, size=10, account=ACCOUNT_B, event_id="hostile-1")])
    client.force_login(superuser)
    response = client.get("/api/events/hostile-1")
    assert response.status_code == 400
    assert "account" in response.json()["error"]
    response = client.get(f"/api/events/hostile-1?account={ACCOUNT_B}")
    assert response.status_code == 200
    assert response.json()["account"] == ACCOUNT_B


def test_it_cuts_big_events_of_a_list_and_links_their_whole_json(client, member, settings):
    settings.EDOBS_API_EVENT_BYTES = 16 * 1024
    ingest_bodies([big_envelope(0, size=100), big_envelope(1, size=250_000)])
    client.force_login(member)
    small, big = client.get(f"/api/jobs/{BIG_JOB}/events").json()["results"]
    assert "truncated" not in small and small["detail"]["blob"] == "x" * 100
    assert big["truncated"] is True and big["bytes"] > 500_000
    assert big["detail"] == {
        "truncated": True,
        "bytes": big["detail"]["bytes"],
        "full": big["full"],
    }
    assert big["raw"]["truncated"] is True and big["id"] == "big-001"
    assert client.get(big["full"]).json()["detail"]["blob"] == "x" * 250_000


def test_it_keeps_the_original_shape_and_cuts_only_big_detail_fields(client, member, settings):
    settings.EDOBS_API_EVENT_BYTES = 16 * 1024
    ingest_bodies([big_envelope(0, size=100), big_envelope(1, size=250_000)])
    client.force_login(member)
    small, big = client.get(f"/api/job/{BIG_JOB}").json()["events"]
    assert set(big) == set(small) >= ORIGINAL_KEYS | {"blob", "meta", "n"}
    assert big["blob"]["truncated"] is True and big["blob"]["bytes"] > 250_000
    assert (big["n"], big["meta"], small["blob"]) == (1, {"stateMachine": "Big", "job": "big1"},
                                                      "x" * 100)  # fmt: skip
    assert client.get(big["blob"]["full"]).json()["detail"]["blob"] == "x" * 250_000
    [latest] = [i for i in client.get("/api/latest").json()["latest"] if i["sk"].endswith("big1")]
    assert latest["blob"]["truncated"] is True and latest["n"] == 1


def test_it_keeps_an_api_page_of_sixty_250_kb_events_under_2_mb(client, member):
    ingest_bodies([big_envelope(n, size=250_000) for n in range(60)])
    client.force_login(member)
    response = client.get(f"/api/jobs/{BIG_JOB}/events")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 60
    assert len(response.content) < 2_000_000
    original = client.get(f"/api/job/{BIG_JOB}")
    assert len(original.json()["events"]) == 60 and len(original.content) < 2_000_000


def test_it_documents_the_event_and_health_endpoints(client, member):
    paths = json.loads(get(client, member, "/api/schema").content)["paths"]
    event = paths["/api/events/{event_id}/"]["get"]
    assert set(event["responses"]) == {"200", "400", "401", "403", "404"}
    assert set(paths["/api/health/"]["get"]["responses"]) == {"200", "401", "403"}

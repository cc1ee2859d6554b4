"""GET /api/failures (issue 27, failure groups): grouping, scoping, windows, errors, and the same
groups read from every store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import caches

from events.domain.envelope import parse_envelope
from events.domain.failures import fingerprint
from events.read.failures import groups_in

from .conftest import ingest_bodies
from .failure_traffic import ACCOUNT_A, ACCOUNT_B, job_id, traffic
from .store_fixtures import pg_alias_fixture, store_fixture  # noqa: F401  (fixtures)

URL = "/api/failures"
CAUSE = "OrderNotFound: Order <n> not found in table checkout-orders"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Failed states are cached per process (events.read.failures): each test reads its own."""
    caches["default"].clear()


@pytest.fixture
def now():
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def failing(now):
    ingest_bodies(json.dumps(event) for event in traffic(now))


@pytest.mark.django_db
def test_it_needs_a_login(client):
    response = client.get(URL)

    assert response.status_code in (401, 403)
    assert "error" in response.json()


@pytest.mark.django_db
def test_it_groups_a_members_failures_by_machine_state_error_and_cause(
    client, member, failing, now
):
    client.force_login(member)
    response = client.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert (body["scanned"], body["capped"]) == (4, False)
    assert [(g["state"], g["error"], g["count"]) for g in body["groups"]] == [
        ("Charge", "OrderNotFound", 3), ("Ship", "States.Timeout", 1),
    ]  # fmt: skip
    charge = body["groups"][0]
    assert charge["id"] == fingerprint("Checkout", "Charge", "OrderNotFound", CAUSE)
    assert charge["cause"] == CAUSE
    assert charge["accounts"] == [ACCOUNT_A]
    assert charge["sample_jobs"] == [job_id("c-3"), job_id("c-2"), job_id("c-1")]
    first, last = (datetime.fromisoformat(charge[k]) for k in ("first_seen", "last_seen"))
    assert first == now - timedelta(minutes=300) + timedelta(milliseconds=3500)
    assert last == now - timedelta(minutes=30) + timedelta(milliseconds=3500)
    assert len(charge["trend"]) == 24 and sum(charge["trend"]) == 3
    assert body["bucket_seconds"] == 3600


@pytest.mark.django_db
def test_it_links_each_group_to_a_search_of_its_events_and_jobs(client, member, failing):
    client.force_login(member)
    charge = client.get(URL).json()["groups"][0]

    search = urlsplit(charge["search"])
    query = parse_qs(search.query)
    assert search.path == "/events/"
    assert query["where"] == ['error="OrderNotFound"'] and query["q"] == ["Checkout"]
    assert query["source"] == ["aws.states"]
    found = client.get("/api/events", {"source": "aws.states", "where": query["where"][0],
                                       "q": "Checkout"}).json()["results"]  # fmt: skip
    assert sorted(e["detail"]["name"] for e in found) == ["c-1", "c-2", "c-3"]
    jobs = parse_qs(urlsplit(charge["jobs"]).query)
    assert jobs["status"] == ["FAILED", "TIMED_OUT"] and jobs["state_machine"] == ["Checkout"]


@pytest.mark.django_db
def test_a_superuser_sees_every_accounts_failures_in_one_group(client, superuser, failing):
    client.force_login(superuser)
    charge = client.get(URL).json()["groups"][0]

    assert charge["count"] == 4
    assert charge["accounts"] == [ACCOUNT_A, ACCOUNT_B]


@pytest.mark.django_db
def test_an_outsider_sees_only_its_own_accounts_failure(client, outsider, failing):
    client.force_login(outsider)
    groups = client.get(URL).json()["groups"]

    assert [(g["count"], g["sample_jobs"]) for g in groups] == [(1, [job_id("b-1", ACCOUNT_B)])]


@pytest.mark.django_db
def test_it_filters_by_window_state_machine_and_group(client, member, failing, now):
    client.force_login(member)
    since = (now - timedelta(minutes=90)).isoformat().replace("+00:00", "Z")
    recent = client.get(URL, {"since": since}).json()
    ship = recent["groups"][1]["id"]

    assert [(g["state"], g["count"]) for g in recent["groups"]] == [("Charge", 1), ("Ship", 1)]
    assert recent["since"].startswith(since[:19])
    assert client.get(URL, {"state_machine": "Other"}).json()["groups"] == []
    assert client.get(URL, {"state_machine": "checkout"}).json()["groups"] == []  # exact
    only = client.get(URL, {"group": ship}).json()["groups"]
    assert [(g["id"], g["sample_jobs"]) for g in only] == [(ship, [job_id("t-1")])]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query, field",
    [({"since": "yesterday"}, "since"), ({"until": "2026-13-01T00:00:00Z"}, "until"),
     ({"since": "2026-11-20T10:00:00Z", "until": "2026-11-20T09:00:00Z"}, "since"),
     ({"group": "XYZ"}, "group"), ({"state_machine": "a\x00b"}, "state_machine")],
)  # fmt: skip
def test_it_refuses_bad_parameters(client, member, query, field):
    client.force_login(member)
    response = client.get(URL, query)

    assert response.status_code == 400
    assert field in response.json()["error"]


@pytest.mark.django_db
def test_it_is_in_the_openapi_document(client, member):
    client.force_login(member)
    paths = client.get("/api/schema").json()["paths"]

    assert "/api/failures/" in paths
    assert "sample_jobs" in json.dumps(client.get("/api/schema").json()["components"])


def test_every_store_gives_the_same_groups(store, now):
    events = [parse_envelope(e, default_account=ACCOUNT_A) for e in traffic(now)]
    store.ingest(events)

    found = groups_in(store, accounts=frozenset({ACCOUNT_A}), since=now - timedelta(hours=24),
                      until=now)  # fmt: skip
    capped = groups_in(store, accounts=None, since=now - timedelta(hours=24), until=now, cap=2)

    assert [(g.state, g.error, g.cause, g.count) for g in found.groups] == [
        ("Charge", "OrderNotFound", CAUSE, 3), ("Ship", "States.Timeout", "", 1),
    ]  # fmt: skip
    assert (found.scanned, found.capped) == (4, False)
    assert (capped.scanned, capped.capped) == (2, True)


@pytest.mark.django_db
def test_a_failed_state_is_read_once_until_its_job_changes(now):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from events.stores import get_store

    ingest_bodies(json.dumps(event) for event in traffic(now))
    since = now - timedelta(hours=24)

    def read() -> tuple[int, list]:
        with CaptureQueriesContext(connection) as queries:
            found = groups_in(get_store(), accounts=None, since=since, until=now)
        return len(queries), [(g.state, g.count) for g in found.groups]

    first, second = read(), read()
    late = next(e for e in traffic(now) if e["id"] == f"c-3-charge-{ACCOUNT_A}")
    late = {**late, "id": "c-3-late-retry", "detail": {**late["detail"], "retry": 1}}
    ingest_bodies([json.dumps(late)])
    third = read()

    assert first[1] == second[1] == third[1] == [("Charge", 4), ("Ship", 1)]
    assert second[0] == first[0] - 5  # the five failed jobs' events: read once
    assert third[0] == second[0] + 1  # c-3 changed: its events read again

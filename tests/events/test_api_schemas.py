"""GET /api/schemas and /api/schemas/<source>/<detail-type>: shapes, windows, team scoping."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from .conftest import ACCOUNT_A, ACCOUNT_B, ingest_bodies
from .drift_traffic import drift_traffic

pytestmark = pytest.mark.django_db


@pytest.fixture
def traffic():
    """Drift traffic in account A, and the same producer in account B with no drift."""
    mine = drift_traffic(account=ACCOUNT_A)
    theirs = drift_traffic(until=mine.until, account=ACCOUNT_B)
    for envelope in theirs.current:
        envelope["detail"]["secretOfB"] = 1
    ingest_bodies([json.dumps(e) for e in mine.envelopes + theirs.envelopes])
    return mine


def window(traffic) -> dict:
    return {"since": traffic.since.isoformat(), "until": traffic.until.isoformat()}


def login(client, user):
    client.force_login(user)
    return client


def test_it_lists_each_type_with_its_fields_and_drift(client, member, traffic):
    response = login(client, member).get("/api/schemas", window(traffic))

    assert response.status_code == 200
    body = response.json()
    types = {(t["source"], t["detail_type"]): t for t in body["types"]}
    assert set(types) == {("orders", "OrderPlaced"), ("shipping", "OrderShipped")}
    placed = types[("orders", "OrderPlaced")]
    assert placed["events"] == 20 and placed["drift"] == 3 and placed["new"] is False
    order_id = next(f for f in placed["fields"] if f["path"] == "orderId")
    assert order_id == {"path": "orderId", "types": ["number", "string"], "presence": 1.0,
                        "count": 20}  # fmt: skip
    assert body["base_until"] == body["since"] and body["comparable"] is True


def test_it_details_one_type_with_first_events_and_a_json_schema(client, member, traffic):
    response = login(client, member).get("/api/schemas/orders/OrderPlaced", window(traffic))

    assert response.status_code == 200
    body = response.json()
    assert [c["path"] for c in body["drift"]["added"]] == ["coupon"]
    assert [c["path"] for c in body["drift"]["removed"]] == ["legacyCode"]
    changed = body["drift"]["changed"][0]
    assert changed["first_event"]["id"] == traffic.first["changed"]["id"]
    assert changed["first_event"]["account"] == ACCOUNT_A
    assert changed["first_event"]["job"].startswith(f"{ACCOUNT_A}:us-east-1:OrderMachine:")
    assert body["schema"]["type"] == "object" and "coupon" in body["schema"]["properties"]
    assert "secretOfB" not in json.dumps(body)


def test_a_superuser_sees_every_account(client, superuser, traffic):
    body = login(client, superuser).get("/api/schemas/orders/OrderPlaced", window(traffic)).json()

    assert body["events"] == 40
    assert "secretOfB" in [c["path"] for c in body["drift"]["added"]]


def test_an_outsider_sees_only_their_own_account(client, django_user_model, traffic):
    from events.models import Team, TeamAccount

    carol = django_user_model.objects.create_user("carol", password="pw-carol-123")
    team = Team.objects.create(name="C")
    team.members.add(carol)
    TeamAccount.objects.create(team=team, account="555555555555")
    client = login(client, carol)

    assert client.get("/api/schemas", window(traffic)).json()["types"] == []
    response = client.get("/api/schemas/orders/OrderPlaced", window(traffic))
    assert response.status_code == 404 and set(response.json()) == {"error"}


def test_the_new_producer_is_new_with_its_first_event(client, member, traffic):
    body = login(client, member).get("/api/schemas/shipping/OrderShipped", window(traffic)).json()

    assert body["new"] is True and body["base_events"] == 0
    assert {c["first_event"]["id"] for c in body["drift"]["added"]} == {traffic.first["new"]["id"]}


def test_an_explicit_base_window_is_used(client, member, traffic):
    query = {**window(traffic), "base_since": traffic.since.isoformat(),
             "base_until": traffic.until.isoformat()}  # fmt: skip

    body = login(client, member).get("/api/schemas/orders/OrderPlaced", query).json()

    assert body["drift_count"] == 0 and body["base_events"] == 20


def test_a_detail_type_with_a_slash_and_spaces_is_addressable(client, superuser):
    envelope = drift_traffic().current[0]
    envelope["detail-type"] = "Order Placed/v2"
    ingest_bodies([json.dumps(envelope)])

    url = f"/api/schemas/orders/{quote('Order Placed/v2')}"
    response = login(client, superuser).get(url)

    assert response.status_code == 200, response.content
    assert response.json()["detail_type"] == "Order Placed/v2"


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2026-11-20T10:00:00Z", "until": "2026-11-20T09:00:00Z"},
        {"since": "2026-11-20T10:00:00Z", "until": "2026-11-20T10:00:00Z"},
        {"since": "2026-11-20T09:00:00Z", "until": "2026-11-20T10:00:00Z",
         "base_since": "2026-11-20T08:00:00Z", "base_until": "2026-11-20T07:00:00Z"},
        {"since": "yesterday"},
        {"base_until": ""},
        {"since": "0001-01-01T00:00:00Z", "until": "0001-01-01T01:00:00Z"},
        {"since": "9999-12-31T23:00:00Z"},
        {"until": "0001-01-01T01:00:00Z"},
    ],
    ids=["reversed", "empty", "reversed base", "not a time", "empty base", "before year 1",
         "until past 9999", "since before year 1"],
)  # fmt: skip
@pytest.mark.parametrize("url", ["/api/schemas", "/api/schemas/orders/OrderPlaced"])
def test_it_refuses_a_bad_window_with_400(client, member, url, query):
    response = login(client, member).get(url, query)

    assert response.status_code == 400, response.content
    assert set(response.json()) == {"error"}


def test_it_needs_a_login(client, db):
    for url in ("/api/schemas", "/api/schemas/orders/OrderPlaced"):
        response = client.get(url)
        assert response.status_code in (401, 403) and set(response.json()) == {"error"}


def test_the_architecture_nodes_carry_drift(client, member, traffic):
    body = login(client, member).get("/api/architecture", window(traffic)).json()

    nodes = {node["id"]: node for node in body["nodes"]}
    assert nodes["event:orders/OrderPlaced"]["drift"] == 3
    assert nodes["event:shipping/OrderShipped"]["drift"] == 3
    assert all("drift" not in node for node in body["nodes"] if node["kind"] != "event")

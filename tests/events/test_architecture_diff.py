"""The architecture diff (events.domain.architecture_diff, GET /api/architecture/diff), on generated
traffic in two windows: a consumer appears, a consumer and its event type disappear, one Lambda
gets three times slower, and another account runs its own state machine meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.domain.architecture_diff import architecture_diff, p95_moved, previous_period

from .conftest import ingest_bodies
from .flows import ACCOUNT_B, Step, bodies, job_envelopes

BASE_START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
START = BASE_START + timedelta(hours=1)
END = START + timedelta(hours=1)
URL = "/api/architecture/diff"
WINDOWS = {
    "since": "2026-11-20T11:00:00Z", "until": "2026-11-20T12:00:00Z",
    "base_since": "2026-11-20T10:00:00Z", "base_until": "2026-11-20T11:00:00Z",
}  # fmt: skip
PRICE_IN = ("event:shop/orderPlaced", "fn:priceFn")
PRICE_OUT = ("fn:priceFn", "event:shop/orderPriced")


def base_steps(job: int) -> list[Step]:
    return [
        Step("priceFn", "orderPlaced", "orderPriced", 180 + 5 * job),
        Step("legacyFn", "orderPriced", "orderArchived", 90),
        Step("shipFn", "orderPriced", "orderShipped", 300),
    ]


def steps(job: int) -> list[Step]:
    return [
        Step("priceFn", "orderPlaced", "orderPriced", 3 * (180 + 5 * job)),  # three times slower
        Step("shipFn", "orderPriced", "orderShipped", 330),  # 10 % slower: not a move
        Step("auditFn", "orderPriced", "orderAudited", 120),  # a new consumer
    ]


@pytest.fixture
def traffic(db):
    envelopes = []
    for job in range(4):
        envelopes += job_envelopes(
            machine="OrderMachine", start=BASE_START + timedelta(minutes=5 + 10 * job),
            trigger="orderPlaced", steps=base_steps(job),
        )  # fmt: skip
        envelopes += job_envelopes(
            machine="OrderMachine", start=START + timedelta(minutes=5 + 10 * job),
            trigger="orderPlaced", steps=steps(job),
        )  # fmt: skip
    envelopes += job_envelopes(
        machine="LedgerMachine", account=ACCOUNT_B, source="ledger",
        start=START + timedelta(minutes=20), trigger="ledgerOpened",
        steps=[Step("bookFn", "ledgerOpened", "ledgerBooked", 75)],
    )  # fmt: skip
    ingest_bodies(bodies(envelopes))


def ids(rows) -> set[str]:
    return {row["id"] for row in rows}


def pairs(rows) -> set[tuple[str, str]]:
    return {(row["source"], row["target"]) for row in rows}


def test_it_answers_200_with_the_diff_lists(client, superuser, traffic):
    client.force_login(superuser)

    response = client.get(URL, WINDOWS)

    assert response.status_code == 200
    assert set(response.json()) == {
        "nodes_added", "nodes_removed", "edges_added", "edges_removed", "edges_moved",
        "comparable",
    }  # fmt: skip
    assert response.json()["comparable"] is True


def test_it_finds_the_consumer_that_appeared(client, member, traffic):
    client.force_login(member)

    diff = client.get(URL, WINDOWS).json()

    assert ids(diff["nodes_added"]) == {"fn:auditFn", "event:shop/orderAudited"}
    assert pairs(diff["edges_added"]) == {
        ("event:shop/orderPriced", "fn:auditFn"), ("fn:auditFn", "event:shop/orderAudited"),
    }  # fmt: skip
    added = {(e["source"], e["target"]): e for e in diff["edges_added"]}
    assert added[("event:shop/orderPriced", "fn:auditFn")]["count"] == 4
    # latencies come from the ORM store's DDSketch rollups: within 1% of the exact value
    assert added[("event:shop/orderPriced", "fn:auditFn")]["p95_ms"] == pytest.approx(120, rel=0.01)


def test_it_finds_the_consumer_that_went_away_with_its_base_numbers(client, member, traffic):
    client.force_login(member)

    diff = client.get(URL, WINDOWS).json()

    assert ids(diff["nodes_removed"]) == {"fn:legacyFn", "event:shop/orderArchived"}
    removed = {(e["source"], e["target"]): e for e in diff["edges_removed"]}
    assert set(removed) == {
        ("event:shop/orderPriced", "fn:legacyFn"), ("fn:legacyFn", "event:shop/orderArchived"),
    }  # fmt: skip
    assert removed[("fn:legacyFn", "event:shop/orderArchived")]["count"] == 4
    legacy = next(n for n in diff["nodes_removed"] if n["id"] == "fn:legacyFn")
    assert legacy["kind"] == "fn" and legacy["count"] == 4


def test_it_finds_the_edge_whose_p95_tripled_and_only_that(client, member, traffic):
    client.force_login(member)

    moved = {(e["source"], e["target"]): e for e in client.get(URL, WINDOWS).json()["edges_moved"]}

    assert set(moved) == {PRICE_IN, PRICE_OUT}  # shipFn's 10 % is not a move
    assert moved[PRICE_IN]["base_p95_ms"] == pytest.approx(195, rel=0.01)  # DDSketch: ±1%
    assert moved[PRICE_IN]["p95_ms"] == pytest.approx(585, rel=0.01)
    assert moved[PRICE_IN]["count"] == moved[PRICE_IN]["base_count"] == 4


def test_it_compares_with_the_previous_period_by_default(client, member, traffic):
    client.force_login(member)

    explicit = client.get(URL, WINDOWS).json()
    default = client.get(URL, {"since": WINDOWS["since"], "until": WINDOWS["until"]}).json()

    assert default == explicit


def test_it_shows_a_team_only_its_own_accounts(client, member, outsider, superuser, traffic):
    seen, comparable = {}, {}
    for user in (member, outsider, superuser):
        client.force_login(user)
        body = client.get(URL, WINDOWS).json()
        seen[user.username], comparable[user.username] = (
            ids(body["nodes_added"]),
            body["comparable"],
        )

    ledger = {"sm:LedgerMachine", "fn:bookFn", "event:ledger/ledgerOpened"}
    assert not ledger & seen["alice"] and comparable["alice"] is True
    # Bob's account ran nothing in the base window: nothing to compare, and none of A's nodes
    assert seen["bob"] == set() and comparable["bob"] is False
    assert ledger | {"fn:auditFn"} <= seen["root"]


def test_an_outsider_sees_nothing_removed_or_moved_of_another_team(client, outsider, traffic):
    client.force_login(outsider)

    diff = client.get(URL, WINDOWS).json()

    assert diff["nodes_removed"] == diff["edges_removed"] == diff["edges_moved"] == []


def test_it_narrows_both_windows_to_a_state_machine(client, superuser, traffic):
    client.force_login(superuser)

    diff = client.get(URL, {**WINDOWS, "state_machine": "OrderMachine"}).json()
    ledger = client.get(URL, {**WINDOWS, "state_machine": "LedgerMachine"}).json()

    assert "fn:auditFn" in ids(diff["nodes_added"])
    assert not {"sm:LedgerMachine", "fn:bookFn"} & ids(diff["nodes_added"])
    assert ledger["comparable"] is False and ledger["nodes_added"] == []  # no base run of it


@pytest.mark.parametrize(
    "query,field",
    [
        ({"since": "2026-11-20T12:00:00Z", "until": "2026-11-20T11:00:00Z"}, "since"),
        ({"since": "2026-11-20T11:00:00Z", "until": "2026-11-20T11:00:00Z"}, "since"),
        ({**WINDOWS, "base_until": "2026-11-20T09:00:00Z"}, "base_since"),
        ({"base_since": "yesterday"}, "base_since"),
        ({"base_until": ""}, "base_until"),
        ({"state_machine": "a\x00b"}, "state_machine"),
    ],
)
def test_it_refuses_a_window_it_cannot_use_with_400(client, member, query, field):
    client.force_login(member)

    response = client.get(URL, query)

    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert response.json()["error"].startswith(field)


def test_it_refuses_anonymous_users(client, db):
    response = client.get(URL, WINDOWS)

    assert response.status_code in (401, 403)
    assert set(response.json()) == {"error"}


# --- the pure comparison ------------------------------------------------------------------------


def edge(source, target, p95, count=1):
    return {"source": source, "target": target, "count": count, "p50_ms": p95, "p95_ms": p95}


@pytest.mark.parametrize(
    "base,now,moved",
    [(200, 300, False), (200, 301, True), (200, 99, True), (200, 100, False),
     (None, 500, False), (200, None, False), (0, 1, True), (0, 0, False)],
)  # fmt: skip
def test_a_p95_moves_when_it_changes_by_more_than_half(base, now, moved):
    assert p95_moved(base, now) is moved


def test_it_compares_graphs_by_node_id_and_edge_ends():
    node = {"id": "fn:a", "kind": "fn", "label": "a", "count": 1, "sink": False, "unknown": False}
    base = {"nodes": [node], "edges": [edge("x", "fn:a", 100), edge("fn:a", "y", 100)]}
    graph = {"nodes": [{**node, "count": 9}], "edges": [edge("x", "fn:a", 400, count=9)]}

    diff = architecture_diff(graph=graph, base=base)

    assert diff["nodes_added"] == diff["nodes_removed"] == diff["edges_added"] == []
    assert diff["edges_removed"] == [edge("fn:a", "y", 100)]
    assert diff["edges_moved"] == [
        {"source": "x", "target": "fn:a", "count": 9, "base_count": 1,
         "p95_ms": 400, "base_p95_ms": 100},
    ]  # fmt: skip


def test_the_previous_period_is_as_long_and_ends_where_the_window_starts():
    assert previous_period(START, END) == (BASE_START, START)


def test_the_previous_period_of_a_window_from_year_one_starts_at_year_one(client, member, db):
    client.force_login(member)
    widest = {"since": "1970-01-01T00:00:00Z", "until": "2999-12-31T23:59:59Z"}
    far = {"since": "0001-01-02T00:00:00Z", "until": "9999-12-31T23:59:59Z"}

    assert previous_period(START, START + (START - datetime.min.replace(tzinfo=UTC)))[0].year == 1
    assert client.get(URL, widest).status_code == 200
    # bounds near the calendar's ends are refused before any arithmetic (issue 24 section 5)
    answer = client.get(URL, far)
    assert answer.status_code == 400
    assert "since" in answer.json()["error"]


def test_it_compares_nothing_with_a_base_without_events(client, member, traffic):
    """A base before the traffic began: not every node "added", but nothing compared."""
    client.force_login(member)
    empty_base = {**WINDOWS, "base_since": "2026-11-20T08:00:00Z",
                  "base_until": "2026-11-20T09:00:00Z"}  # fmt: skip

    body = client.get(URL, empty_base).json()

    assert body["comparable"] is False
    assert [body[key] for key in ("nodes_added", "nodes_removed", "edges_added",
            "edges_removed", "edges_moved")] == [[], [], [], [], []]  # fmt: skip

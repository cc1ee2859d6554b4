"""Architecture rollups (events.domain.rollups, events.stores.orm.rollups): kept at ingest, they
give the same architecture as the raw computation over the same events."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError

from bench import rollup_traffic
from events.domain.architecture import infer_architecture
from events.domain.rollups import pieces
from events.models import ArchitectureRollup, Event, PendingSpan, Team, TeamAccount
from events.read import selectors
from events.stores import StoreRefused, StoreUnavailable
from events.stores.base import Window
from events.stores.orm import rollups as rollups_module
from events.stores.orm.store import OrmStore
from tests.events import store_fixtures
from tests.events.store_fixtures import pg_alias_fixture  # noqa: F401  (fixture)

START = datetime(2026, 11, 20, 8, 0, 0, tzinfo=UTC)
SECONDS = 2 * 3600 + 20 * 60  # two whole hours, minutes and seconds either side
TOLERANCE = 0.02


@pytest.fixture(scope="module")
def traffic():
    return rollup_traffic.events(1_500, start=START + timedelta(seconds=37), seconds=SECONDS)


def delivered(traffic, **options) -> OrmStore:
    store = OrmStore()
    for batch in rollup_traffic.deliveries(traffic, **options):
        store.ingest(batch)
    return store


@pytest.fixture
def store(traffic):
    """Delivered in SQS-sized batches, some twice, some answers before their triggers."""
    return delivered(traffic)


def snapshot() -> dict:
    return {
        row.key: (row.count, row.sketch)
        for row in ArchitectureRollup.objects.all()
    }  # fmt: skip


def raw(store: OrmStore, window: Window, accounts=None) -> dict:
    return infer_architecture(store.events_window(window, accounts=accounts))


def assert_same(rolled: dict, exact: dict) -> float:
    """Same nodes, same edges and counts; returns the largest relative p95 (and p50) error."""
    assert rolled["nodes"] == exact["nodes"]
    strip = [{k: v for k, v in e.items() if not k.startswith("p")} for e in rolled["edges"]]
    assert strip == [{k: v for k, v in e.items() if not k.startswith("p")} for e in exact["edges"]]
    worst = 0.0
    for mine, theirs in zip(rolled["edges"], exact["edges"], strict=True):
        for name in ("p50_ms", "p95_ms"):
            if theirs[name] is None:
                assert mine[name] is None, (mine, theirs)
                continue
            worst = max(worst, abs(mine[name] - theirs[name]) / max(theirs[name], 1))
    return worst


WINDOWS = {
    "everything": Window(since=START - timedelta(days=1)),
    "unaligned": Window(
        since=START + timedelta(minutes=17, seconds=23),
        until=START + timedelta(hours=2, minutes=9, seconds=41),
    ),
    "within a minute": Window(
        since=START + timedelta(seconds=30),
        until=START + timedelta(seconds=85),
    ),
    "one machine": Window(since=START - timedelta(hours=1), state_machine="OrderMachine"),
}


@pytest.mark.parametrize("name", WINDOWS)
@pytest.mark.django_db
def test_the_rollups_give_the_raw_architecture(store, name):
    window = WINDOWS[name]

    rolled = store.architecture(window, accounts=None)
    exact = raw(store, window)

    assert exact["nodes"]
    assert name == "within a minute" or any(e["p95_ms"] for e in exact["edges"])
    assert assert_same(rolled, exact) <= TOLERANCE


def test_a_day_is_read_from_hour_rows_minute_rows_and_raw_ends():
    since = datetime(2026, 11, 20, 8, 17, 23, tzinfo=UTC)
    until = datetime(2026, 11, 21, 8, 9, 41, tzinfo=UTC)

    found = [(p.width, p.since.strftime("%d %H:%M:%S"), p.until.strftime("%d %H:%M:%S"))
             for p in pieces(since, until)]  # fmt: skip

    assert found == [
        (None, "20 08:17:23", "20 08:18:00"),
        (60, "20 08:18:00", "20 09:00:00"),
        (3600, "20 09:00:00", "21 08:00:00"),
        (60, "21 08:00:00", "21 08:09:00"),
        (None, "21 08:09:00", "21 08:09:41"),
    ]


@pytest.mark.django_db
def test_a_redelivered_batch_changes_no_rollup(store, traffic):
    before = snapshot()
    pending = PendingSpan.objects.count()

    for batch in rollup_traffic.deliveries(traffic[:500], seed=3):
        assert set(store.ingest(batch)) == {"duplicate"}

    assert snapshot() == before
    assert PendingSpan.objects.count() == pending


@pytest.mark.django_db
def test_a_trigger_arriving_after_its_answer_gives_the_latency(traffic):
    store = OrmStore()
    named = next(e for e in traffic if e.fn and e.correlation.incoming_id)
    trigger = next(e for e in traffic if e.id == named.correlation.incoming_id)

    store.ingest([named])
    assert PendingSpan.objects.filter(wanted=trigger.id).exists()
    store.ingest([trigger])

    assert not PendingSpan.objects.exists()
    edges = store.architecture(Window(since=START - timedelta(days=1)), accounts=None)["edges"]
    expected = round((named.at - trigger.at).total_seconds() * 1000)
    latencies = [edge["p95_ms"] for edge in edges if edge["target"] == f"fn:{named.fn}"]
    assert latencies and abs(latencies[0] - expected) <= TOLERANCE * expected


@pytest.mark.django_db
def test_a_batch_that_fails_leaves_no_rollup(traffic, monkeypatch):
    store = OrmStore()

    def broken(using, deltas):
        raise DatabaseError("disk I/O error")

    monkeypatch.setattr(rollups_module, "write", broken)
    with pytest.raises(StoreUnavailable):
        store.ingest(traffic[:10])

    assert not Event.objects.exists()
    assert not ArchitectureRollup.objects.exists()


@pytest.mark.django_db
def test_a_refused_event_leaves_no_rollup_of_its_batch(traffic):
    store = OrmStore()
    batch = traffic[:10]
    batch[3].raw["detail"]["ratio"] = float("nan")  # SQLite's JSON check refuses it

    try:
        with pytest.raises(StoreRefused):
            store.ingest(batch)
    finally:
        del batch[3].raw["detail"]["ratio"]

    assert not Event.objects.exists()
    assert not ArchitectureRollup.objects.exists()


def latency_counts(rows: dict) -> dict:
    return {key: (count, sum((sketch or {}).values())) for key, (count, sketch) in rows.items()}


@pytest.mark.django_db
def test_the_rebuild_command_makes_the_same_rollups(traffic):
    # In time order (redeliveries included). Spans paired by trigger id give the same sketches;
    # those paired by order may pick another trigger (or none) at ingest than among the whole
    # job, whose exact rules go first (see docs/PERFORMANCE.md): a few bins may differ.
    delivered(traffic, swaps=0)
    before = snapshot()
    window = WINDOWS["everything"]
    answer = OrmStore().architecture(window, accounts=None)
    pending = set(PendingSpan.objects.values_list("account", "end_event", "wanted"))
    ArchitectureRollup.objects.all().delete()
    PendingSpan.objects.all().delete()
    out = io.StringIO()

    call_command("rebuild_rollups", stdout=out)

    after = snapshot()
    assert {key: count for key, (count, _) in after.items()} == {
        key: count for key, (count, _) in before.items()
    }
    spans = [sum(n for _, n in latency_counts(rows).values()) for rows in (after, before)]
    assert abs(spans[0] - spans[1]) <= 0.01 * spans[1]
    same = sum(after[key] == before[key] for key in before)
    assert same >= 0.97 * len(before)
    assert assert_same(OrmStore().architecture(window, accounts=None), answer) <= TOLERANCE
    assert set(PendingSpan.objects.values_list("account", "end_event", "wanted")) == pending
    assert "rebuilt the rollups of" in out.getvalue()


@pytest.mark.django_db
def test_rebuild_after_out_of_order_delivery_keeps_counts_and_close_latencies(store):
    window = WINDOWS["everything"]
    before = store.architecture(window, accounts=None)
    ArchitectureRollup.objects.all().delete()

    call_command("rebuild_rollups", stdout=io.StringIO())

    assert assert_same(store.architecture(window, accounts=None), before) <= TOLERANCE


@pytest.mark.django_db
def test_rebuild_since_keeps_what_is_older(traffic):
    delivered(traffic, swaps=0)
    before = snapshot()
    since = START + timedelta(hours=1, minutes=30)
    ArchitectureRollup.objects.filter(bucket__gte=since.timestamp()).delete()

    call_command("rebuild_rollups", since=since.isoformat(), stdout=io.StringIO())

    after = snapshot()
    assert {key: count for key, (count, _) in after.items()} == {
        key: count for key, (count, _) in before.items()
    }
    older = ArchitectureRollup.objects.filter(bucket__lt=since.timestamp() - 3600)
    assert all(after[key] == before[key] for key in older.values_list("key", flat=True))


@pytest.mark.django_db
def test_purge_keeps_rollups_and_events_the_same(store, traffic):
    # Everything older than 1 hour after the traffic started arrived long ago, but one job
    # was replayed: its events keep their old time and arrive now, within the retention.
    cut = START + timedelta(hours=1, minutes=25)
    replay = [e for e in traffic if e.job == next(t.job for t in traffic[50:] if t.job)]
    Event.objects.filter(time__lt=cut).update(received_at=START)
    Event.objects.filter(event_id__in=[e.id for e in replay]).update(
        received_at=cut + timedelta(hours=1)
    )

    deleted = store.purge(before=cut)

    assert deleted > 0
    window = Window(since=START - timedelta(days=1))
    rolled, exact = store.architecture(window, accounts=None), raw(store, window)
    assert assert_same(rolled, exact) <= TOLERANCE
    assert not ArchitectureRollup.objects.filter(bucket__lt=START.timestamp()).exists()
    early = Window(since=START - timedelta(days=1), until=START + timedelta(hours=1))
    assert sum(n["count"] for n in store.architecture(early, accounts=None)["nodes"]) > 0


@pytest.mark.django_db
def test_a_team_sees_the_rollups_of_its_accounts_only(store, django_user_model):
    granted = rollup_traffic.ACCOUNTS[1]
    user = django_user_model.objects.create_user(username="carol", password="pw-x1")
    team = Team.objects.create(name="Team C")
    team.members.add(user)
    TeamAccount.objects.create(team=team, account=granted)
    window = WINDOWS["unaligned"]

    graph = selectors.architecture_graph(user=user, window=window)
    everything = selectors.architecture_graph(
        user=django_user_model.objects.create_superuser(username="root", password="pw-x2"),
        window=window,
    )

    exact = raw(store, window, accounts=frozenset({granted}))
    assert assert_same(graph, exact) <= TOLERANCE
    assert sum(e["count"] for e in graph["edges"]) < sum(e["count"] for e in everything["edges"])
    outsider = django_user_model.objects.create_user(username="dave", password="pw-x3")
    assert selectors.architecture_graph(user=outsider, window=window) == {"nodes": [], "edges": []}


@pytest.fixture(
    params=[pytest.param("sqlite", marks=pytest.mark.django_db), "postgres", "dynamodb"]
)
def any_store(request):
    """The same traffic in each store (SQLite and PostgreSQL from rollups, DynamoDB raw)."""
    if request.param == "sqlite":
        found = OrmStore()
    elif request.param == "postgres":
        found = store_fixtures.postgres_store(request)
    else:
        found = store_fixtures.dynamo_store(request)
    return found


def test_every_store_gives_the_same_architecture(any_store):
    now = datetime.now(UTC).replace(microsecond=0)
    # DynamoDB computes from the raw events (no rollups): a little traffic shows it answers the
    # same; moto copies the whole table on every transaction, so 600 events took 2.5 minutes.
    size = 600 if isinstance(any_store, OrmStore) else 150
    recent = rollup_traffic.events(size, start=now - timedelta(hours=2), seconds=5400, seed=5)
    for batch in rollup_traffic.deliveries(recent):
        any_store.ingest(batch)
    window = Window(since=now - timedelta(hours=3, seconds=-17))
    exact = infer_architecture(any_store.events_window(window, accounts=None))

    graph = any_store.architecture(window, accounts=None)

    assert exact["edges"]
    assert assert_same(graph, exact) <= TOLERANCE
    mine = any_store.architecture(window, accounts=frozenset({rollup_traffic.ACCOUNTS[0]}))
    assert 0 < sum(e["count"] for e in mine["edges"]) < sum(e["count"] for e in graph["edges"])


@pytest.fixture(params=[pytest.param("sqlite", marks=pytest.mark.django_db), "postgres"])
def orm_store(request):
    return OrmStore() if request.param == "sqlite" else store_fixtures.postgres_store(request)


def test_a_token_answer_is_paired_without_decoding_its_jobs_history(orm_store, monkeypatch):
    """Original-design answers name no trigger id, only its type and the task token: the
    rollups pair each one among the events carrying its token, so a batch's cost does not grow
    with the job's history (it decoded every earlier event of the job for every batch)."""
    arn = "arn:aws:states:us-east-1:123456789012:execution:EventDrivenMachine:long-job"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)

    def pair(n: int) -> list:
        trigger = {"execution": arn, "TaskToken": f"token-{n}"}
        answer = trigger | {"meta": {
            "fn": "processSingleFn", "stateMachine": "EventDrivenMachine", "job": "long-job",
            "incoming": {"source": "project", "detailType": "getUserProfile"},
            "outgoing": {"source": "project", "detailType": "getUserCookies"},
        }}  # fmt: skip
        at = start + timedelta(seconds=2 * n)
        return [
            envelope_event("getUserProfile", trigger, at),
            envelope_event("getUserCookies", answer, at + timedelta(milliseconds=250 + n)),
        ]

    for n in range(0, 150, 5):
        orm_store.ingest([event for k in range(n, n + 5) for event in pair(k)])
    decoded = []
    real = rollups_module.event_from_values
    monkeypatch.setattr(rollups_module, "event_from_values",
                        lambda values: decoded.append(1) or real(values))  # fmt: skip
    trigger, answer = pair(150)
    orm_store.ingest([trigger])
    orm_store.ingest([answer])

    assert len(decoded) <= 2  # the trigger and the answer with token-150, not 300 events
    window = Window(since=start - timedelta(minutes=1))
    graph = orm_store.architecture(window, accounts=None)
    (edge,) = [e for e in graph["edges"] if e["target"] == "fn:processSingleFn"]
    assert edge["count"] == 151
    assert abs(edge["p95_ms"] - 393) <= 0.02 * 393  # 250 + n ms for n < 151: the 144th is 393
    assert assert_same(graph, raw(orm_store, window)) <= TOLERANCE


def envelope_event(detail_type: str, detail: dict, at: datetime):
    from events.domain.envelope import parse_envelope

    return parse_envelope({
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type,
        "source": "project", "account": "123456789012",
        "time": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "region": "us-east-1", "resources": [], "detail": detail,
    }, default_account="123456789012")  # fmt: skip

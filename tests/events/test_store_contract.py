"""One contract for every store (DESIGN section 4): SQLite, PostgreSQL and DynamoDB (moto).

Everything the API, the sockets and the pages read is checked here through the Store protocol.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config
from django.core.management import call_command
from django.db import connections

from events.domain.envelope import parse_envelope
from events.ingest.services import InboundMessage, event_ingest
from events.models import Event, Job
from events.read import selectors
from events.stores import reset_stores
from events.stores.base import BadCursor, JobFilter, StoreUnavailable, Window, encode_cursor
from events.stores.dynamodb.store import DynamoStore
from events.stores.orm.store import OrmStore
from infra.table import ensure_table, table_spec
from tests.events import shapes_traffic as shapes
from tests.events.store_fixtures import (  # noqa: F401  (fixtures)
    ACCOUNT_A,
    ACCOUNT_B,
    TABLE,
    dynamo_store,
    envelope,
    job_id,
    make_event,
    now_second,
    pg_alias_fixture,
    postgres_store,
    store_fixture,
)

ALL = None  # every account, as for a superuser
NO_FILTER = JobFilter()


def all_job_events(store, job: str, *, limit: int, accounts=ALL) -> list:
    """Every event of a job, page by page, failing if a page repeats."""
    events, cursor, pages = [], None, 0
    while True:
        page = store.job_events(job, accounts=accounts, limit=limit, cursor=cursor)
        events += page.items
        pages += 1
        cursor = page.next_cursor
        if cursor is None or pages > 100:
            return events


def all_jobs(store, *, limit: int, accounts=ALL, filters=NO_FILTER) -> list:
    jobs, cursor, pages = [], None, 0
    while True:
        page = store.latest_jobs(accounts=accounts, limit=limit, cursor=cursor, filters=filters)
        jobs += page.items
        pages += 1
        cursor = page.next_cursor
        if cursor is None or pages > 100:
            return jobs


def test_it_stores_new_events_and_reports_duplicates(store):
    t = now_second()
    one, two, three = (make_event(at=t + timedelta(seconds=i)) for i in range(3))

    assert store.ingest([one, two, one]) == ["stored", "stored", "duplicate"]
    assert store.ingest([two, three]) == ["duplicate", "stored"]

    events = all_job_events(store, job_id(), limit=50)
    assert [e.id for e in events] == [one.id, two.id, three.id]
    assert store.get_job(job_id(), accounts=ALL).event_count == 3


def test_it_detects_a_redelivered_duplicate_with_another_time(store):
    t = now_second()
    first = make_event(at=t, event_id="same-id")
    again = make_event(at=t + timedelta(minutes=5), event_id="same-id", detail_type="other")

    assert store.ingest([first]) == ["stored"]
    assert store.ingest([again]) == ["duplicate"]

    events = all_job_events(store, job_id(), limit=50)
    assert [(e.id, e.detail_type) for e in events] == [("same-id", "step")]
    assert store.get_job(job_id(), accounts=ALL).event_count == 1


def test_it_orders_events_within_the_same_second_by_arrival(store):
    t = now_second()
    same = [make_event(at=t, event_id=f"e-{n}", detail_type=f"d{i}") for i, n in enumerate("93718")]
    earlier = make_event(at=t - timedelta(seconds=1), event_id="e-0")

    store.ingest(same[:3])
    store.ingest(same[3:])
    store.ingest([earlier])

    events = all_job_events(store, job_id(), limit=2)
    assert [e.id for e in events] == ["e-0", "e-9", "e-3", "e-7", "e-1", "e-8"]
    window = store.events_window(Window(), accounts=ALL)
    assert [e.id for e in window] == ["e-0", "e-9", "e-3", "e-7", "e-1", "e-8"]
    assert store.get_job(job_id(), accounts=ALL).latest.id == "e-8"


def test_it_keeps_the_summary_when_events_arrive_out_of_order(store):
    t = now_second()
    failed = make_event(at=t + timedelta(seconds=10), status="FAILED")
    running = make_event(at=t + timedelta(seconds=1), status="RUNNING")
    middle = make_event(at=t + timedelta(seconds=5))

    store.ingest([failed])
    store.ingest([running, middle])

    job = store.get_job(job_id(), accounts=ALL)
    assert job.status == "FAILED"
    assert (job.error, job.cause) == ("Boom", "it broke")
    assert job.first_event_at == t + timedelta(seconds=1)
    assert job.last_event_at == t + timedelta(seconds=10)
    assert job.stopped_at == t + timedelta(seconds=10)
    assert job.latest.id == failed.id
    assert job.execution_arn.endswith(":execution:Machine:job-1")
    assert job.event_count == 3


def test_it_pages_latest_jobs_newest_first_without_gaps_or_repeats(store):
    t = now_second()
    # Jobs 0-3 share their last second: the tie is broken by job id, descending.
    times = [0, 0, 0, 0, 5, 9, 7]
    for n, offset in enumerate(times):
        store.ingest([make_event(at=t + timedelta(seconds=offset), job=f"job-{n}")])

    jobs = all_jobs(store, limit=3)

    assert [j.id for j in jobs] == [job_id(f"job-{n}") for n in (5, 6, 4, 3, 2, 1, 0)]
    first = store.latest_jobs(accounts=ALL, limit=3, cursor=None, filters=NO_FILTER)
    assert len(first.items) == 3 and first.next_cursor
    last = store.latest_jobs(accounts=ALL, limit=7, cursor=None, filters=NO_FILTER)
    assert last.next_cursor is None


def test_it_refuses_a_cursor_it_did_not_make(store):
    store.ingest([make_event(at=now_second())])

    with pytest.raises(BadCursor):
        store.job_events(job_id(), accounts=ALL, limit=10, cursor=encode_cursor("x", 2, 3))
    with pytest.raises(BadCursor):
        store.latest_jobs(accounts=ALL, limit=10, cursor="%%%", filters=NO_FILTER)


# Each was a 500 on some store: values of the wrong type reached a query or a format string.
CRAFTED = [
    [123, "x"], [None, 1], ["x", "y"], [], {"jobs": 1}, ["jobs"], ["events"],
    ["jobs", "123", "x"], ["jobs", None, 1], ["jobs", "x", "y"], ["jobs", 1.5, "x"],
    ["jobs", 1795168800000, 7], ["jobs", -1, "x"], ["jobs", "2026-11-20T10:00:00+00:00"],
    ["jobs", 2**70, "x"], ["jobs", True, "x"], ["jobs", 1795168800000, "a\x00b"],
    ["jobs", 1795168800000, "j" * 2000], ["jobs", 1795168800000, ""],
    ["events", 123], ["events", None], ["events", ["x"]], ["events", "x" * 2000],
    ["events", "2026-11-20T10:00:00", 1], ["events", "0001-01-01T00:00:00+01:00", 1],
    ["events", "2026-11-20T10:00:00+00:00", "1"], ["events", "2026-11-20T10:00:00+00:00", 2**70],
    ["events", "2026-11-20T10:00:00+00:00", False], ["events", "yesterday", 1],
]  # fmt: skip


def test_it_refuses_crafted_cursors(store):
    store.ingest([make_event(at=now_second())])

    for values in CRAFTED:
        cursor = base64.urlsafe_b64encode(json.dumps(values).encode()).decode()
        with pytest.raises(BadCursor):
            store.job_events(job_id(), accounts=ALL, limit=10, cursor=cursor)
        with pytest.raises(BadCursor):
            store.latest_jobs(accounts=ALL, limit=10, cursor=cursor, filters=NO_FILTER)


def test_it_refuses_one_listings_cursor_for_another(store):
    t = now_second()
    store.ingest([make_event(at=t + timedelta(seconds=i), job=f"job-{i % 2}") for i in range(4)])
    jobs_cursor = store.latest_jobs(accounts=ALL, limit=1, cursor=None, filters=NO_FILTER)
    events_cursor = store.job_events(job_id("job-0"), accounts=ALL, limit=1, cursor=None)

    with pytest.raises(BadCursor):
        store.job_events(job_id("job-0"), accounts=ALL, limit=1, cursor=jobs_cursor.next_cursor)
    with pytest.raises(BadCursor):
        store.latest_jobs(
            accounts=ALL, limit=1, cursor=events_cursor.next_cursor, filters=NO_FILTER
        )


def test_it_pages_a_job_past_one_page(store):
    t = now_second()
    events = [make_event(at=t + timedelta(seconds=i // 3)) for i in range(11)]
    for start in range(0, 11, 4):
        store.ingest(events[start : start + 4])

    for limit in (1, 3, 10, 11, 50):
        assert [e.id for e in all_job_events(store, job_id(), limit=limit)] == [
            e.id for e in events
        ]


def test_it_filters_latest_jobs_by_status_and_state_machine(store):
    t = now_second()
    store.ingest([make_event(at=t, job="ok", status="SUCCEEDED")])
    store.ingest([make_event(at=t, job="bad", status="FAILED")])
    store.ingest([make_event(at=t, job="quiet", machine="Other")])

    failed = all_jobs(store, limit=10, filters=JobFilter(status="failed"))
    other = all_jobs(store, limit=10, filters=JobFilter(state_machine="Other"))
    unknown = all_jobs(store, limit=10, filters=JobFilter(status="UNKNOWN"))

    assert [j.id for j in failed] == [job_id("bad")]
    assert [j.id for j in other] == [job_id("quiet", "Other")]
    assert [j.id for j in unknown] == [job_id("quiet", "Other")]


def test_it_shows_a_team_only_its_accounts(store):
    t = now_second()
    store.ingest([make_event(at=t, job="mine", account=ACCOUNT_A)])
    store.ingest([make_event(at=t, job="theirs", account=ACCOUNT_B)])
    store.ingest([make_event(at=t, job=None, account=ACCOUNT_B)])
    team = frozenset({ACCOUNT_A})

    assert [j.id for j in all_jobs(store, limit=10, accounts=team)] == [job_id("mine")]
    assert store.get_job(job_id("theirs", account=ACCOUNT_B), accounts=team) is None
    assert store.find_job(name="theirs", state_machine=None, accounts=team) is None
    assert all_job_events(store, job_id("theirs", account=ACCOUNT_B), limit=10, accounts=team) == []
    window = store.events_window(Window(), accounts=team)
    assert {e.account for e in window} == {ACCOUNT_A}
    nobody = frozenset()
    assert all_jobs(store, limit=10, accounts=nobody) == []
    assert store.find_job(name="mine", state_machine=None, accounts=nobody) is None
    assert all_job_events(store, job_id("mine"), limit=10, accounts=nobody) == []
    assert store.events_window(Window(), accounts=nobody) == []
    assert len(store.events_window(Window(), accounts=ALL)) == 3


def test_it_stores_events_without_a_job(store):
    t = now_second()
    orphan = make_event(at=t, job=None, detail_type="lonely")

    assert store.ingest([orphan]) == ["stored"]
    assert store.ingest([orphan]) == ["duplicate"]

    window = store.events_window(Window(), accounts=ALL)
    assert [(e.id, e.job, e.detail_type) for e in window] == [(orphan.id, None, "lonely")]
    assert all_jobs(store, limit=10) == []


def test_it_keeps_an_oversized_event_and_says_so_when_cut(store):
    t = now_second()
    big = make_event(at=t, detail={"blob": "x" * 500_000, "meta": {"fn": "bigFn"}})

    assert store.ingest([big]) == ["stored"]

    [event] = all_job_events(store, job_id(), limit=10)
    assert event.id == big.id
    assert event.job == job_id() and event.fn == "bigFn"
    if isinstance(store, DynamoStore):
        assert event.detail["_truncated"] is True
        assert event.detail["_bytes"] > 500_000
        assert "blob" not in event.detail
    else:
        assert event.detail["blob"] == "x" * 500_000
    assert store.get_job(job_id(), accounts=ALL).event_count == 1


def test_it_finds_the_newest_job_of_an_execution_name(store):
    t = now_second()
    store.ingest([make_event(at=t, job="run-1", machine="Old")])
    store.ingest([make_event(at=t + timedelta(seconds=30), job="run-1", machine="New")])

    def find(name, machine=None, accounts=ALL):
        return store.find_job(name=name, state_machine=machine, accounts=accounts)

    assert find("run-1").id == job_id("run-1", "New")
    assert find("run-1", accounts=frozenset({ACCOUNT_A})).state_machine == "New"
    assert find("run-1", "Old").id == job_id("run-1", "Old")
    assert find("missing") is None
    assert find("run-1", "Nope") is None
    assert store.get_job(job_id("run-1", "Old"), accounts=ALL).name == "run-1"
    assert store.get_job(job_id("nope"), accounts=ALL) is None


def test_it_selects_a_window_by_time_and_state_machine(store):
    t = now_second() - timedelta(hours=2)
    for minutes, machine in [(0, "A"), (30, "B"), (70, "A"), (130, "A")]:
        store.ingest(
            [make_event(at=t + timedelta(minutes=minutes), job=f"j{minutes}", machine=machine)]
        )  # noqa: E501

    window = Window(since=t + timedelta(minutes=1), until=t + timedelta(minutes=130))
    found = store.events_window(window, accounts=ALL)
    only_a = store.events_window(Window(state_machine="A"), accounts=ALL)
    capped = store.events_window(Window(limit=2), accounts=ALL)

    assert [e.job for e in found] == [job_id("j30", "B"), job_id("j70", "A")]
    assert [e.job for e in only_a] == [job_id(f"j{m}", "A") for m in (0, 70, 130)]
    assert [e.job for e in capped] == [job_id("j0", "A"), job_id("j30", "B")]


def test_it_counts_the_retention_from_arrival_not_from_event_time(store):
    """What arrived 48 h ago is gone; an archive replay of 10-day-old events that arrives now
    is kept and shown, on every store alike (DESIGN section 4)."""
    recent, old, ancient = now_second(), now_second() - timedelta(hours=48), now_second()
    ancient -= timedelta(days=10)
    long_ago = datetime.now(UTC) - timedelta(hours=48)
    store.ingest([make_event(at=old, job="stale", received_at=long_ago)])
    store.ingest([make_event(at=old, job="mixed", received_at=long_ago)])
    store.ingest(
        [make_event(at=recent, job="mixed"), make_event(at=old, job=None, received_at=long_ago)]
    )
    replayed = [make_event(at=ancient + timedelta(seconds=i), job="replayed") for i in range(3)]
    store.ingest(replayed)
    if isinstance(store, OrmStore):  # the ORM purges; DynamoDB filters expired items on read
        store.purge(before=datetime.now(UTC) - timedelta(hours=24))

    assert store.get_job(job_id("stale"), accounts=ALL) is None
    assert all_job_events(store, job_id("stale"), limit=10) == []
    assert [j.id for j in all_jobs(store, limit=10)] == [job_id("mixed"), job_id("replayed")]
    assert [e.time for e in all_job_events(store, job_id("mixed"), limit=10)] == [recent]
    kept = all_job_events(store, job_id("replayed"), limit=10)
    assert [e.id for e in kept] == [e.id for e in replayed]
    assert store.get_job(job_id("replayed"), accounts=ALL).event_count == 3
    window = store.events_window(Window(since=ancient - timedelta(hours=1)), accounts=ALL)
    assert [e.time for e in window] == [e.time for e in replayed] + [recent]
    newest = store.events_window(Window(newest_first=True, limit=2), accounts=ALL)
    assert [e.time for e in newest] == [recent, replayed[-1].time]


def test_it_purges_old_events_in_batches_and_drops_empty_jobs(store):
    recent, old = now_second(), now_second() - timedelta(hours=30)
    arrived = datetime.now(UTC) - timedelta(hours=30)
    store.ingest(
        [
            make_event(at=old + timedelta(seconds=i), job="stale", received_at=arrived)
            for i in range(5)
        ]
    )
    store.ingest([make_event(at=old, job="mixed", received_at=arrived)])
    store.ingest([make_event(at=recent, job="mixed")])
    store.ingest([make_event(at=old, job=None, received_at=arrived)])
    store.ingest([make_event(at=old, job="replayed")])  # old time, arrived now: kept

    deleted = store.purge(before=datetime.now(UTC) - timedelta(hours=24), batch_size=2)

    assert deleted == 7
    assert store.get_job(job_id("stale"), accounts=ALL) is None
    assert [j.id for j in all_jobs(store, limit=10)] == [job_id("mixed"), job_id("replayed")]
    assert len(all_job_events(store, job_id("mixed"), limit=10)) == 1
    assert store.purge(before=datetime.now(UTC) - timedelta(hours=24)) == 0


# ---- backend specifics ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_purges_through_the_command(settings):
    settings.EDOBS_STORE, settings.EDOBS_RETENTION_HOURS = "orm", 24
    reset_stores()
    store = OrmStore()
    old = now_second() - timedelta(hours=30)
    arrived = datetime.now(UTC) - timedelta(hours=30)
    store.ingest(
        [
            make_event(at=old + timedelta(seconds=i), job="stale", received_at=arrived)
            for i in range(3)
        ]
    )
    store.ingest([make_event(at=now_second(), job="fresh")])

    call_command("purge_events")

    assert Event.objects.count() == 1
    assert list(Job.objects.values_list("id", flat=True)) == [job_id("fresh")]


def test_it_runs_the_postgres_backend_on_postgresql(pg_alias, django_db_blocker):
    with django_db_blocker.unblock():
        assert connections[pg_alias].vendor == "postgresql"
        assert connections[pg_alias].cursor().connection.info.server_version >= 120000


def test_it_makes_the_table_idempotently(request):
    dynamo_store(request)  # creates it once
    client = boto3.client("dynamodb", region_name="us-east-1")

    assert ensure_table(client, TABLE) == []
    table = client.describe_table(TableName=TABLE)["Table"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"gsi1", "gsi2", "gsi3"}
    ttl = client.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl")
    assert table_spec("x")["KeySchema"][0] == {"AttributeName": "pk", "KeyType": "HASH"}


def test_it_spreads_jobs_over_shards_and_flags_cut_items(request):
    store = dynamo_store(request)
    t = now_second()
    store.ingest([make_event(at=t, job=f"job-{n}") for n in range(20)])
    store.ingest([make_event(at=t, job="big", detail={"blob": "y" * 450_000})])

    items = store.client.scan(TableName=TABLE)["Items"]
    shards = {i["gsi1pk"]["S"] for i in items if "gsi1pk" in i}
    big = [i for i in items if i.get("job", {}).get("S") == job_id("big") and "raw" in i]
    assert len(shards) > 1
    assert big[0]["truncated"] == {"BOOL": True}
    assert len(big[0]["raw"]["S"]) < 400 * 1024


def test_it_reports_an_unreachable_table_as_unavailable(request, unused_tcp_port):
    client = boto3.client(
        "dynamodb", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{unused_tcp_port}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )  # fmt: skip
    store = DynamoStore(client=client, table_name=TABLE)

    with pytest.raises(StoreUnavailable):
        store.ingest([make_event(at=now_second())])
    with pytest.raises(StoreUnavailable):
        store.latest_jobs(accounts=ALL, limit=10, cursor=None, filters=NO_FILTER)


@pytest.mark.django_db
def test_it_serves_dynamodb_jobs_through_the_api(request, settings, client, django_user_model):
    dynamo_store(request)  # the moto table for the store get_store() makes
    settings.EDOBS_STORE, settings.EDOBS_TABLE_NAME = "dynamodb", TABLE
    reset_stores()
    request.addfinalizer(reset_stores)
    bodies = [envelope(at=now_second(), job="api-job"), envelope(at=now_second(), job=None)]

    report = event_ingest(messages=[InboundMessage(body=json.dumps(b)) for b in bodies])
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    response = client.get("/api/jobs")

    assert report.outcomes == ["stored", "stored"]
    assert response.status_code == 200
    assert [job["id"] for job in response.json()["results"]] == [job_id("api-job")]
    events = client.get(f"/api/jobs/{job_id('api-job')}/events").json()
    assert [e["id"] for e in events["results"]] == [bodies[0]["id"]]
    assert not Event.objects.exists()


def test_it_retries_a_summary_that_another_writer_moved(request):
    """Another worker updates the job between this one's read and write: nothing is lost."""
    other = dynamo_store(request)
    t = now_second()
    failed = make_event(at=t + timedelta(seconds=5), status="FAILED")

    class Raced(DynamoStore):
        raced = False

        def _read_summaries(self, job_ids):
            found = super()._read_summaries(job_ids)
            if not self.raced:
                self.raced = True
                other.ingest([failed])
            return found

    store = Raced(client=other.client, table_name=TABLE, retention_hours=24)
    running = make_event(at=t, status="RUNNING")

    assert store.ingest([running]) == ["stored"]

    job = store.get_job(job_id(), accounts=ALL)
    assert (job.status, job.event_count, job.latest.id) == ("FAILED", 2, failed.id)
    assert [e.id for e in all_job_events(store, job_id(), limit=10)] == [running.id, failed.id]


def test_two_writers_on_postgresql_lose_no_summary_update(request):
    """Two workers ingest into one job at once: each reads the summary with its row locked,
    so every event is counted (without the lock, one overwrites the other's count)."""
    import threading

    store = postgres_store(request)
    t = now_second()
    per_writer = 40
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            barrier.wait()
            for n in range(per_writer):
                store.ingest([make_event(at=t + timedelta(milliseconds=2 * n + offset))])
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connections[store.using].close()

    writers = [threading.Thread(target=write, args=(offset,)) for offset in (0, 1)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)

    assert errors == []
    job = store.get_job(job_id(), accounts=ALL)
    assert job.event_count == 2 * per_writer


def test_it_keeps_two_accounts_running_the_same_execution_name_apart(store):
    """Dev and prod both run `orders` / `run-42`, and one reuses the other's envelope id:
    two jobs that share nothing, each whole for its own team."""
    t = now_second()
    a_run = make_event(at=t, job="run-42", machine="orders", account=ACCOUNT_A, status="RUNNING")
    b_run = make_event(at=t, job="run-42", machine="orders", account=ACCOUNT_B, status="RUNNING")
    a_end = make_event(
        at=t + timedelta(seconds=5), job="run-42", machine="orders", account=ACCOUNT_A,
        status="SUCCEEDED",
    )  # fmt: skip
    b_fail = make_event(
        at=t + timedelta(seconds=9), job="run-42", machine="orders", account=ACCOUNT_B,
        status="FAILED", event_id=a_end.id,
    )  # fmt: skip

    assert store.ingest([a_run, b_run]) == ["stored", "stored"]
    assert store.ingest([a_end, b_fail, a_end]) == ["stored", "stored", "duplicate"]

    team_a, team_b = frozenset({ACCOUNT_A}), frozenset({ACCOUNT_B})
    a_job = store.get_job(job_id("run-42", "orders", ACCOUNT_A), accounts=team_a)
    b_job = store.get_job(job_id("run-42", "orders", ACCOUNT_B), accounts=team_b)
    assert (a_job.status, a_job.event_count, a_job.latest.id) == ("SUCCEEDED", 2, a_end.id)
    assert (b_job.status, b_job.event_count, b_job.latest.id) == ("FAILED", 2, b_fail.id)
    assert a_job.latest.time < b_job.latest.time
    assert store.get_job(b_job.id, accounts=team_a) is None
    for team, mine in ((team_a, a_job), (team_b, b_job)):
        found = store.find_job(name="run-42", state_machine="orders", accounts=team)
        assert found.id == mine.id
        assert [j.id for j in all_jobs(store, limit=10, accounts=team)] == [mine.id]
        events = all_job_events(store, mine.id, limit=10, accounts=team)
        assert {e.account for e in events} == {mine.account} and len(events) == 2
    newest = store.find_job(name="run-42", state_machine="orders", accounts=ALL)
    assert newest.id == b_job.id  # its latest event is the newer one


def test_it_keeps_each_events_best_clock_and_orders_a_job_by_it(store):
    t = now_second()
    t_ms = int(t.timestamp() * 1000)

    def clocked(name: str, emitted: int | None = None, delivered: int | None = None):
        detail = {"meta": {"emittedAt": emitted}} if emitted is not None else {}
        body = envelope(at=t, event_id=name, detail_type=name, detail=detail)
        return parse_envelope(body, default_account=ACCOUNT_A, delivered_at=delivered)

    events = [
        clocked("late", emitted=t_ms + 870),
        clocked("early", emitted=t_ms + 35),
        clocked("delivered", delivered=t_ms + 412),
        clocked("second"),  # the envelope's whole second only
        clocked("hostile", emitted=True, delivered=t_ms + 413),
    ]
    store.ingest(events[:2])
    store.ingest(events[2:])

    found = all_job_events(store, job_id(), limit=2)
    assert [(e.id, e.at_source, e.at - t) for e in found] == [
        ("second", "envelope", timedelta(0)),
        ("early", "producer", timedelta(milliseconds=35)),
        ("delivered", "delivery", timedelta(milliseconds=412)),
        ("hostile", "delivery", timedelta(milliseconds=413)),
        ("late", "producer", timedelta(milliseconds=870)),
    ]
    assert all(e.time == t for e in found)
    job = store.get_job(job_id(), accounts=ALL)
    assert (job.first_event_at, job.last_event_at) == (t, t + timedelta(milliseconds=870))
    assert job.latest.id == "late"


# ---- fleet reads (DESIGN section 9): statuses, durations, a state machine's jobs, search --------


def finished_job(store, name: str, *, start, seconds: float, status="SUCCEEDED", **kwargs):
    """A job that ran `seconds` from `start` and ended with `status` (RUNNING: still runs)."""
    events = [make_event(at=start, job=name, status="RUNNING", **kwargs)]
    if status != "RUNNING":
        end = start + timedelta(seconds=seconds)
        events.append(make_event(at=end, job=name, status=status, **kwargs))
    store.ingest(events)


def test_it_filters_latest_jobs_by_several_statuses(store):
    t = now_second()
    for n, status in enumerate(["FAILED", "TIMED_OUT", "SUCCEEDED", "RUNNING", "ABORTED"]):
        finished_job(store, f"job-{n}", start=t + timedelta(seconds=n), seconds=1, status=status)
    store.ingest([make_event(at=t, job="no-status")])

    failed = all_jobs(store, limit=1, filters=JobFilter(statuses=("FAILED", "TIMED_OUT")))
    unfinished = all_jobs(store, limit=10, filters=JobFilter(statuses=("UNKNOWN", "running")))
    both = all_jobs(store, limit=10, filters=JobFilter(status="ABORTED", statuses=("FAILED",)))

    assert [job.id for job in failed] == [job_id("job-1"), job_id("job-0")]
    assert [job.id for job in unfinished] == [job_id("job-3"), job_id("no-status")]
    assert [job.id for job in both] == [job_id("job-4"), job_id("job-0")]


def test_it_filters_latest_jobs_by_duration_and_pages_them(store):
    t = now_second()  # an hour ago: a job still running since then has run about 3,600 s
    finished_job(store, "ten", start=t, seconds=10)
    finished_job(store, "hundred", start=t + timedelta(seconds=1), seconds=100, status="FAILED")
    finished_job(store, "running", start=t + timedelta(seconds=2), seconds=0, status="RUNNING")
    finished_job(store, "quick", start=t + timedelta(seconds=3), seconds=0.25)
    store.ingest([make_event(at=t + timedelta(seconds=4), job="no-status")])

    def ids(**bounds):
        return [
            job.id.split(":")[-1] for job in all_jobs(store, limit=1, filters=JobFilter(**bounds))
        ]

    assert ids(min_duration_ms=50_000) == ["hundred", "running"]
    assert ids(max_duration_ms=50_000) == ["ten", "quick"]
    assert ids(min_duration_ms=10_000, max_duration_ms=10_000) == ["ten"]
    assert ids(min_duration_ms=10_001, max_duration_ms=99_999) == []
    assert ids(max_duration_ms=250) == ["quick"]
    assert ids(max_duration_ms=249) == []
    assert ids(min_duration_ms=3_000_000, max_duration_ms=5_000_000) == ["running"]
    running = JobFilter(statuses=("RUNNING",), min_duration_ms=0)
    assert [j.name for j in all_jobs(store, limit=5, filters=running)] == ["running"]


def test_it_lists_a_state_machines_jobs_in_a_window(store):
    t = now_second()
    for n in range(4):
        start = t + timedelta(minutes=10 * n)
        finished_job(
            store, f"a-{n}", start=start, seconds=60, status=["SUCCEEDED", "FAILED"][n % 2]
        )
    finished_job(store, "b-0", start=t, seconds=60, machine="B")
    finished_job(
        store, "other-account", start=t - timedelta(minutes=1), seconds=9, account=ACCOUNT_B
    )

    def names(**kwargs):
        kwargs.setdefault("accounts", ALL)
        return [job.name for job in store.state_machine_jobs("Machine", **kwargs)]

    assert names(since=t - timedelta(hours=1)) == ["a-3", "a-2", "a-1", "a-0", "other-account"]
    # Activity touching [since, until): a-1 ran from t+10 min to t+11 min.
    window = {"since": t + timedelta(minutes=10, seconds=30), "until": t + timedelta(minutes=21)}
    assert names(**window) == ["a-2", "a-1"]
    assert names(since=t - timedelta(hours=1), statuses=("FAILED",)) == ["a-3", "a-1"]
    assert names(since=t - timedelta(hours=1), accounts=frozenset({ACCOUNT_B})) == ["other-account"]
    assert names(since=t - timedelta(hours=1), accounts=frozenset()) == []
    assert names(since=t - timedelta(hours=1), limit=2) == ["a-3", "a-2"]
    job = store.state_machine_jobs("B", accounts=ALL, since=t - timedelta(hours=1))[0]
    assert (job.status, job.stopped_at - job.started_at) == ("SUCCEEDED", timedelta(seconds=60))


def all_found(store, window=None, *, limit: int, keep=None, scan=20_000, accounts=ALL) -> list:
    """Every page of an event search, failing if one repeats."""
    found, cursor = [], None
    for _ in range(100):
        page = store.events_page(
            window or Window(), accounts=accounts, limit=limit, cursor=cursor, keep=keep, scan=scan
        )
        found += [event.id for event in page.items]
        cursor = page.next_cursor
        if cursor is None:
            assert len(found) == len(set(found)), found
            return found
    raise AssertionError("paging did not end")


def test_it_pages_an_event_search_newest_first_without_gaps_or_repeats(store):
    t = now_second()
    seconds = [0, 3, 3, 1, 5, 3, 2, 4]
    events = [
        make_event(
            at=t + timedelta(seconds=s), event_id=f"e{n}", detail={"n": n},
            job=f"j{n % 3}" if n < 4 else None,
        )
        for n, s in enumerate(seconds)
    ]  # fmt: skip
    store.ingest(events[:4])
    store.ingest(events[4:])
    newest = ["e4", "e7", "e5", "e2", "e1", "e6", "e3", "e0"]  # same second: last arrival first

    odd = lambda event: event.detail["n"] % 2 == 1  # noqa: E731
    assert all_found(store, limit=500) == newest
    for limit, scan in [(1, 20_000), (2, 20_000), (3, 2), (1, 1), (500, 3)]:
        assert all_found(store, limit=limit, scan=scan) == newest
        assert all_found(store, limit=limit, scan=scan, keep=odd) == [
            e for e in newest if int(e[1]) % 2 == 1
        ]
    window = Window(
        since=t + timedelta(seconds=1), until=t + timedelta(seconds=4), job=job_id("j1")
    )
    assert all_found(store, window, limit=1) == ["e1"]
    assert all_found(store, Window(source="nope"), limit=5) == []
    assert all_found(store, limit=5, accounts=frozenset({ACCOUNT_B})) == []


def test_it_refuses_another_listings_cursor_for_a_search(store):
    store.ingest(
        [make_event(at=now_second() + timedelta(seconds=i), job=f"j{i}") for i in range(3)]
    )
    jobs_cursor = store.latest_jobs(accounts=ALL, limit=1, cursor=None, filters=NO_FILTER)

    assert jobs_cursor.next_cursor
    with pytest.raises(BadCursor):
        store.events_page(Window(), accounts=ALL, limit=1, cursor=jobs_cursor.next_cursor)
    with pytest.raises(BadCursor):
        store.events_page(Window(), accounts=ALL, limit=1, cursor=encode_cursor("search", 1, 2))


def test_it_searches_events_by_function_and_detail_fields(store):
    from events.domain.search import Where, where_matches

    t = now_second()
    details = [
        {"meta": {"fn": "charge"}, "order": {"id": 1234}},
        {"meta": {"fn": "charge"}, "order": {"id": "1234"}},
        {"meta": {"fn": "ship"}, "order": {"id": 1234.0}},
        {"meta": {"fn": "charge"}, "order": {"id": [1234]}},
        {"meta": {"fn": "charge"}, "order": {"id": True}},
    ]
    store.ingest([make_event(at=t + timedelta(seconds=n), event_id=f"d{n}", detail=detail)
                  for n, detail in enumerate(details)])  # fmt: skip
    number = (Where(("order", "id"), 1234),)

    def exact(event):
        return all(where_matches(event.detail, where) for where in number)

    assert all_found(store, Window(where=number), limit=1, keep=exact) == ["d2", "d0"]
    assert all_found(store, Window(where=number, fn="charge"), limit=5, keep=exact) == ["d0"]
    assert all_found(store, Window(fn="ship"), limit=5) == ["d2"]


def test_it_narrows_a_search_by_detail_fields_in_postgresql(request):
    """PostgreSQL pushes `where` down as JSON containment: no `keep` given, yet only the match
    comes back (containment is a superset of equality in general: the caller checks)."""
    from events.domain.search import Where

    store = postgres_store(request)
    t = now_second()
    store.ingest([
        make_event(at=t, event_id="zoe", detail={"customer": {"name": "Zoë"}}),
        make_event(at=t, event_id="bob", detail={"customer": {"name": "Bob"}}),
        make_event(at=t, event_id="many", detail={"customer": {"name": ["Zoë", "Al"]}}),
    ])  # fmt: skip

    found = all_found(store, Window(where=(Where(("customer", "name"), "Zoë"),)), limit=5)

    assert found == ["zoe"]


def test_it_finds_an_event_by_account_and_id(store):
    """GET /api/events/<id>: by key, in the accounts named, with or without a job."""
    t = now_second()
    mine = make_event(at=t, event_id="shared-id", account=ACCOUNT_A, detail={"n": 1})
    theirs = make_event(at=t, event_id="shared-id", account=ACCOUNT_B, job=None, detail={"n": 2})
    store.ingest([mine, theirs])
    both = frozenset({ACCOUNT_A, ACCOUNT_B})

    found = store.get_events("shared-id", accounts=both)
    assert [(e.account, e.detail["n"], e.job) for e in found] == [
        (ACCOUNT_A, 1, job_id()), (ACCOUNT_B, 2, None),
    ]  # fmt: skip
    assert found[0].raw == mine.raw
    assert [e.account for e in store.get_events("shared-id", accounts=frozenset({ACCOUNT_B}))] == [
        ACCOUNT_B
    ]
    assert store.get_events("no-such-id", accounts=both) == []
    assert store.get_events("shared-id", accounts=frozenset({"999999999999"})) == []


def test_it_finds_an_event_whose_dynamodb_marker_predates_naming_its_item(request):
    dynamo = dynamo_store(request)
    event = make_event(at=now_second(), event_id="old-marker")
    dynamo.ingest([event])
    marker = {"pk": {"S": f"ID#{ACCOUNT_A}#old-marker"}, "sk": {"S": "ID"}}
    dynamo.client.update_item(
        TableName=dynamo.table, Key=marker, UpdateExpression="REMOVE #item",
        ExpressionAttributeNames={"#item": "item"},
    )  # fmt: skip
    [found] = dynamo.get_events("old-marker", accounts=frozenset({ACCOUNT_A}))
    assert found.raw == event.raw


def test_it_orders_answers_after_their_triggers_and_counts_no_skewed_latency(store):
    """Issue 25 "Time": answers stamped by their Lambda 2 ms into the second whose trigger SQS
    got 300 ms into it (tests/events/skew_traffic.py), the answers stored first, as SQS may
    deliver them."""
    from events.domain.timeline import in_order, job_timeline
    from tests.events import skew_traffic as traffic

    second = int(now_second().timestamp()) - 60
    sent = traffic.triggers("skew-store", second)
    replies = traffic.answers("skew-store", sent, second)

    def parsed(envelope_: dict, delivered: int | None = None):
        return parse_envelope(envelope_, default_account=ACCOUNT_A, delivered_at=delivered)

    assert store.ingest([parsed(e) for e in replies[:3]]) == ["stored"] * 3
    store.ingest([parsed(e, second * 1000 + 300) for e in sent] + [parsed(replies[3])])

    events = in_order(all_job_events(store, traffic.job_id("skew-store"), limit=3))
    ids = [event.id for event in events]
    for answer in replies[:3]:
        assert ids.index(traffic.trigger_of(answer, sent)["id"]) < ids.index(answer["id"])
    spans = job_timeline(events)["spans"]
    assert sorted(span["skew_ms"] for span in spans) == [296, 297, 298]
    assert all(span["duration_ms"] is None for span in spans)
    window = Window(since=datetime.fromtimestamp(second - 60, UTC))
    graph = store.architecture(window, accounts=ALL)
    consumed = [edge for edge in graph["edges"] if edge["target"].startswith("fn:")]
    assert len(consumed) == 3
    assert all((edge["count"], edge["p50_ms"]) == (1, None) for edge in consumed), consumed


# ---- execution shapes (DESIGN section 10): parent, attempts, Map Runs ------------------------


def _shaped(envelopes: list[dict]) -> list:
    return [parse_envelope(e, default_account=ACCOUNT_A) for e in envelopes]


def test_it_keeps_a_redriven_execution_as_one_job_with_its_attempts(store):
    start = now_second() - timedelta(minutes=10)
    arn = shapes.execution_arn("Nightly", "run-1")
    redriven = start + timedelta(minutes=5)
    first = shapes.run(arn, start=start, seconds=30, status="FAILED")
    second = shapes.run(
        arn, start=start, seconds=400, redrive_count=1, redrive_date=redriven
    )  # the stop of the second attempt is 400 s after the first start
    # Out of order, as SQS delivers: the first attempt's failure arrives last.
    store.ingest(_shaped([second[0], first[0], second[1]]))
    store.ingest(_shaped([first[1]]))

    job = store.get_job(shapes.job_id("Nightly", "run-1"), accounts=ALL)
    assert job.status == "SUCCEEDED"
    assert job.stopped_at == start + timedelta(seconds=400)
    assert [(a["attempt"], a["status"], a["error"]) for a in job.attempts] == [
        (0, "FAILED", "States.TaskFailed"), (1, "SUCCEEDED", None),
    ]  # fmt: skip
    assert job.attempts[1]["start"] == redriven.isoformat().replace("+00:00", "Z")
    assert job.attempts[0]["stop"] == (start + timedelta(seconds=30)).isoformat().replace(
        "+00:00", "Z"
    )
    assert [j.id for j in all_jobs(store, limit=10)] == [job.id]


def test_it_shows_a_redriven_execution_running_again(store):
    start = now_second() - timedelta(minutes=10)
    arn = shapes.execution_arn("Nightly", "run-2")
    store.ingest(_shaped(shapes.run(arn, start=start, seconds=30, status="FAILED")))
    again = shapes.status_event(
        arn, "RUNNING", start=start, redrive_count=1, redrive_date=start + timedelta(minutes=1)
    )
    store.ingest(_shaped([again]))
    job = store.get_job(shapes.job_id("Nightly", "run-2"), accounts=ALL)
    assert (job.status, job.stopped_at, job.error) == ("RUNNING", None, None)
    assert [a["status"] for a in job.attempts] == ["FAILED", "RUNNING"]


def test_it_finds_a_jobs_children_by_their_parent(store):
    start = now_second() - timedelta(minutes=10)
    parent_arn = shapes.execution_arn("Orders", "order-7")
    child_arn = shapes.execution_arn("Payments", "pay-7")
    started_by = {shapes.STARTED_BY: parent_arn, "order": 7}
    store.ingest(_shaped(shapes.run(parent_arn, start=start, seconds=60)))
    store.ingest(_shaped(shapes.run(child_arn, start=start, seconds=20, input=started_by)))
    parent = shapes.job_id("Orders", "order-7")

    child = store.get_job(shapes.job_id("Payments", "pay-7"), accounts=ALL)
    assert child.parent == parent
    assert store.get_job(parent, accounts=ALL).parent is None
    assert [j.id for j in store.child_jobs(parent, accounts=ALL)] == [child.id]
    assert store.child_jobs(parent, accounts=frozenset({ACCOUNT_B})) == []
    assert store.child_jobs(child.id, accounts=ALL) == []


def test_it_groups_a_map_runs_children_into_one_row(store):
    start = now_second() - timedelta(minutes=10)
    parent_arn = shapes.execution_arn("MapFlow", "batch-1")
    store.ingest(_shaped(shapes.run(parent_arn, start=start, seconds=1)))
    children = shapes.map_run(
        "MapFlow", "run-label", 40, start=start + timedelta(seconds=2), failed=3, running=5,
        parent_arn=parent_arn,
    )  # fmt: skip
    for n in range(0, len(children), 25):
        store.ingest(_shaped(children[n : n + 25]))
    other = shapes.execution_arn("Other", "o-1")
    store.ingest(_shaped(shapes.run(other, start=start + timedelta(minutes=1), seconds=1)))

    rows = selectors.grouped_jobs(store=store, accounts=ALL, limit=2, cursor=None,
                                  filters=NO_FILTER)  # fmt: skip
    assert [r.state_machine for r in rows.items] == ["Other", "MapFlow/run-label"]
    run = rows.items[1]
    assert run.map_run == {"label": "run-label", "running": 5, "succeeded": 32, "failed": 3}
    assert run.parent == shapes.job_id("MapFlow", "batch-1")
    rest = selectors.grouped_jobs(store=store, accounts=ALL, limit=2, cursor=rows.next_cursor,
                                  filters=NO_FILTER)  # fmt: skip
    assert [r.id for r in rest.items] == [shapes.job_id("MapFlow", "batch-1")]
    assert rest.next_cursor is None
    failed = selectors.grouped_jobs(
        store=store, accounts=ALL, limit=10, cursor=None, filters=JobFilter(statuses=("FAILED",))
    )
    assert [r.map_run["failed"] for r in failed.items] == [3]
    assert len(store.child_jobs(shapes.job_id("MapFlow", "batch-1"), accounts=ALL)) == 40

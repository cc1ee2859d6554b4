"""Stores at scale: ingest against raw writes, and reads against index-only queries.

    .venv/bin/python bench/store.py [--events 100000 --jobs 5000 --sample 2000 --repeats 200
                                     --backends sqlite,postgres[,dynamodb] --json PATH]

For SQLite and PostgreSQL (started with tests/services.py's PostgresServer), in one run:
- load: the data set (--events in --jobs jobs, one job of 1,000 events spread through it) is
  written as fast as the database takes it (multi-row INSERTs of 2,000 rows, the job summaries
  in one UPDATE), then ANALYZE (PostgreSQL: VACUUM ANALYZE, so index-only scans are possible);
- ingest against raw, into those loaded tables: 2 x --sample fresh events of stored jobs, half
  through `store.ingest()` in batches of 10 (as the worker calls it), half bulk-inserted as bare
  rows in batches of 10, one transaction each (the ceiling).  The batches alternate between
  the two and which goes first flips every pair.  ingest / raw is what idempotency and job
  summaries cost (target >= 0.5);
- reads: `latest_jobs(limit=50)` (everything, and one team's account), and the 1,000-event job
  read in pages of 500 (as the API does), each alternated with an index-only query of the same
  rows (its plan is printed), --repeats times; p50 and p95 are exact nearest-rank.  Target:
  the store's query <= 3x the index-only one.
`--paired` makes every other event of a job a trigger (`getUserProfile`, a TaskToken) and the next
one its Lambda's answer carrying that token, as the samples' traffic does; by default every event
is an answer whose trigger type never reaches the store (so the rollups pair nothing).
`--backends dynamodb` adds moto's DynamoDB (in process, --dynamo-events events): ingest against
`batch_write_item` only, with no target: moto deep-copies the table on every TransactWriteItems,
so the figure describes moto, not DynamoDB.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import figure, limit, percentile  # noqa: E402

ACCOUNTS = ("111111111111", "222222222222")
BATCH = 10


# ---- set-up ----------------------------------------------------------------------------------


def setup_django() -> None:
    """Django with a scratch var dir, unless a previous bench of the same run set it up."""
    os.environ.setdefault("EDOBS_VAR_DIR", tempfile.mkdtemp(prefix="edobs-bench-store-"))
    os.environ.setdefault("EDOBS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edobs_site.settings")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def add_database(alias: str, url: str) -> str:
    """A database alias added at runtime (so the default database is never touched), migrated."""
    import dj_database_url
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    config = dj_database_url.parse(url, conn_max_age=0)
    if config["ENGINE"].endswith("sqlite3"):  # as settings.py configures SQLite
        config["OPTIONS"] = {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        }
    settings.DATABASES[alias] = config
    connections.settings[alias] = connections.configure_settings(
        {"default": connections.settings["default"], alias: config}
    )[alias]
    call_command("migrate", database=alias, verbosity=0)
    return alias


# ---- data --------------------------------------------------------------------------------------


def make_events(count: int, jobs: int, *, start: int = 0, big: int = 1000) -> list:
    """Events `start` to `start + count` of the data set (about 10 a second, in `jobs` jobs);
    job 0 gets `big` of the first events, spread through them (every count // big-th)."""
    from events.domain.envelope import parse_envelope

    every = max(1, TOTAL[0] // max(1, big))
    base = BASE[0]
    events = []
    for i in range(start, start + count):
        if i % every == 0 and i // every < big:
            job = 0
        else:
            job = 1 + (i * 7919) % max(1, jobs - 1)
        body = _envelope(job, base + timedelta(seconds=i // 10), i)
        events.append(parse_envelope(body, default_account=ACCOUNTS[0]))
    return events


TOTAL = [100_000]  # the data set's size: where job 0's events fall
PAIRED = [False]  # --paired
MADE: dict[int, int] = {}  # --paired: job -> how many of its events were made so far
BASE = [datetime.now(UTC).replace(microsecond=0) - timedelta(days=7)]


def _envelope(job: int, at: datetime, position: int) -> dict[str, Any]:
    body = _answer(job, at, position)
    if PAIRED[0]:  # trigger, answer, trigger, answer... in each job
        made = MADE[job] = MADE.get(job, -1) + 1
        body["detail"]["TaskToken"] = f"token-{job}-{made - made % 2}"
        if made % 2 == 0:
            body["detail-type"] = "getUserProfile"
            del body["detail"]["meta"]
    return body


def _answer(job: int, at: datetime, position: int) -> dict[str, Any]:
    account = ACCOUNTS[job % 2]
    execution = f"arn:aws:states:us-east-1:{account}:execution:EventDrivenMachine:job-{job:06d}"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "getUserCookies",
        "source": "project",
        "account": account,
        "time": at.isoformat().replace("+00:00", "Z"),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "execution": execution,
            "name": f"user-{position}",
            "cookies": ["a" * 16, "b" * 16],
            "meta": {
                "fn": "processSingleFn",
                "incoming": {"source": "project", "detailType": "getUserProfile"},
                "outgoing": {"source": "project", "detailType": "getUserCookies"},
                "stateMachine": "EventDrivenMachine",
            },
        },
    }


def batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---- measuring -------------------------------------------------------------------------------


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def paired_ms(call: Callable[[], Any], floor: Callable[[], Any], repeats: int) -> dict:
    """`call` and its index-only `floor`, alternately (which goes first alternates too), after
    one warm-up each: {"p50", "p95"} of both in ms, exact nearest rank."""
    call(), floor()
    mine, theirs = [], []
    for n in range(repeats):
        pair = ((call, mine), (floor, theirs))
        for action, samples in pair if n % 2 == 0 else pair[::-1]:
            samples.append(timed(action) * 1000)
    return {"p50": percentile(mine, 50), "p95": percentile(mine, 95),
            "floor_p50": percentile(theirs, 50), "floor_p95": percentile(theirs, 95)}  # fmt: skip


def read_job(store, job_id: str) -> int:
    """All of a job's events, pages of 500 (as events.read.selectors.job_event_list does)."""
    count, cursor = 0, None
    while True:
        page = store.job_events(job_id, accounts=None, limit=500, cursor=cursor)
        count += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return count


def index_only(alias: str, sql: str, params: list) -> Callable[[], int]:
    """A query answered from one index alone (EXPLAIN shows it: printed once per backend)."""
    from django.db import connections

    def query() -> int:
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            return len(cursor.fetchall())

    return query


FLOORS = {
    # (SQL, what it reads): each covered by the index the store's query walks.
    "latest_jobs": ("SELECT last_event_at, id FROM events_job "
                    "ORDER BY last_event_at DESC, id DESC LIMIT 50", "job_latest"),
    "latest_jobs_team": ("SELECT last_event_at FROM events_job WHERE account = %s "
                         "ORDER BY last_event_at DESC LIMIT 50", "job_account_latest"),
    "job": ("SELECT at, seq FROM events_event WHERE job_id = %s ORDER BY at, seq",
            "event_job_order"),
}  # fmt: skip


# The same rows with every column the store's answer is made of, and the stored JSON decoded:
# what any reader must do before it makes an object. Store / this is what edobs adds.
EVENT_READ = "raw, event_id, source, detail_type, account, region, time, received_at, at, at_source"
JOB_READ = (
    "SELECT j.*, e.raw, e.event_id, e.source, e.detail_type, e.account, e.time "
    "FROM events_job j LEFT JOIN events_event e ON e.seq = j.latest_event_id "
)
DECODED = {
    "latest_jobs": JOB_READ + "ORDER BY j.last_event_at DESC, j.id DESC LIMIT 50",
    "latest_jobs_team": JOB_READ + "WHERE j.account = %s "
                                   "ORDER BY j.last_event_at DESC, j.id DESC LIMIT 50",
    "job": f"SELECT {EVENT_READ}, seq FROM events_event WHERE job_id = %s ORDER BY at, seq",
}  # fmt: skip


def decoded(alias: str, sql: str, params: list) -> Callable[[], int]:
    """Every row `sql` finds, fetched through Django's connection, its stored JSON decoded."""
    from django.db import connections

    def query() -> int:
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            where = [column[0] for column in cursor.description].index("raw")
        return len([json.loads(row[where]) if row[where] else None for row in rows])

    return query


def read_figures(alias: str, store, big_job: str, repeats: int) -> dict[str, dict]:
    from django.db import connections

    from events.stores.base import JobFilter

    def latest(accounts):
        return lambda: store.latest_jobs(
            accounts=accounts, limit=50, cursor=None, filters=JobFilter()
        )

    job_size = read_job(store, big_job)
    index_count = index_only(alias, FLOORS["job"][0], [big_job])()
    assert job_size == index_count, (job_size, index_count)
    cases = {
        "latest_jobs": (latest(None), []),
        "latest_jobs_team": (latest(frozenset({ACCOUNTS[0]})), [ACCOUNTS[0]]),
        f"job_{job_size}_events": (lambda: read_job(store, big_job), [big_job]),
    }
    found = {}
    vendor = connections[alias].vendor
    for (name, (call, params)), (kind, (sql, _)) in zip(cases.items(), FLOORS.items(), strict=True):
        with connections[alias].cursor() as cursor:
            cursor.execute(("EXPLAIN QUERY PLAN " if vendor == "sqlite" else "EXPLAIN ") + sql,
                           params)  # fmt: skip
            plan = " / ".join(str(row[-1]) for row in cursor.fetchall())
        print(f"  {name} index-only plan: {plan}", flush=True)
        found[name] = paired_ms(call, index_only(alias, sql, params), repeats) | {"plan": plan}
        found[name]["decoded"] = paired_ms(
            call, decoded(alias, DECODED[kind], params), max(20, repeats // 4)
        )
    return found


# ---- backends ----------------------------------------------------------------------------------


def bulk_load(alias: str, total: int, jobs: int, chunk: int = 20_000) -> float:
    """The data set, written as fast as the database takes it: the jobs, then the events in
    multi-row INSERTs of `chunk` (bulk_create), then every job's summary in one UPDATE."""
    from django.db import connections, transaction

    from events.models import Event, Job
    from events.stores.orm.store import _event_row

    started = time.perf_counter()
    seen: dict[str, Any] = {}
    for start in range(0, total, chunk):
        events = make_events(min(chunk, total - start), jobs, start=start)
        new = [e for e in events if e.job not in seen]
        seen |= {e.job: True for e in new}
        batch = uuid.uuid4()
        with transaction.atomic(using=alias):
            Job.objects.using(alias).bulk_create(
                list({e.job: job_row(Job, e) for e in new}.values()), ignore_conflicts=True
            )
            Event.objects.using(alias).bulk_create(
                [_event_row(e, batch) for e in events], batch_size=2000
            )
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute(SUMMARY_UPDATE)
    with connections[alias].cursor() as cursor:
        cursor.execute("ANALYZE" if connections[alias].vendor == "sqlite" else "VACUUM ANALYZE")
    return time.perf_counter() - started


def job_row(model, event) -> Any:
    """A bare Job row for an event's job; SUMMARY_UPDATE fills in the rest once all are loaded."""
    execution = event.correlation.execution
    return model(id=event.job, state_machine=execution.state_machine, name=execution.name,
                 account=event.account, region=event.region)  # fmt: skip


# Each job's count, first and last time and latest event, as the store keeps them.
SUMMARY_UPDATE = """
UPDATE events_job SET
  event_count = (SELECT COUNT(*) FROM events_event e WHERE e.job_id = events_job.id),
  first_event_at = (SELECT MIN(e.at) FROM events_event e WHERE e.job_id = events_job.id),
  last_event_at = (SELECT MAX(e.at) FROM events_event e WHERE e.job_id = events_job.id),
  latest_event_id = (SELECT e.seq FROM events_event e WHERE e.job_id = events_job.id
                     ORDER BY e.at DESC, e.seq DESC LIMIT 1)
"""


def orm_backend(alias: str, events: int, jobs: int, sample: int, repeats: int) -> dict:
    """Load `events`, then time ingest against raw writes into the loaded tables, then reads."""
    import uuid as uuidlib

    from django.db import connections, transaction

    from edobs_site.startup import freeze_startup_objects
    from events.models import Event
    from events.stores.orm.store import OrmStore, _event_row

    if connections[alias].vendor == "sqlite":
        with connections[alias].cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=OFF")  # the load only; WAL again after it
    load_seconds = bulk_load(alias, events, jobs)
    if connections[alias].vendor == "sqlite":
        with connections[alias].cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")
    print(f"  loaded {events} events in {load_seconds:.1f} s "
          f"({events / load_seconds:.0f}/s)", flush=True)  # fmt: skip
    store = OrmStore(using=alias)
    # Fresh events of jobs already stored, half to each side; batches of 10 alternate between
    # raw and ingest, and which of the two goes first flips every pair.
    fresh = make_events(2 * sample, jobs, start=events)
    raw_events, ingest_events = fresh[0::2], fresh[1::2]

    def raw(batch: list) -> None:
        with transaction.atomic(using=alias):
            rows = [_event_row(e, uuidlib.uuid4()) for e in batch]
            Event.objects.using(alias).bulk_create(rows)

    spent = {"raw": 0.0, "ingest": 0.0}
    pairs = list(zip(batches(raw_events, BATCH), batches(ingest_events, BATCH), strict=True))
    for n, (raw_batch, ingest_batch) in enumerate(pairs):
        sides = [("raw", lambda b=raw_batch: raw(b)),
                 ("ingest", lambda b=ingest_batch: store.ingest(b))]  # fmt: skip
        for name, action in sides if n % 2 == 0 else sides[::-1]:
            spent[name] += timed(action)
    assert Event.objects.using(alias).count() == events + 2 * sample
    big_job = make_events(1, jobs, start=0)[0].job  # job 0 owns the first event
    # As the server and the worker do once started (edobs_site/startup.py): the bench's own
    # objects, like a server's startup ones, are long-lived and not what a read makes.
    freeze_startup_objects()
    return {
        "load": events / load_seconds,
        "ingest": sample / spent["ingest"], "raw": sample / spent["raw"],
        "reads": read_figures(alias, store, big_job, repeats),
    }  # fmt: skip


def dynamo_backend(events: list, sample: int) -> dict[str, float]:
    """Ingest against raw batch writes on moto's DynamoDB (in process): no reads, no target."""
    import boto3
    from moto import mock_aws

    from events.stores.dynamodb.codec import dump
    from events.stores.dynamodb.store import DynamoStore
    from infra.table import ensure_table

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        ensure_table(client, "bench-raw")
        store = DynamoStore(client=client, table_name="bench-raw")
        head = events[:sample]
        items = [dump(store._item(e, n)) for n, e in enumerate(head)]

        def raw(batch: list) -> None:
            store._batch_write([{"PutRequest": {"Item": item}} for item in batch])

        raw_seconds = sum(timed(lambda b=b: raw(b)) for b in batches(items, BATCH))
        ensure_table(client, "bench")
        store = DynamoStore(client=client, table_name="bench")
        ingest_seconds = sum(timed(lambda b=b: store.ingest(b)) for b in batches(head, BATCH))
        return {"ingest": sample / ingest_seconds, "raw": sample / raw_seconds}


def postgres_url() -> tuple[Any, str] | None:
    """(server, url) of a scratch PostgreSQL, or None (with the reason printed)."""
    try:
        from tests.services import PostgresServer

        server = PostgresServer().start()
    except Exception as exc:  # missing binary, no tests/services.py, start failure
        print(f"PostgreSQL skipped: {exc}", flush=True)
        return None
    return server, server.url


# ---- report ------------------------------------------------------------------------------------

RATIO_TARGET = 0.5  # ingest / raw
READ_TARGET = 3.0  # store query / index-only query of the same rows


def entries(name: str, found: dict, events: int) -> dict[str, dict]:
    raw = limit(
        f"store_{name}_raw_events_per_s", found["raw"], "events/s",
        "the same kind of events bulk-inserted as bare rows, batches of 10, one transaction "
        f"each, alternating batch by batch with the ingest, into the same table holding {events:,} "
        "events, same run",
    )  # fmt: skip
    results = {
        f"store_{name}_ingest_vs_raw": figure(
            found["ingest"], "events/s", limit=raw,
            target=RATIO_TARGET if "reads" in found else None,
        ),
    }  # fmt: skip
    for case, got in found.get("reads", {}).items():
        how = (f"index-only query of the same rows ({got['plan']}), run alternately with it, "
               f"same run, {events:,} events")  # fmt: skip
        results[f"store_{name}_{case}_p50_ms"] = figure(
            got["p50"], "ms", target=READ_TARGET, higher_is_better=False,
            limit=limit(f"index_only_{case}_p50_ms", got["floor_p50"], "ms", how),
        )  # fmt: skip
        results[f"store_{name}_{case}_p95_ms"] = figure(
            got["p95"], "ms", target=READ_TARGET, higher_is_better=False,
            limit=limit(f"index_only_{case}_p95_ms", got["floor_p95"], "ms", how),
        )  # fmt: skip
        plain = got["decoded"]
        results[f"store_{name}_{case}_vs_decoded_p50_ms"] = figure(
            plain["p50"], "ms", higher_is_better=False,
            limit=limit(f"decoded_{case}_p50_ms", plain["floor_p50"], "ms",
                        "the same rows with every column the store reads, fetched through "
                        "Django's cursor, stored JSON decoded (json.loads), no objects made; run "
                        f"alternately with the store's read, same run, {events:,} events"),
        )  # fmt: skip
    return results


def run(
    events: int = 100_000,
    jobs: int = 5_000,
    sample: int = 2_000,
    dynamo_events: int = 300,
    repeats: int = 200,
    backends: tuple[str, ...] = ("sqlite", "postgres"),
    paired: bool = False,
) -> dict[str, dict]:
    setup_django()
    PAIRED[0] = paired
    MADE.clear()
    results: dict[str, dict] = {}
    TOTAL[0] = events
    scratch = Path(tempfile.mkdtemp(prefix="edobs-bench-store-"))
    if "sqlite" in backends:
        print(f"sqlite, {events:,} events in {jobs:,} jobs", flush=True)
        alias = add_database("bench_sqlite", f"sqlite:///{scratch / 'store.sqlite3'}")
        results |= report("sqlite", orm_backend(alias, events, jobs, sample, repeats), events)
    server = postgres_url() if "postgres" in backends else None
    if server:
        try:
            print(f"postgres, {events:,} events in {jobs:,} jobs", flush=True)
            alias = add_database("bench_pg", server[1])
            results |= report("postgres", orm_backend(alias, events, jobs, sample, repeats), events)
        finally:
            from django.db import connections

            connections["bench_pg"].close()
            server[0].close()
    if "dynamodb" in backends:
        TOTAL[0] = dynamo_events
        data = make_events(dynamo_events, 20, big=dynamo_events // 2)
        results |= report("dynamodb_moto", dynamo_backend(data, dynamo_events), dynamo_events)
    return results


def report(name: str, found: dict, events: int) -> dict[str, dict]:
    line = (f"{name}: ingest {found['ingest']:.0f}/s, raw {found['raw']:.0f}/s "
            f"(ratio {found['ingest'] / found['raw']:.2f})")  # fmt: skip
    for case, got in found.get("reads", {}).items():
        line += (f"; {case} p50 {got['p50']:.2f} ms (index-only {got['floor_p50']:.2f}) p95 "
                 f"{got['p95']:.2f} ms (index-only {got['floor_p95']:.2f})")  # fmt: skip
    print(line, flush=True)
    return entries(name, found, events)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--sample", type=int, default=2_000, help="events timed for ingest/raw")
    parser.add_argument("--dynamo-events", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--paired", action="store_true", help="triggers and token answers")
    parser.add_argument("--json", type=Path, help="also write the entries to this file")
    args = parser.parse_args()
    results = run(
        args.events, args.jobs, args.sample, args.dynamo_events, args.repeats,
        tuple(args.backends.split(",")), args.paired,
    )  # fmt: skip
    print()
    for name, found in sorted(results.items()):
        target = "" if found["target"] is None else f"(target {found['target']})"
        print(f"{name:<42} {found['value']:>10} {found['unit']:<9} ratio {found['ratio']} {target}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

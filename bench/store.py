"""Store benchmark: ingest rate against the same backend's raw bulk write, and read latency.

    .venv/bin/python bench/store.py [--events 100000 --jobs 5000 --sample 5000
                                     --dynamo-events 300 --dynamo-jobs 20 --json PATH]

For each backend (SQLite; PostgreSQL when a server can be started, with tests/services.py's
PostgresServer; DynamoDB on moto, in process):
- ingest: `store.ingest()` in batches of 10, as the worker calls it, over the first `--sample`
  events into an empty store;
- raw: the same events written as bare rows in batches of 10, into the same empty store in the
  same run (ORM: `Event.objects.bulk_create` of the rows the store would write, one transaction
  per batch; DynamoDB: `batch_write_item` of the event items, no markers, no summaries). The ratio
  ingest/raw is what idempotency and job summaries cost (target >= 0.5);
- then the rest of the data set is loaded (100,000 events in 5,000 jobs by default, one of them
  with 1,000 events) and the latency (p50, p95) of `latest_jobs(limit=50)` (everything, and one
  team's accounts) and of reading the 1,000-event job (pages of 500, as the API does) is measured.
  Targets on SQLite and PostgreSQL: latest jobs p95 < 50 ms, the 1,000-event job p95 < 100 ms.
moto's DynamoDB is an emulator: every TransactWriteItems deep-copies the table (for its
rollback; about a second per call here even on a small table) and index queries scan the table,
so its data set is tiny (300 events by default, the long job then has 150) and its figures
describe moto, not DynamoDB: they carry no target. The store's DynamoDB ingest makes two calls
per batch (BatchGetItem of the summaries, one TransactWriteItems) against raw's one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = ("111111111111", "222222222222")
BATCH = 10
LOAD_BATCH = 500


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


def make_events(count: int, jobs: int) -> list:
    """`count` events (about 10 a second) in `jobs` jobs; job 0 has 1,000 spread through them."""
    from events.envelope import parse_envelope

    big = min(1000, count // 2)
    every = max(1, count // max(1, big))
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    events, others = [], 0
    for i in range(count):
        if i % every == 0 and i // every < big:
            job = 0
        else:
            job, others = 1 + others % max(1, jobs - 1), others + 1
        body = _envelope(job, base + timedelta(seconds=i // 10), i)
        events.append(parse_envelope(body, default_account=ACCOUNTS[0]))
    return events


def _envelope(job: int, at: datetime, position: int) -> dict[str, Any]:
    account = ACCOUNTS[job % 2]
    execution = f"arn:aws:states:us-east-1:{account}:execution:EventDrivenMachine:job-{job:05d}"
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


def rate(write: Callable[[list], Any], events: list, size: int = BATCH) -> float:
    started = time.perf_counter()
    for batch in batches(events, size):
        write(batch)
    return len(events) / (time.perf_counter() - started)


def latency_ms(call: Callable[[], Any], repeats: int) -> tuple[float, float]:
    call()  # warm caches and connections
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


def read_job(store, job_id: str) -> int:
    """All of a job's events, pages of 500 (as events.selectors.job_event_list does)."""
    count, cursor = 0, None
    while True:
        page = store.job_events(job_id, accounts=None, limit=500, cursor=cursor)
        count += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return count


def read_figures(store, events: list, repeats: int) -> dict[str, float]:
    from events.stores.base import JobFilter

    def latest(accounts):
        return lambda: store.latest_jobs(
            accounts=accounts, limit=50, cursor=None, filters=JobFilter()
        )

    big_job = events[0].job  # job 0 owns the first event
    figures: dict[str, float] = {"job_events": read_job(store, big_job)}
    figures["latest_p50"], figures["latest_p95"] = latency_ms(latest(None), repeats)
    team = frozenset({ACCOUNTS[0]})
    figures["latest_team_p50"], figures["latest_team_p95"] = latency_ms(latest(team), repeats)
    figures["job_p50"], figures["job_p95"] = latency_ms(lambda: read_job(store, big_job), repeats)
    return figures


# ---- backends ----------------------------------------------------------------------------------


def orm_backend(alias: str, events: list, sample: int, repeats: int) -> dict[str, float]:
    import uuid as uuidlib

    from django.db import transaction

    from events.models import Event, Job
    from events.stores.orm import OrmStore, _event_row, _job_row

    store = OrmStore(using=alias)
    head = events[:sample]
    jobs = {e.job: e for e in head}
    Job.objects.using(alias).bulk_create([_job_row(e) for e in jobs.values()])

    def raw(batch: list) -> None:
        with transaction.atomic(using=alias):
            rows = [_event_row(e, uuidlib.uuid4()) for e in batch]
            Event.objects.using(alias).bulk_create(rows)

    raw_rate = rate(raw, head)
    Event.objects.using(alias).all().delete()
    Job.objects.using(alias).all().delete()
    ingest_rate = rate(store.ingest, head)
    for batch in batches(events[sample:], LOAD_BATCH):
        store.ingest(batch)
    assert Event.objects.using(alias).count() == len(events)
    return {"ingest": ingest_rate, "raw": raw_rate, **read_figures(store, events, repeats)}


def dynamo_backend(events: list, sample: int, repeats: int) -> dict[str, float]:
    import boto3
    from moto import mock_aws

    from events.stores.dynamodb import DynamoStore, _dump
    from infra.table import ensure_table

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        ensure_table(client, "bench-raw")
        store = DynamoStore(client=client, table_name="bench-raw")
        head = events[:sample]
        items = [_dump(store._item(e, n)) for n, e in enumerate(head)]

        def raw(batch: list) -> None:
            requests = [{"PutRequest": {"Item": item}} for item in batch]
            store._batch_write(requests)

        raw_rate = rate(raw, items)
        ensure_table(client, "bench")
        store = DynamoStore(client=client, table_name="bench")
        ingest_rate = rate(store.ingest, head)
        for batch in batches(events[sample:], 25):
            store.ingest(batch)
        return {"ingest": ingest_rate, "raw": raw_rate, **read_figures(store, events, repeats)}


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


def entry(value: float, unit: str, target: float | None, higher: bool) -> dict[str, Any]:
    return {"value": round(value, 3), "unit": unit, "target": target, "higher_is_better": higher}


def entries(name: str, found: dict[str, float], *, targets: bool) -> dict[str, dict]:
    ms = 50.0 if targets else None
    size = int(found["job_events"])
    job_ms = 100.0 if targets else None
    return {
        f"store_{name}_ingest_events_per_s": entry(found["ingest"], "events/s", None, True),
        f"store_{name}_raw_events_per_s": entry(found["raw"], "events/s", None, True),
        f"store_{name}_ingest_vs_raw": entry(
            found["ingest"] / found["raw"], "ratio", 0.5 if targets else None, True
        ),
        f"store_{name}_latest_jobs_p50_ms": entry(found["latest_p50"], "ms", None, False),
        f"store_{name}_latest_jobs_p95_ms": entry(found["latest_p95"], "ms", ms, False),
        f"store_{name}_latest_jobs_team_p95_ms": entry(found["latest_team_p95"], "ms", ms, False),
        f"store_{name}_job_{size}_events_p50_ms": entry(found["job_p50"], "ms", None, False),
        f"store_{name}_job_{size}_events_p95_ms": entry(found["job_p95"], "ms", job_ms, False),
    }


def run(
    events: int = 100_000,
    jobs: int = 5_000,
    sample: int = 5_000,
    dynamo_events: int = 300,
    dynamo_jobs: int = 20,
    repeats: int = 50,
    backends: tuple[str, ...] = ("sqlite", "postgres", "dynamodb"),
) -> dict[str, dict]:
    setup_django()
    results: dict[str, dict] = {}
    if {"sqlite", "postgres"} & set(backends):
        results |= sql_backends(events, jobs, sample, repeats, backends)
    if "dynamodb" in backends:
        data = make_events(dynamo_events, dynamo_jobs)
        found = dynamo_backend(data, min(sample, dynamo_events // 3), repeats)
        results |= report("dynamodb_moto", found, dynamo_events, dynamo_jobs, False)
    return results


def sql_backends(events, jobs, sample, repeats, backends) -> dict[str, dict]:
    results: dict[str, dict] = {}
    data = make_events(events, jobs)
    scratch = Path(tempfile.mkdtemp(prefix="edobs-bench-store-"))
    if "sqlite" in backends:
        alias = add_database("bench_sqlite", f"sqlite:///{scratch / 'store.sqlite3'}")
        results |= report("sqlite", orm_backend(alias, data, sample, repeats), events, jobs, True)
    server = postgres_url() if "postgres" in backends else None
    if server:
        try:
            alias = add_database("bench_pg", server[1])
            found = orm_backend(alias, data, sample, repeats)
            results |= report("postgres", found, events, jobs, True)
        finally:
            from django.db import connections

            connections["bench_pg"].close()
            server[0].close()
    return results


def report(name: str, found: dict, events: int, jobs: int, targets: bool) -> dict[str, dict]:
    print(
        f"{name}: {events} events in {jobs} jobs; ingest {found['ingest']:.0f}/s, raw "
        f"{found['raw']:.0f}/s (ratio {found['ingest'] / found['raw']:.2f}); latest jobs p50 "
        f"{found['latest_p50']:.1f} ms p95 {found['latest_p95']:.1f} ms (team p95 "
        f"{found['latest_team_p95']:.1f}); {found['job_events']:.0f}-event job p50 "
        f"{found['job_p50']:.1f} ms p95 {found['job_p95']:.1f} ms",
        flush=True,
    )
    return entries(name, found, targets=targets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--sample", type=int, default=5_000, help="events timed for ingest/raw")
    parser.add_argument("--dynamo-events", type=int, default=300)
    parser.add_argument("--dynamo-jobs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--backends", default="sqlite,postgres,dynamodb")
    parser.add_argument("--json", type=Path, help="also write the entries to this file")
    args = parser.parse_args()
    results = run(
        args.events, args.jobs, args.sample, args.dynamo_events, args.dynamo_jobs, args.repeats,
        tuple(args.backends.split(",")),
    )  # fmt: skip
    print()
    for name, found in sorted(results.items()):
        target = "" if found["target"] is None else f"(target {found['target']})"
        print(f"{name:<42} {found['value']:>10.2f} {found['unit']:<9} {target}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Event search and state machine metrics on PostgreSQL at 1,000,000 events.

    .venv/bin/python bench/search.py [--events 1000000 --repeats 20 --json PATH]

A throwaway PostgreSQL (tests/services.py's PostgresServer), migrated, is loaded in bulk by one
INSERT ... SELECT over generate_series (the events table's secondary indexes dropped during the
load and built after it, as a bulk load does): `--events` events over the last 48 hours, 8 per
job, jobs of 10 state machines in 2 accounts, 7% of them failed. Each detail is realistic JSON
(`orderId`, a customer, a note, `meta.fn`), written as the text Python's json.dumps makes so that
`search_text` is exactly what ingest writes (events.domain.search.search_text); one event in 10,000
holds "😀" and one in 5,000 "注文".

Then, each `--repeats` times, through the store exactly as `GET /api/events` and
`GET /api/state-machines/<name>/metrics` call it (events.stores.orm.store, events.domain.fleet):
- `where`: `orderId=<n>` (4 events hold it),
- `q` word: an order reference (`ord-<n>`, one event),
- `q` emoji: "😀" (no trigram: the bounded scan of the newest 20,000 events),
- `fn`: one of 8 functions, first page of 100,
- metrics: one state machine, 24 hours in 1 h buckets.
Each is reported as p50/p95 (nearest rank: the p95 of 20 runs is the 19th fastest) and as the
ratio of its p50 to an index-only lookup of the same rows in the same run (the rows' primary
keys, `seq = ANY(...)` / `id = ANY(...)`, after VACUUM so the visibility map allows index-only
scans). EXPLAIN (ANALYZE, BUFFERS) of each query's first statement is kept in the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import figure, limit  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "search.json"
MACHINES = ["OrderFlow", "Billing", "Shipping", "Refunds", "Inventory", "Payouts", "Signup",
            "Reports", "Emails", "Fraud"]  # fmt: skip
FNS = ["validateOrder", "chargeCard", "reserveStock", "shipOrder", "notifyCustomer",
       "updateLedger", "scoreFraud", "archiveOrder"]  # fmt: skip
PER_JOB = 8
SPAN = timedelta(hours=48)


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


# ---- load --------------------------------------------------------------------------------------


LOAD_JOBS = """
INSERT INTO events_job (id, execution_arn, state_machine, name, account, region, status,
    status_at, started_at, stopped_at, error, cause, first_event_at, last_event_at, event_count)
SELECT acct || ':us-east-1:' || machine || ':job-' || j,
    'arn:aws:states:us-east-1:' || acct || ':execution:' || machine || ':job-' || j,
    machine, 'job-' || j, acct, 'us-east-1', status, t1, t0, t1,
    CASE WHEN status = 'FAILED' THEN (ARRAY['Payment.Declined', 'States.Timeout',
        'Stock.Empty'])[1 + j %% 3] ELSE '' END,
    CASE WHEN status = 'FAILED' THEN 'it broke' ELSE '' END, t0, t1, %(per_job)s
FROM (
    SELECT j, (%(machines)s::text[])[1 + j %% 10] AS machine,
        CASE WHEN j %% 2 = 0 THEN '111111111111' ELSE '222222222222' END AS acct,
        CASE WHEN j %% 100 < 7 THEN 'FAILED' ELSE 'SUCCEEDED' END AS status,
        %(start)s::timestamptz + %(step)s * (j * %(per_job)s) AS t0,
        %(start)s::timestamptz + %(step)s * (j * %(per_job)s + %(per_job)s - 1)
            + interval '1 millisecond' * (j %% 997) AS t1
    FROM generate_series(0, %(jobs)s - 1) AS j
) AS jobs
"""

LOAD_EVENTS = """
INSERT INTO events_event (seq, event_id, job_id, source, detail_type, account, region, time, at,
    at_source, received_at, fn, raw, batch, search_text)
SELECT n, id, job, 'project', 'step.done', acct, 'us-east-1', t, t, 'producer', t, fn,
    jsonb_build_object('version', '0', 'id', id, 'source', 'project', 'detail-type',
        'step.done', 'account', acct, 'region', 'us-east-1', 'time', t, 'resources',
        '[]'::jsonb, 'detail', detail::jsonb),
    '00000000-0000-0000-0000-000000000000'::uuid, lower(id) || E'\\n' || detail
FROM (
    SELECT n, 'ev-' || n AS id, job, acct, fn, t,
        '{"execution": "arn:aws:states:us-east-1:' || acct || ':execution:' || machine
        || ':job-' || j || '", "orderId": ' || (n %% %(orders)s) || ', "ref": "ord-' || n
        || '", "customer": {"name": "' || (ARRAY['zoë', 'ana', 'li wei', 'ünal'])[1 + n %% 4]
        || '", "tier": "gold"}, "note": "' || CASE WHEN n %% 10000 = 7 THEN 'great 😀'
        WHEN n %% 5000 = 11 THEN '注文を受け付けました' ELSE 'step finished' END
        || '", "meta": {"fn": "' || fn || '", "stateMachine": "' || machine || '"}}' AS detail
    FROM (
        SELECT n, n / %(per_job)s AS j,
            (%(machines)s::text[])[1 + (n / %(per_job)s) %% 10] AS machine,
            CASE WHEN (n / %(per_job)s) %% 2 = 0 THEN '111111111111' ELSE '222222222222' END
                AS acct,
            (%(fns)s::text[])[1 + n %% 8] AS fn,
            %(start)s::timestamptz + %(step)s * n AS t
        FROM generate_series(0, %(events)s - 1) AS n
    ) AS base
    CROSS JOIN LATERAL (SELECT acct || ':us-east-1:' || machine || ':job-' || j AS job) AS k
) AS rows
"""


def secondary_indexes(cursor) -> list[tuple[str, str]]:
    cursor.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'events_event' "
        "AND i.indexname NOT IN (SELECT conname FROM pg_constraint)"
    )
    return cursor.fetchall()


def load(connection, events: int) -> dict[str, float]:
    """Bulk load; returns the seconds each step took."""
    now = datetime.now(UTC).replace(microsecond=0)
    step = SPAN / events
    params = {
        "events": events, "jobs": math.ceil(events / PER_JOB), "per_job": PER_JOB,
        "machines": MACHINES, "fns": FNS, "start": now - SPAN, "step": step,
        "orders": max(1, events // 4),
    }  # fmt: skip
    took: dict[str, float] = {}
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        indexes = secondary_indexes(cursor)
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        started = time.monotonic()
        cursor.execute(LOAD_JOBS, params)
        cursor.execute(LOAD_EVENTS, params)
        took["insert_s"] = time.monotonic() - started
        for name, definition in indexes:
            started = time.monotonic()
            cursor.execute(definition)
            took[f"index_{name}_s"] = time.monotonic() - started
        cursor.execute("SELECT setval('events_event_seq_seq', %s)", [events])
    started = time.monotonic()
    connection.set_autocommit(True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE events_event")
        cursor.execute("VACUUM ANALYZE events_job")
    took["vacuum_analyze_s"] = time.monotonic() - started
    return took


# ---- the queries -------------------------------------------------------------------------------


def search(store, *, text: str = "", where=(), fn: str | None = None, limit: int = 100):
    """One page of `GET /api/events`, as events.read.selectors.event_search_page makes it."""
    from events.domain import search as events_search
    from events.read.selectors import _matches
    from events.stores.base import Window

    text = events_search.fold(text)
    window = Window(newest_first=True, text=text, where=tuple(where), fn=fn)
    page = store.events_page(
        window, accounts=None, limit=limit, cursor=None,
        keep=lambda event: _matches(event, window, text, tuple(where)),
    )  # fmt: skip
    return page


def metrics(store, machine: str):
    """`GET /api/state-machines/<name>/metrics` over 24 h in 1 h buckets (the selector's work)."""
    from events.domain import fleet

    until = datetime.now(UTC)
    starts = fleet.bucket_starts(until - timedelta(hours=24), until, timedelta(hours=1))
    jobs = store.state_machine_jobs(
        machine, accounts=None, since=starts[0], until=starts[-1] + timedelta(hours=1)
    )
    return jobs, fleet.metrics(jobs, starts=starts, size=timedelta(hours=1))


def timed(call: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    found, times = None, []
    for _ in range(repeats):
        started = time.perf_counter()
        found = call()
        times.append((time.perf_counter() - started) * 1000)
    return times, found


def first_statement(connection, call: Callable[[], Any]) -> str:
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        call()
    return next(q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT"))


def explain(connection, sql: str, *, no_seqscan: bool = False) -> list[str]:
    """The plan, each line cut at 300 characters (a lookup's plan spells out its keys)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET enable_seqscan = {'off' if no_seqscan else 'on'}")
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        lines = [row[0][:300] for row in cursor.fetchall()]
        cursor.execute("SET enable_seqscan = on")
    return lines


def lookup(connection, table: str, key: str, keys: list) -> Callable[[], Any]:
    """The index-only lookup of the same rows: their primary keys through the primary key."""

    def run():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {key} FROM {table} WHERE {key} = ANY(%s)", [keys])
            return cursor.fetchall()

    return run


def set_seqscan(connection, on: bool) -> None:
    """Off for the lookups: for thousands of keys the planner would rather read the table."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET enable_seqscan = {'on' if on else 'off'}")


def measure(connection, store, events: int, repeats: int) -> dict[str, dict]:
    from events.domain.search import Where
    from events.models import Event

    order = (events // 2) % max(1, events // 4)
    cases: dict[str, Callable[[], Any]] = {
        "where": lambda: search(store, where=[Where(("orderId",), order)]),
        "q_word": lambda: search(store, text=f"ord-{events // 3}"),
        "q_emoji": lambda: search(store, text="😀"),
        "fn": lambda: search(store, fn="shipOrder"),
        "metrics_24h": lambda: metrics(store, "OrderFlow"),
    }
    figures = {}
    for name, call in cases.items():
        call()  # warm the cache: every figure is of a warm database
        times, found = timed(call, repeats)
        if name == "metrics_24h":
            keys, table, key, rows = [job.id for job in found[0]], "events_job", "id", None
            rows = len(keys)
        else:
            ids = [event.id for event in found.items]
            keys = list(Event.objects.using(store.using).filter(event_id__in=ids)
                        .values_list("seq", flat=True))  # fmt: skip
            table, key, rows = "events_event", "seq", len(ids)
        set_seqscan(connection, False)
        index_times, _ = timed(lookup(connection, table, key, keys), repeats)
        set_seqscan(connection, True)
        sql = first_statement(connection, call)
        figures[name] = {
            "rows": rows, "p50_ms": nearest_rank(times, 0.5), "p95_ms": nearest_rank(times, 0.95),
            "index_only_p50_ms": nearest_rank(index_times, 0.5),
            "index_only_p95_ms": nearest_rank(index_times, 0.95),
            "ratio_p50": nearest_rank(times, 0.5) / nearest_rank(index_times, 0.5),
            "explain": explain(connection, sql),
            "index_only_explain": explain(
                connection, f"SELECT {key} FROM {table} WHERE {key} = ANY(ARRAY{keys!r})"
                if keys else f"SELECT {key} FROM {table} WHERE false", no_seqscan=True,
            ),
        }  # fmt: skip
        if name != "metrics_24h":
            figures[name]["cursor"] = found.next_cursor is not None
    return figures


def table(figures: dict[str, dict]) -> str:
    lines = [f"{'query':<12} {'rows':>6} {'p50 ms':>9} {'p95 ms':>9} {'index-only p50':>15} "
             f"{'ratio':>8}"]  # fmt: skip
    for name, f in figures.items():
        lines.append(
            f"{name:<12} {f['rows']:>6} {f['p50_ms']:>9.2f} {f['p95_ms']:>9.2f} "
            f"{f['index_only_p50_ms']:>15.3f} {f['ratio_p50']:>8.1f}"
        )
    return "\n".join(lines)


def run(events: int = 1_000_000, repeats: int = 20, json_path: Path = RESULTS) -> dict[str, dict]:
    """For bench/run.py: the figures as its entries, the details in bench/results/search.json."""
    sys.path.insert(0, str(ROOT))
    from bench.store import add_database, setup_django

    setup_django()
    from django.db import connections

    from events.stores.orm.store import OrmStore
    from tests.services import PostgresServer

    server = PostgresServer().start()
    try:
        alias = add_database("search_pg", server.url)
        connection = connections[alias]
        took = load(connection, events)
        print(f"loaded {events} events: " + ", ".join(f"{k} {v:.1f}" for k, v in took.items()),
              flush=True)  # fmt: skip
        figures = measure(connection, OrmStore(using=alias), events, repeats)
        connection.close()
    finally:
        server.close()
    print(table(figures))
    json_path.parent.mkdir(exist_ok=True)
    json_path.write_text(json.dumps(
        {"events": events, "repeats": repeats, "load_s": took, "queries": figures}, indent=2,
        ensure_ascii=False,
    ) + "\n")  # fmt: skip
    size = f"{events // 1000}k"
    entries = {}
    for name, f in figures.items():
        for stat in ("p50", "p95"):
            index_only = limit(
                f"index_only_{stat}", f[f"index_only_{stat}_ms"], "ms",
                f"an index-only lookup of the same {f['rows']} rows by primary key, same run",
            )  # fmt: skip
            entries[f"search_{size}_{name}_{stat}"] = figure(
                f[f"{stat}_ms"], "ms", limit=index_only, higher_is_better=False
            )
    return entries


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    run(events=args.events, repeats=args.repeats, json_path=args.json)

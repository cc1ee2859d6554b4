"""bench/search.py's bulk loads: the same events on PostgreSQL and on SQLite, in one statement
each, the events table's secondary indexes (and SQLite's two FTS5 tables' triggers) dropped
during the load and built after it, as a bulk load does.

`events` events over the last 48 hours, 8 per job, jobs of 10 state machines in 2 accounts, 7%
of them failed. Each detail is realistic JSON (`orderId`, a `ref` "ord-<n>", a customer, a note,
`meta.fn`), written as the text Python's json.dumps makes so that `search_text` is exactly what
ingest writes (events.domain.search.search_text: folded, the detail's keys too); one event in
10,000 holds "😀" and one in 5,000 "注文番号を受け付けました".
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

MACHINES = ["OrderFlow", "Billing", "Shipping", "Refunds", "Inventory", "Payouts", "Signup",
            "Reports", "Emails", "Fraud"]  # fmt: skip
FNS = ["validateOrder", "chargeCard", "reserveStock", "shipOrder", "notifyCustomer",
       "updateLedger", "scoreFraud", "archiveOrder"]  # fmt: skip
PER_JOB = 8
SPAN = timedelta(hours=48)
CJK_NOTE = "注文番号を受け付けました"

# ---- PostgreSQL --------------------------------------------------------------------------------

PG_JOBS = """
INSERT INTO events_job (id, execution_arn, state_machine, name, account, region, status,
    status_at, started_at, stopped_at, error, cause, first_event_at, last_event_at, event_count,
    parent, attempts)
SELECT acct || ':us-east-1:' || machine || ':job-' || j,
    'arn:aws:states:us-east-1:' || acct || ':execution:' || machine || ':job-' || j,
    machine, 'job-' || j, acct, 'us-east-1', status, t1, t0, t1,
    CASE WHEN status = 'FAILED' THEN (ARRAY['Payment.Declined', 'States.Timeout',
        'Stock.Empty'])[1 + j %% 3] ELSE '' END,
    CASE WHEN status = 'FAILED' THEN 'it broke' ELSE '' END, t0, t1, %(per_job)s, '',
    '[]'::jsonb
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

PG_EVENTS = """
INSERT INTO events_event (seq, event_id, job_id, source, detail_type, account, region, time, at,
    at_source, received_at, fn, raw, batch, search_text)
SELECT n, id, job, 'project', 'step.done', acct, 'us-east-1', t, t, 'producer', t, fn,
    jsonb_build_object('version', '0', 'id', id, 'source', 'project', 'detail-type',
        'step.done', 'account', acct, 'region', 'us-east-1', 'time', t, 'resources',
        '[]'::jsonb, 'detail', detail::jsonb),
    '00000000-0000-0000-0000-000000000000'::uuid, lower(id || E'\\n' || detail)
FROM (
    SELECT n, 'ev-' || n AS id, job, acct, fn, t,
        '{"execution": "arn:aws:states:us-east-1:' || acct || ':execution:' || machine
        || ':job-' || j || '", "orderId": ' || (n %% %(orders)s) || ', "ref": "ord-' || n
        || '", "customer": {"name": "' || (ARRAY['zoë', 'ana', 'li wei', 'ünal'])[1 + n %% 4]
        || '", "tier": "gold"}, "note": "' || CASE WHEN n %% 10000 = 7 THEN 'great 😀'
        WHEN n %% 5000 = 11 THEN %(cjk)s ELSE 'step finished' END
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


def params(events: int) -> dict:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "events": events, "jobs": math.ceil(events / PER_JOB), "per_job": PER_JOB,
        "machines": MACHINES, "fns": FNS, "start": now - SPAN, "step": SPAN / events,
        "orders": max(1, events // 4), "cjk": CJK_NOTE,
    }  # fmt: skip


def load_postgres(connection, events: int) -> dict[str, float]:
    """Bulk load; returns the seconds each step took."""
    took: dict[str, float] = {}
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = "
            "'events_event' AND i.indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        started = time.monotonic()
        cursor.execute(PG_JOBS, params(events))
        cursor.execute(PG_EVENTS, params(events))
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


# ---- SQLite ------------------------------------------------------------------------------------
# Django keeps SQLite datetimes as UTC text, "YYYY-MM-DD HH:MM:SS.ffffff"; JSON as text; UUIDs as
# 32 hex digits. Times are whole microseconds since the epoch, made text by `stamp`.


def series(count: int) -> str:
    return f"WITH RECURSIVE r(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM r WHERE n < {count} - 1)"


def stamp(micros: str) -> str:
    whole = f"CAST(({micros}) AS INTEGER)"
    return (f"(strftime('%%Y-%%m-%%d %%H:%%M:%%S', {whole} / 1000000, 'unixepoch') || '.' "
            f"|| printf('%%06d', {whole} %% 1000000))")  # fmt: skip


SQLITE_JOBS = f"""
INSERT INTO events_job (id, execution_arn, state_machine, name, account, region, status,
    status_at, started_at, stopped_at, error, cause, first_event_at, last_event_at, event_count,
    parent, attempts)
SELECT acct || ':us-east-1:' || machine || ':job-' || j,
    'arn:aws:states:us-east-1:' || acct || ':execution:' || machine || ':job-' || j,
    machine, 'job-' || j, acct, 'us-east-1', status, t1, t0, t1,
    CASE WHEN status = 'FAILED' THEN CASE j %% 3 WHEN 0 THEN 'Payment.Declined'
        WHEN 1 THEN 'States.Timeout' ELSE 'Stock.Empty' END ELSE '' END,
    CASE WHEN status = 'FAILED' THEN 'it broke' ELSE '' END, t0, t1, %(per_job)s, '', '[]'
FROM (
    SELECT j, json_extract(%(machines)s, '$[' || (j %% 10) || ']') AS machine,
        CASE WHEN j %% 2 = 0 THEN '111111111111' ELSE '222222222222' END AS acct,
        CASE WHEN j %% 100 < 7 THEN 'FAILED' ELSE 'SUCCEEDED' END AS status,
        {stamp("%(start)s + %(step)s * (j * %(per_job)s)")} AS t0,
        {stamp("%(start)s + %(step)s * (j * %(per_job)s + %(per_job)s - 1) + 1000 * (j %% 997)")}
            AS t1
    FROM (SELECT n AS j FROM r)
)
"""

SQLITE_EVENTS = f"""
INSERT INTO events_event (seq, event_id, job_id, source, detail_type, account, region, time, at,
    at_source, received_at, fn, raw, batch, search_text)
SELECT n, id, acct || ':us-east-1:' || machine || ':job-' || j, 'project', 'step.done', acct,
    'us-east-1', t, t, 'producer', t, fn,
    json_object('version', '0', 'id', id, 'source', 'project', 'detail-type', 'step.done',
        'account', acct, 'region', 'us-east-1', 'time', t, 'resources', json('[]'),
        'detail', json(detail)),
    '00000000000000000000000000000000', lower(id || char(10) || detail)
FROM (
    SELECT n, j, id, acct, machine, fn, t,
        '{{"execution": "arn:aws:states:us-east-1:' || acct || ':execution:' || machine
        || ':job-' || j || '", "orderId": ' || (n %% %(orders)s) || ', "ref": "ord-' || n
        || '", "customer": {{"name": "' || CASE n %% 4 WHEN 0 THEN 'zoë' WHEN 1 THEN 'ana'
        WHEN 2 THEN 'li wei' ELSE 'ünal' END
        || '", "tier": "gold"}}, "note": "' || CASE WHEN n %% 10000 = 7 THEN 'great 😀'
        WHEN n %% 5000 = 11 THEN %(cjk)s ELSE 'step finished' END
        || '", "meta": {{"fn": "' || fn || '", "stateMachine": "' || machine || '"}}}}'
        AS detail
    FROM (
        SELECT n, n / %(per_job)s AS j, 'ev-' || n AS id,
            json_extract(%(machines)s, '$[' || ((n / %(per_job)s) %% 10) || ']') AS machine,
            CASE WHEN (n / %(per_job)s) %% 2 = 0 THEN '111111111111' ELSE '222222222222' END
                AS acct,
            json_extract(%(fns)s, '$[' || (n %% 8) || ']') AS fn,
            {stamp("%(start)s + %(step)s * n")} AS t
        FROM r
    )
)
"""


def load_sqlite(connection, events: int) -> dict[str, float]:
    """Bulk load in one transaction; the FTS5 indexes (migrations 0013_h23, 0015_h26) rebuilt
    after it."""
    import json

    from django.db import transaction

    fts, words = _fts_migration(), _words_migration()
    p = params(events)
    micros = {
        **p, "start": int(p["start"].timestamp() * 1_000_000),
        "step": SPAN / timedelta(microseconds=1) / events,
        "machines": json.dumps(MACHINES), "fns": json.dumps(FNS),
    }  # fmt: skip
    took: dict[str, float] = {}
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('events_event', 'events_job')"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for statement in [*fts.SQLITE_DROP, *words.SQLITE_DROP]:
            if "TRIGGER" in statement:
                cursor.execute(statement)
        started = time.monotonic()
        cursor.execute(series(micros["jobs"]) + SQLITE_JOBS, micros)
        cursor.execute(series(events) + SQLITE_EVENTS, micros)
        took["insert_s"] = time.monotonic() - started
        for name, definition in indexes:
            started = time.monotonic()
            cursor.execute(definition)
            took[f"index_{name}_s"] = time.monotonic() - started
        started = time.monotonic()
        cursor.execute(fts.REBUILD)
        for statement in fts.SQLITE_CREATE:
            cursor.execute(statement)
        took["index_events_event_fts_s"] = time.monotonic() - started
        started = time.monotonic()
        cursor.execute(words.REBUILD)
        for statement in words.SQLITE_CREATE:
            cursor.execute(statement)
        took["index_events_event_words_s"] = time.monotonic() - started
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    took["analyze_s"] = time.monotonic() - started
    return took


def _fts_migration():
    import importlib

    return importlib.import_module("events.migrations.0013_h23_sqlite_fts")


def _words_migration():
    import importlib

    return importlib.import_module("events.migrations.0015_h26_word_index")

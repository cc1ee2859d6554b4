"""Event search and state machine metrics on PostgreSQL and SQLite at 1,000,000 events.

    .venv/bin/python bench/search.py [--events 1000000 --repeats 20 --backends postgres,sqlite
                                      --json PATH]

Each database is a throwaway (PostgreSQL: tests/services.py's PostgresServer, the database made
with LC_CTYPE C.UTF-8 as a Debian install's is, so pg_trgm sees CJK letters; SQLite: a file in a
temporary directory), migrated, loaded in bulk by bench/search_load.py (its docstring says what
the events hold).

Then, each `--repeats` times, through the store exactly as `GET /api/events` and
`GET /api/state-machines/<name>/metrics` call it (events.stores.orm.store, events.domain.fleet):
- `where`: `orderId=<n>` (4 events hold it; PostgreSQL only: SQLite checks `where` in Python over
  a bounded scan, as before),
- `q` word: an order reference (`ord-<n>`, one event),
- `q` non-ASCII: "注文番号" (4 characters, one event in 5,000),
- `q` substring: "rd-<n // 10>" from inside a word (11 events),
- `q` short: "注文" (2 characters, no trigram: the bounded scan of the newest 20,000 events),
- `q` emoji: "😀" (no trigram: the bounded scan),
- `fn`: one of 8 functions, first page of 100,
- metrics: one state machine, 24 hours in 1 h buckets.
Each is reported as p50/p95 (nearest rank: the p95 of 20 runs is the 19th fastest) and as the
ratio of its p50 to an index-only lookup of the same rows in the same run (the rows' primary
keys, `seq = ANY(...)` / `id = ANY(...)` after VACUUM so the visibility map allows index-only
scans on PostgreSQL; `seq IN (...)`, the rowid, on SQLite), and of its p50 to the same rows
fetched by key through the store (`store_lookup`: the ORM statement and the decoding of each
row, Python included, as a page's). The plans of each query's
statements are kept in the JSON (PostgreSQL: EXPLAIN (ANALYZE, BUFFERS) of the first; SQLite:
EXPLAIN QUERY PLAN of each).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import figure, limit  # noqa: E402
from bench.search_load import load_postgres, load_sqlite  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "search.json"
BACKENDS = ("postgres", "sqlite")
SCANS = ("q_short", "q_emoji")  # no trigram: bounded scans, no index target


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


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


def statements(connection, call: Callable[[], Any]) -> list[str]:
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        call()
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]


def explain(connection, sql: str, *, no_seqscan: bool = False) -> list[str]:
    """The plan, each line cut at 300 characters (a lookup's plan spells out its keys)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
            return [str(row[-1])[:300] for row in cursor.fetchall()]
        cursor.execute(f"SET enable_seqscan = {'off' if no_seqscan else 'on'}")
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        lines = [row[0][:300] for row in cursor.fetchall()]
        cursor.execute("SET enable_seqscan = on")
    return lines


def plans(connection, call: Callable[[], Any]) -> list[str]:
    """PostgreSQL: EXPLAIN ANALYZE of the first SELECT; SQLite: the query plan of each (the
    FTS5 lookup, then the rows), at most 4."""
    found = statements(connection, call)
    if connection.vendor != "sqlite":
        return explain(connection, found[0])
    return [line for sql in found[:4] for line in [sql[:300], *explain(connection, sql)]]


def lookup_sql(connection, table: str, key: str, keys: list) -> tuple[str, list]:
    """The index-only lookup of the same rows: their primary keys through the primary key."""
    if connection.vendor == "sqlite":
        sql = f"SELECT {key} FROM {table} WHERE {key} IN (SELECT value FROM json_each(%s))"
        return sql, [json.dumps(keys)]
    return f"SELECT {key} FROM {table} WHERE {key} = ANY(%s)", [keys]


def replay(connection, sqls: list[str]) -> Callable[[], Any]:
    """The engine's share: the SELECTs the store ran for the page, run again as they were (their
    values in the text), every row fetched, nothing decoded."""

    def run():
        with connection.cursor() as cursor:
            for sql in sqls:
                cursor.execute(sql.replace("%", "%%"))
                cursor.fetchall()

    return run


def lookup(connection, table: str, key: str, keys: list) -> Callable[[], Any]:
    sql, params = lookup_sql(connection, table, key, keys)

    def run():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    return run


def store_lookup(store, keys: list) -> Callable[[], Any]:
    """The same rows fetched by key through the store's own read path, Python included: the
    ORM statement built, each row decoded into an event (events.stores.orm.rows.read_events),
    newest first as a page is. What a search that found exactly these rows could cost at
    least; SQLite's index-only lookup (in-process, 0.04 ms) has none of it."""
    from events.models import Event
    from events.stores.orm.rows import read_events

    def run():
        rows = Event.objects.using(store.using).filter(seq__in=keys)
        return read_events(rows.order_by("-time", "-seq"))

    return run


def lookup_plan(connection, table: str, key: str, keys: list) -> list[str]:
    if connection.vendor == "sqlite":
        return explain(connection, f"SELECT {key} FROM {table} WHERE {key} IN (SELECT value FROM "
                                   f"json_each('{json.dumps(keys)}'))")  # fmt: skip
    sql = (f"SELECT {key} FROM {table} WHERE {key} = ANY(ARRAY{keys!r})" if keys
           else f"SELECT {key} FROM {table} WHERE false")  # fmt: skip
    return explain(connection, sql, no_seqscan=True)


def set_seqscan(connection, on: bool) -> None:
    """Off for the lookups: for thousands of keys the planner would rather read the table."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET enable_seqscan = {'on' if on else 'off'}")


def cases(vendor: str, events: int) -> dict[str, Callable]:
    from events.domain.search import Where

    order = (events // 2) % max(1, events // 4)
    found: dict[str, Callable] = {
        "where": lambda store: search(store, where=[Where(("orderId",), order)]),
        "q_word": lambda store: search(store, text=f"ord-{events // 3}"),
        "q_non_ascii": lambda store: search(store, text="注文番号"),
        "q_substring": lambda store: search(store, text=f"rd-{events // 30}"),
        "q_short": lambda store: search(store, text="注文"),
        "q_emoji": lambda store: search(store, text="😀"),
        "fn": lambda store: search(store, fn="shipOrder"),
        "metrics_24h": lambda store: metrics(store, "OrderFlow"),
    }
    if vendor == "sqlite":
        del found["where"]
    return found


def measure(connection, store, events: int, repeats: int) -> dict[str, dict]:
    from events.models import Event

    figures = {}
    for name, case in cases(connection.vendor, events).items():
        call = functools.partial(case, store)
        call()  # warm the cache: every figure is of a warm database
        times, found = timed(call, repeats)
        if name == "metrics_24h":
            keys, table, key = [job.id for job in found[0]], "events_job", "id"
            rows = len(keys)
        else:
            ids = [event.id for event in found.items]
            keys = list(Event.objects.using(store.using).filter(event_id__in=ids)
                        .values_list("seq", flat=True))  # fmt: skip
            table, key, rows = "events_event", "seq", len(ids)
        set_seqscan(connection, False)
        index_times, _ = timed(lookup(connection, table, key, keys), repeats)
        set_seqscan(connection, True)
        engine_times, _ = timed(replay(connection, statements(connection, call)), repeats)
        keyed_times = None
        if name != "metrics_24h":
            keyed_times, _ = timed(store_lookup(store, keys), repeats)
        figures[name] = {
            "rows": rows, "p50_ms": nearest_rank(times, 0.5), "p95_ms": nearest_rank(times, 0.95),
            "index_only_p50_ms": nearest_rank(index_times, 0.5),
            "index_only_p95_ms": nearest_rank(index_times, 0.95),
            "ratio_p50": nearest_rank(times, 0.5) / nearest_rank(index_times, 0.5),
            "engine_p50_ms": nearest_rank(engine_times, 0.5),
            "engine_ratio_p50": nearest_rank(engine_times, 0.5) / nearest_rank(index_times, 0.5),
            "explain": plans(connection, call),
            "index_only_explain": lookup_plan(connection, table, key, keys),
        }  # fmt: skip
        if name != "metrics_24h":
            figures[name]["cursor"] = found.next_cursor is not None
            figures[name]["store_lookup_p50_ms"] = nearest_rank(keyed_times, 0.5)
            figures[name]["store_lookup_ratio_p50"] = nearest_rank(times, 0.5) / nearest_rank(
                keyed_times, 0.5
            )
    return figures


def table(figures: dict[str, dict]) -> str:
    lines = [f"{'query':<12} {'rows':>6} {'p50 ms':>9} {'p95 ms':>9} {'index-only p50':>15} "
             f"{'ratio':>8} {'engine p50':>11} {'ratio':>8} {'store-lookup p50':>17} "
             f"{'ratio':>8}"]  # fmt: skip
    for name, f in figures.items():
        keyed = (f"{f['store_lookup_p50_ms']:>17.3f} {f['store_lookup_ratio_p50']:>8.1f}"
                 if "store_lookup_p50_ms" in f else "")  # fmt: skip
        lines.append(
            f"{name:<12} {f['rows']:>6} {f['p50_ms']:>9.2f} {f['p95_ms']:>9.2f} "
            f"{f['index_only_p50_ms']:>15.3f} {f['ratio_p50']:>8.1f} "
            f"{f['engine_p50_ms']:>11.3f} {f['engine_ratio_p50']:>8.1f} {keyed}"
        )
    return "\n".join(lines)


def bench_postgres(events: int, repeats: int) -> tuple[dict, dict]:
    from django.db import connections

    from bench.store import add_database
    from events.stores.orm.store import OrmStore
    from tests.services import PostgresServer

    server = PostgresServer().start()
    try:
        import psycopg

        with psycopg.connect(server.url, autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench TEMPLATE template0 ENCODING 'UTF8' "
                          "LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'")  # fmt: skip
        alias = add_database("search_pg", server.url.rsplit("/", 1)[0] + "/bench")
        connection = connections[alias]
        took = load_postgres(connection, events)
        print(f"postgres: loaded {events} events: "
              + ", ".join(f"{k} {v:.1f}" for k, v in took.items()), flush=True)  # fmt: skip
        figures = measure(connection, OrmStore(using=alias), events, repeats)
        connection.close()
    finally:
        server.close()
    return took, figures


def bench_sqlite(events: int, repeats: int) -> tuple[dict, dict]:
    from django.db import connections

    from bench.store import add_database
    from events.stores.orm.store import OrmStore

    with tempfile.TemporaryDirectory(prefix="edobs-bench-search-") as folder:
        alias = add_database("search_sqlite", f"sqlite:///{folder}/search.sqlite3")
        connection = connections[alias]
        took = load_sqlite(connection, events)
        print(f"sqlite: loaded {events} events: "
              + ", ".join(f"{k} {v:.1f}" for k, v in took.items()), flush=True)  # fmt: skip
        figures = measure(connection, OrmStore(using=alias), events, repeats)
        connection.close()
    return took, figures


def run(
    events: int = 1_000_000, repeats: int = 20, json_path: Path = RESULTS,
    backends: tuple[str, ...] | list[str] = BACKENDS,
) -> dict[str, dict]:  # fmt: skip
    """For bench/run.py: the figures as its entries, the details in bench/results/search.json."""
    sys.path.insert(0, str(ROOT))
    from bench.store import setup_django

    setup_django()
    document: dict[str, Any] = {"events": events, "repeats": repeats, "backends": {}}
    entries = {}
    size = f"{events // 1000}k"
    for backend in backends:
        started = time.monotonic()
        took, figures = {"postgres": bench_postgres, "sqlite": bench_sqlite}[backend](
            events, repeats
        )
        print(f"{backend} ({time.monotonic() - started:.0f} s in all)")
        print(table(figures), flush=True)
        document["backends"][backend] = {"load_s": took, "queries": figures}
        for name, f in figures.items():
            for stat in ("p50", "p95"):
                index_only = limit(
                    f"index_only_{stat}", f[f"index_only_{stat}_ms"], "ms",
                    f"an index-only lookup of the same {f['rows']} rows by primary key, same run",
                )  # fmt: skip
                target = 10 if name.startswith("q_") and name not in SCANS else None
                entries[f"search_{backend}_{size}_{name}_{stat}"] = figure(
                    f[f"{stat}_ms"], "ms", limit=index_only, higher_is_better=False,
                    target=target if stat == "p50" else None,
                )  # fmt: skip
            entries[f"search_{backend}_{size}_{name}_engine_p50"] = figure(
                f["engine_p50_ms"], "ms", higher_is_better=False, target=target, limit=limit(
                    "index_only_p50", f["index_only_p50_ms"], "ms",
                    f"an index-only lookup of the same {f['rows']} rows by primary key, same run",
                ),
            )  # fmt: skip
    json_path.parent.mkdir(exist_ok=True)
    json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return entries


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    run(events=args.events, repeats=args.repeats, json_path=args.json,
        backends=args.backends.split(","))  # fmt: skip

"""What SQLite's FTS5 search indexes (migrations 0013_h23_sqlite_fts, the trigrams, and
0015_h26_word_index, the words) cost ingest.

    .venv/bin/python bench/fts_ingest.py [--events 20000] [--backend sqlite|postgres]

The same events (bench/store.py's data set) are ingested through the ORM store, 10 a batch,
into three fresh SQLite databases: one with both FTS5 tables' triggers, one with the trigram
table's only, one with neither; batch by batch, each batch into all three, the order rotated
every batch. Prints the three rates and each ratio to the rate with neither.

`--backend postgres`: the same on two databases of a throwaway PostgreSQL (tests/services.py),
one with the word index `event_search_words` and one without it (both with the trigram GIN).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.store import add_database, batches, make_events, setup_django  # noqa: E402


def run(events: int = 20_000) -> dict[str, float]:
    setup_django()
    from django.db import connections

    from events.stores.orm.store import OrmStore

    trigrams = importlib.import_module("events.migrations.0013_h23_sqlite_fts")
    words = importlib.import_module("events.migrations.0015_h26_word_index")
    folder = tempfile.mkdtemp(prefix="edobs-bench-fts-")
    drops = {
        "both": [],
        "trigrams_only": words.SQLITE_DROP,
        "neither": [*words.SQLITE_DROP, *trigrams.SQLITE_DROP],
    }
    for name, statements in drops.items():
        add_database(name, f"sqlite:///{folder}/{name}.sqlite3")
        with connections[name].cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    stores = {name: OrmStore(using=name) for name in drops}
    took = dict.fromkeys(stores, 0.0)
    names = list(stores)
    for n, batch in enumerate(batches(make_events(events, max(1, events // 20)), 10)):
        for name in names[n % 3 :] + names[: n % 3]:
            started = time.perf_counter()
            stores[name].ingest(batch)
            took[name] += time.perf_counter() - started
    rates = {name: events / seconds for name, seconds in took.items()}
    for name in ("both", "trigrams_only"):
        rates[f"{name}_ratio"] = rates[name] / rates["neither"]
    return rates


def run_postgres(events: int = 20_000) -> dict[str, float]:
    setup_django()
    import psycopg
    from django.db import connections

    from events.stores.orm.store import OrmStore
    from tests.services import PostgresServer

    words = importlib.import_module("events.migrations.0015_h26_word_index")
    server = PostgresServer().start()
    try:
        base = server.url.rsplit("/", 1)[0]
        with psycopg.connect(server.url, autocommit=True) as admin:
            for name in ("with_words", "without_words"):
                admin.execute(f"CREATE DATABASE {name}")
        for name in ("with_words", "without_words"):
            add_database(name, f"{base}/{name}")
        with connections["without_words"].cursor() as cursor:
            cursor.execute(words.PG_DROP[0])
        stores = {name: OrmStore(using=name) for name in ("with_words", "without_words")}
        took = dict.fromkeys(stores, 0.0)
        names = list(stores)
        for n, batch in enumerate(batches(make_events(events, max(1, events // 20)), 10)):
            for name in names if n % 2 == 0 else names[::-1]:
                started = time.perf_counter()
                stores[name].ingest(batch)
                took[name] += time.perf_counter() - started
        for name in stores:
            connections[name].close()
    finally:
        server.close()
    rates = {name: events / seconds for name, seconds in took.items()}
    rates["ratio"] = rates["with_words"] / rates["without_words"]
    return rates


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    found = (run if args.backend == "sqlite" else run_postgres)(args.events)
    print(", ".join(f"{name} {value:.2f}" for name, value in found.items()))

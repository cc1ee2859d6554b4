"""What SQLite's FTS5 search index (migration 0013_h23_sqlite_fts) costs ingest.

    .venv/bin/python bench/fts_ingest.py [--events 20000]

The same events (bench/store.py's data set) are ingested through the ORM store, 10 a batch,
into two fresh SQLite databases, one with the FTS5 table's triggers and one without them,
alternated batch by batch (each batch first into one, then the other, the order swapped every
batch). Prints both rates and their ratio.
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

    fts = importlib.import_module("events.migrations.0013_h23_sqlite_fts")
    folder = tempfile.mkdtemp(prefix="edobs-bench-fts-")
    with_fts = add_database("with_fts", f"sqlite:///{folder}/with.sqlite3")
    without = add_database("without_fts", f"sqlite:///{folder}/without.sqlite3")
    with connections[without].cursor() as cursor:
        for statement in fts.SQLITE_DROP:
            cursor.execute(statement)
    stores = {with_fts: OrmStore(using=with_fts), without: OrmStore(using=without)}
    took = dict.fromkeys(stores, 0.0)
    for n, batch in enumerate(batches(make_events(events, max(1, events // 20)), 10)):
        for alias in (with_fts, without) if n % 2 == 0 else (without, with_fts):
            started = time.perf_counter()
            stores[alias].ingest(batch)
            took[alias] += time.perf_counter() - started
    rates = {alias: events / seconds for alias, seconds in took.items()}
    rates["ratio"] = rates[with_fts] / rates[without]
    return rates


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    found = run(parser.parse_args().events)
    print(", ".join(f"{name} {value:.2f}" for name, value in found.items()))

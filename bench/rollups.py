"""Architecture over 24 h: from the rollups vs recomputed from raw events, on the same data.

Run as `python bench/rollups.py [--events N] [--full]` (or through bench/run.py). It loads N
events of bench/rollup_traffic.py (several accounts and state machines, sub-second Lambdas,
failures) spread over 24 h into a fresh SQLite database by bulk insert, builds the rollups with
`rebuild` (what `manage.py rebuild_rollups` runs), then times, with the same warm-up (one
untimed call each) and alternating order, the store's answer from its rollups and the raw
computation (every event of the window read and given to events.domain.architecture, no row limit).
Percentiles are exact nearest-rank ones over the repeats. It checks that both give the same
nodes and edge counts and reports the largest relative p95 error. Figures go to
bench/results/rollups.json and are returned for bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "rollups.json"
SMALL, FULL = 50_000, 1_000_000
REPEATS = 5
RATIO_TARGET = 1 / 20
ERROR_TARGET = 0.02

sys.path.insert(0, str(HERE.parent))
from bench.common import constant, figure, limit  # noqa: E402


def _setup(path: str) -> None:
    sys.path.insert(0, str(HERE.parent))
    os.environ["DJANGO_SETTINGS_MODULE"] = "edobs_site.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    os.environ["EDOBS_STORE"] = "orm"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _load(count: int, now: datetime) -> float:
    """Bulk-inserts `count` events of the last 24 h; returns the seconds the rebuild took."""
    from django.db import connections, transaction

    from bench import rollup_traffic
    from events.domain.summary import new_summary
    from events.models import Event, Job
    from events.stores.orm import store as orm
    from events.stores.orm.rollups import rebuild
    from events.stores.orm.sql import insert_new

    start = now - timedelta(hours=24)
    connection = connections["default"]
    chunk = 50_000
    for offset in range(0, count, chunk):
        size = min(chunk, count - offset)
        share = timedelta(seconds=int(86_400 * offset / count))
        found = rollup_traffic.events(
            size, start=start + share, seconds=int(86_400 * size / count), seed=offset + 1
        )
        jobs = {event.job: event for event in found if event.job}
        with transaction.atomic():
            rows = [orm._summary_values(new_summary(jobs[job]), None) for job in sorted(jobs)]
            insert_new(connection, Job, orm.JOB_ROW, rows, conflict=["id"])
            batch = uuid.uuid4()
            rows = [orm._event_values(event, batch) for event in found]
            insert_new(connection, Event, orm.EVENT_COLUMNS, rows, conflict=["account", "event_id"])
        print(f"  loaded {offset + size:,} events", flush=True)
    began = time.perf_counter()
    rebuild(
        progress=lambda n: print(f"  rollups: {n:,} events read") if n % 50_000 < 2000 else None
    )
    return time.perf_counter() - began


def percentile(ordered: list[float], share: float) -> float:
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _strip(graph: dict) -> tuple:
    edges = [(e["source"], e["target"], e["count"]) for e in graph["edges"]]
    return graph["nodes"], edges


def _p95_error(rolled: dict, exact: dict) -> float:
    worst = 0.0
    for mine, theirs in zip(rolled["edges"], exact["edges"], strict=True):
        if theirs["p95_ms"] is not None:
            worst = max(worst, abs(mine["p95_ms"] - theirs["p95_ms"]) / max(theirs["p95_ms"], 1))
    return worst


def measure(count: int, repeats: int = REPEATS) -> dict:
    from events.domain.architecture import infer_architecture
    from events.stores.base import Window
    from events.stores.orm.store import OrmStore

    now = datetime.now(UTC).replace(microsecond=0)
    rebuild_s = _load(count, now)
    store = OrmStore()
    window = Window(since=now - timedelta(hours=24), until=now + timedelta(seconds=1))
    unlimited = Window(since=window.since, until=window.until, limit=count * 2)

    def rolled() -> dict:
        return store.architecture(window, accounts=None)

    def raw() -> dict:
        return infer_architecture(store.events_window(unlimited, accounts=None))

    answers = {"rollups": rolled(), "raw": raw()}  # the warm-up, one each
    if _strip(answers["rollups"]) != _strip(answers["raw"]):
        raise AssertionError("the rollups and the raw events give different architectures")
    timings: dict[str, list[float]] = {"rollups": [], "raw": []}
    for repeat in range(repeats):
        order = (("rollups", rolled), ("raw", raw))
        for name, action in order if repeat % 2 == 0 else order[::-1]:
            began = time.perf_counter()
            action()
            timings[name].append(time.perf_counter() - began)
        print(f"  repeat {repeat + 1}: rollups {timings['rollups'][-1]:.3f} s, "
              f"raw {timings['raw'][-1]:.3f} s", flush=True)  # fmt: skip
    stats = {
        name: {"p50_s": percentile(sorted(values), 0.5), "p95_s": percentile(sorted(values), 0.95)}
        for name, values in timings.items()
    }
    return {
        "events": count,
        "repeats": repeats,
        "rebuild_s": round(rebuild_s, 3),
        "rollups": stats["rollups"],
        "raw": stats["raw"],
        "ratio_p50": stats["rollups"]["p50_s"] / stats["raw"]["p50_s"],
        "p95_max_relative_error": _p95_error(answers["rollups"], answers["raw"]),
        "edges": len(answers["raw"]["edges"]),
    }


def main(count: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        _setup(str(Path(scratch) / "rollups.sqlite3"))
        figures = measure(count, repeats)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2), flush=True)
    return figures


def run(events: int | None = None, repeats: int = REPEATS) -> dict:
    """bench/run.py's entry: SMALL events, FULL with `--full` on the command line. In its own
    process, so that its database is its own whatever the other benches configured."""
    count = events or (FULL if "--full" in sys.argv else SMALL)
    command = [sys.executable, str(Path(__file__)), "--events", str(count)]
    subprocess.run([*command, "--repeats", str(repeats)], check=True, cwd=HERE.parent)
    figures = json.loads(RESULTS.read_text())
    size = f"{count // 1000}k"
    raw = limit(
        "raw_recompute_p50", figures["raw"]["p50_s"], "s",
        "the same architecture recomputed from the raw events, same data and warm-up",
    )  # fmt: skip
    exact = constant("exact_p95", 1.0, "x", "every edge's p95 computed exactly from the raw events")
    return {
        f"architecture_rollups_{size}_p50": figure(
            figures["rollups"]["p50_s"], "s", limit=raw, target=RATIO_TARGET,
            higher_is_better=False,
        ),
        f"architecture_rollups_{size}_p95_error": figure(
            figures["p95_max_relative_error"], "relative", limit=exact,
            ratio=figures["p95_max_relative_error"], target=ERROR_TARGET, higher_is_better=False,
        ),
    }  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--full", action="store_true", help=f"{FULL:,} events")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    arguments = parser.parse_args()
    main(arguments.events or (FULL if arguments.full else SMALL), arguments.repeats)

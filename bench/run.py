"""`make bench`: run every benchmark of bench/, print one table, write bench/results/latest.json.

    .venv/bin/python bench/run.py [--full] [NAME ...]

Each bench module exposes `run(**sizes)` returning bench.common figures: every figure carries
the limit it was measured against in the same run (the limit's own value and how it was
measured) and their ratio.  The default sizes keep the whole run under ten minutes on a 2-core
machine; `--full` runs the million-event sizes (docs/PERFORMANCE.md says which is which).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import met  # noqa: E402

RESULTS = Path(os.environ.get("EDOBS_BENCH_RESULTS", HERE / "results" / "latest.json"))

# module file -> keyword arguments for its run(): (default, --full)
BENCHES: dict[str, tuple[dict, dict]] = {
    "ingest.py": ({"events": 1_000}, {"events": 5_000}),
    "workers.py": ({"events": 3_000}, {"events": 6_000}),
    "store.py": ({"events": 100_000, "jobs": 5_000}, {"events": 1_000_000, "jobs": 50_000}),
    "timeline_architecture.py": ({}, {}),
    "fanout.py": ({"clients": 100, "seconds": 5.0}, {"clients": 100, "seconds": 10.0}),
    "rollups.py": ({"events": 50_000, "repeats": 3}, {"events": 1_000_000, "repeats": 3}),
    "search.py": (None, {"events": 1_000_000}),  # PostgreSQL and SQLite at 1M events: --full
}


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name[:-3]}", HERE / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(results: dict) -> str:
    lines = [f"{'benchmark':<48} {'value':>10} {'unit':<9} {'ratio':>8}  {'limit':<40} "
             f"{'kind':<8} {'target':>7}  ok"]  # fmt: skip
    for name, entry in sorted(results.items()):
        ok = {True: "yes", False: "NO", None: "-"}[met(entry)]
        target = entry.get("target")
        target = (
            ""
            if target is None
            else f"{'<=' if not entry['higher_is_better'] else '>='}"
            f"{target:g}{'' if entry.get('target_on', 'ratio') == 'ratio' else entry['unit']}"
        )
        lim = entry["limit"]
        lines.append(
            f"{name:<48} {entry['value']:>10g} {entry['unit']:<9} {entry['ratio']:>8g}  "
            f"{lim['name'][:28]:<28} {lim['value']:>11g} {lim.get('kind', '?'):<8} {target:>7}  "
            f"{ok}"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    # Other sizes, for tests/bench: {"ingest.py": {"events": 40}, ...} (only those modules run).
    sizes = json.loads(os.environ.get("EDOBS_BENCH_SIZES", "null"))
    if sizes:
        BENCHES.clear()
        BENCHES.update({name: (kwargs, kwargs) for name, kwargs in sizes.items()})
    full = "--full" in argv
    selected = [name for name in argv if name != "--full"]
    results: dict[str, dict] = {}
    failures = []
    began = time.monotonic()
    for name, (default, bigger) in BENCHES.items():
        if selected and name[:-3] not in selected:
            continue
        if (bigger if full else default) is None:
            continue
        started = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            results.update(load(name).run(**(bigger if full else default)))
        except Exception:
            traceback.print_exc()
            failures.append(name)
        print(f"   {time.monotonic() - started:.0f} s", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    document = {
        "run": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"), "full": full,
            "seconds": round(time.monotonic() - began), "python": platform.python_version(),
            "machine": platform.machine(), "cpus": _cpus(), "load_average": _load(),
        },
        "figures": results,
    }  # fmt: skip
    RESULTS.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    print(f"\n{document['run']}")
    print(table(results))
    print(f"\nwrote {RESULTS}")
    if failures:
        print(f"FAILED: {', '.join(failures)}")
    return 1 if failures else 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _load() -> list[float]:
    import os

    return [round(value, 2) for value in os.getloadavg()]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

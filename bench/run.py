"""`make bench`: run every benchmark of bench/, print one table, write bench/results/latest.json.

Each bench module exposes `run(**sizes) -> {"name": {"value", "unit", "target",
"higher_is_better"}}`. Sizes here keep the whole run under ten minutes on a 2-core machine.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "latest.json"

# module file -> keyword arguments for its run()
BENCHES: dict[str, dict] = {
    "ingest.py": {"events": 5_000, "naive_events": 1_000},  # rates settle well before that
    "store.py": {},
    "timeline_architecture.py": {},
    "fanout.py": {},
    "rollups.py": {},  # 50,000 events; 1,000,000 with --full (bench/rollups.py)
}


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name[:-3]}", HERE / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def met(entry: dict) -> bool | None:
    target, value = entry.get("target"), entry.get("value")
    if target is None or value is None:
        return None
    return value >= target if entry.get("higher_is_better") else value <= target


def table(results: dict) -> str:
    lines = [f"{'benchmark':<44} {'value':>12} {'unit':<10} {'target':>10}  ok"]
    for name, entry in sorted(results.items()):
        ok = {True: "yes", False: "NO", None: "-"}[met(entry)]
        target = entry.get("target")
        lines.append(
            f"{name:<44} {entry['value']:>12.3f} {entry.get('unit', ''):<10} "
            f"{'' if target is None else format(target, '.3g'):>10}  {ok}"
        )
    return "\n".join(lines)


def main(selected: list[str]) -> int:
    sys.path.insert(0, str(HERE.parent))
    results: dict[str, dict] = {}
    failures = []
    for name, kwargs in BENCHES.items():
        if selected and name[:-3] not in selected:
            continue
        started = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            results.update(load(name).run(**kwargs))
        except Exception:
            traceback.print_exc()
            failures.append(name)
        print(f"   {time.monotonic() - started:.0f} s", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"\nmachine: {platform.machine()}, {platform.python_version()}, {platform.node()}")
    print(table(results))
    print(f"\nwrote {RESULTS.relative_to(HERE.parent)}")
    if failures:
        print(f"FAILED: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    if "--full" in sys.argv:  # the long benches: search and metrics at 1M events (~20 min)
        BENCHES["search.py"] = {"events": 1_000_000}
    sys.exit(main([arg for arg in sys.argv[1:] if arg != "--full"]))

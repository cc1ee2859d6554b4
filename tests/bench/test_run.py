"""bench/run.py's JSON: every figure carries its ratio and the limit it was measured against.

Runs the quick benches on tiny sizes (the fan-out and multi-process worker benches take
minutes; they produce their figures through the same bench.common.figure)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import constant, limit, met, percentile
from bench.ingest import rounds_order
from bench.workers import middle_rate

ROOT = Path(__file__).resolve().parents[2]


def test_percentile_is_exact_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 95) == 95  # not 94 (int(.95 n) - 1), not interpolated
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([3.0, 1.0, 2.0], 95) == 3.0
    assert math.isnan(percentile([], 95))


def test_met_reads_the_target_off_the_ratio_or_the_value():
    ratio = {"value": 10.0, "unit": "ms", "ratio": 4.0, "target": 3, "target_on": "ratio",
             "higher_is_better": False}  # fmt: skip
    assert met(ratio) is False
    assert met(ratio | {"ratio": 2.5}) is True
    value = ratio | {"target": 250, "target_on": "value"}
    assert met(value) is True
    assert met(value | {"value": 300.0}) is False


def test_a_limit_says_whether_it_was_measured_or_is_a_constant():
    assert limit("drain", 300.0, "events/s", "a bare drain, same run")["kind"] == "measured"
    assert constant("one_core", 1.0, "cores", "one process")["kind"] == "constant"
    with pytest.raises(ValueError):
        limit("x", 1.0, "x", "x", kind="guessed")


def test_the_store_ceiling_is_timed_between_10_and_90_percent_like_the_workers():
    # 100 events in batches of 10, one every 0.1 s, after a 5 s start-up; the last one 5 s late.
    batches = [(5.0 + n / 10, 10) for n in range(9)] + [(10.0, 10)]
    # 10% is reached at the first batch (5.0 s, 10 stored), 90% at the ninth (5.8 s, 90).
    assert middle_rate(batches) == pytest.approx(80 / 0.8)
    # Two writers' batches interleaved count together.
    two = sorted([(1.0 + n / 10, 10) for n in range(5)] + [(1.05 + n / 10, 10) for n in range(5)])
    assert middle_rate(two) == pytest.approx(80 / 0.4)


def test_the_ingest_consumers_take_every_place_in_the_order_alike():
    orders = rounds_order(["drain", "ingest", "naive"], 6)
    assert len({tuple(order) for order in orders}) == 6
    for place in range(3):
        assert (
            sorted(order[place] for order in orders)
            == ["drain"] * 2 + ["ingest"] * 2 + ["naive"] * 2
        )


@pytest.mark.slow
def test_run_writes_ratio_and_limit_for_every_figure(tmp_path):
    sizes = {
        "ingest.py": {"events": 40},
        "store.py": {"events": 1_500, "jobs": 60, "sample": 40, "repeats": 5,
                     "backends": ["sqlite"]},
    }  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"EDOBS_BENCH_SIZES": json.dumps(sizes), "PYTHONPATH": str(ROOT),
            "EDOBS_BENCH_RESULTS": str(tmp_path / "latest.json"),
            "EDOBS_VAR_DIR": str(tmp_path / "var")}  # fmt: skip
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads((tmp_path / "latest.json").read_text())
    figures = document["figures"]
    expected = {
        "ingest_vs_drain",
        "ingest_vs_naive_rtt10ms",
        "store_sqlite_ingest_vs_raw",
        "store_sqlite_job_1000_events_p95_ms",
        "store_sqlite_latest_jobs_team_p95_ms",
    }
    assert expected <= set(figures)
    for name, entry in figures.items():
        assert entry["value"] > 0, name
        limit = entry["limit"]
        assert limit["value"] > 0 and limit["unit"] and limit["how"] and limit["name"], name
        assert limit["kind"] in ("measured", "constant"), name
        if name.endswith("_growth"):
            continue
        assert entry["ratio"] == pytest.approx(entry["value"] / limit["value"], rel=1e-3), name
    assert document["run"]["date"] and document["run"]["full"] is False

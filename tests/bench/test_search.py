"""bench/search.py at a small size on both databases: every query finds what the data holds, and
the text queries of 3 or more characters are index lookups (the plans it records say so)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_search_bench_runs_on_both_databases_and_looks_text_up_in_their_indexes(tmp_path):
    out = tmp_path / "search.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"PYTHONPATH": str(ROOT), "EDOBS_VAR_DIR": str(tmp_path / "var")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "search.py"), "--events", "3000", "--repeats",
         "2", "--backends", "sqlite,postgres", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    backends = json.loads(out.read_text())["backends"]

    for name, backend in backends.items():
        queries = backend["queries"]
        # ord-1000; 注文番号 in event 11; rd-100 in ord-100 and ord-1000 to ord-1009
        assert [queries[q]["rows"] for q in ("q_word", "q_non_ascii", "q_substring")] == [
            1, 1, 11,
        ], name  # fmt: skip
        assert queries["q_emoji"]["rows"] == 1 and queries["fn"]["rows"] == 100, name
        # a word or a substring of "ord-<n>": the token after "-" in the word index; 注文番号:
        # the trigrams
        words = "events_event_words" if name == "sqlite" else "event_search_words"
        trigrams = "events_event_fts" if name == "sqlite" else "event_search_trgm"
        for q, index in (("q_word", words), ("q_substring", words), ("q_non_ascii", trigrams)):
            plan = "\n".join(queries[q]["explain"])
            assert index in plan, (name, q, plan)
            assert queries[q]["p50_ms"] > 0 and queries[q]["engine_p50_ms"] > 0
        assert "events_event_fts" not in "\n".join(queries["q_short"]["explain"])
        assert queries["q_short"]["rows"] == 1  # 注文 too, by the bounded scan

"""The schema list reads at most events.domain.drift.SAMPLE events a window, and answers fast."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from events.domain import drift
from events.domain.drift import Windows
from events.read.drift import schema_list

from .conftest import ingest_bodies
from .drift_traffic import drift_traffic

pytestmark = pytest.mark.django_db


def test_a_busy_window_is_sampled_and_still_fast(monkeypatch):
    monkeypatch.setattr(drift, "SAMPLE", 300)
    traffic = drift_traffic()
    envelopes = []
    for copy in range(10):  # 10 x 51 events in the two hours
        for envelope in traffic.envelopes:
            envelopes.append({**envelope, "id": f"{envelope['id']}-{copy}"})
    ingest_bodies([json.dumps(e) for e in envelopes])
    windows = Windows.make(since=traffic.since, until=traffic.until)

    started = time.perf_counter()
    answer = schema_list(None, windows)
    took = time.perf_counter() - started

    assert answer["sampled"] is True
    assert sum(t["events"] for t in answer["types"]) == 300
    assert took < 5, f"{took:.1f} s for 600 events"
    assert windows.until - windows.since == timedelta(hours=1)


def test_a_sampled_window_shows_a_change_deployed_minutes_ago(monkeypatch):
    """The sample is the window's newest events: a field that appeared in the last minutes of
    a busy window is drift, though the window's oldest events (all that an oldest-first sample
    of 10 would read) never held it."""
    monkeypatch.setattr(drift, "SAMPLE", 10)
    traffic = drift_traffic()
    deployed = traffic.until - timedelta(minutes=2)
    late = []
    for n in range(3):
        envelope = json.loads(json.dumps(traffic.current[0]))
        envelope["id"] = f"late-{n}"
        envelope["time"] = (deployed + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        envelope["detail"]["express"] = True
        late.append(envelope)
    ingest_bodies([json.dumps(e) for e in traffic.envelopes + late])
    windows = Windows.make(since=traffic.since, until=traffic.until)

    answer = schema_list(None, windows)

    placed = next(t for t in answer["types"] if t["detail_type"] == "OrderPlaced")
    assert answer["sampled"] is True
    assert "express" in {f["path"] for f in placed["fields"]}
    assert placed["drift"] >= 1

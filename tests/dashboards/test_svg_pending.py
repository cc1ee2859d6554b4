"""The server-drawn timeline survives a pending span (no fn, no end) until the job page draws
pending work itself (issue 15, pages half)."""

from __future__ import annotations

from dashboards.svg import timeline_geometry
from events.timeline import job_timeline
from tests.events.test_timeline import JOB_FAILED, job_events


def test_it_draws_a_pending_span_to_the_end_of_the_chart() -> None:
    geometry = timeline_geometry(job_timeline(job_events("part1_jobs.jsonl", JOB_FAILED)))

    assert geometry is not None
    assert geometry["groups"][-1]["fn"] == "awaiting generateReport"
    pending = geometry["bars"][-1]
    assert pending["end"] is None
    assert pending["x"] + pending["w"] == geometry["plot_right"]

"""The duration and status texts of the pages (pure).

The job timeline and the architecture graph are drawn in the browser only
(static/dashboards/timeline.js, architecture.js): zoom, pan and live updates need their geometry
there, so it is kept in that one place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def human_ms(ms: float | int | None) -> str:
    """A duration rounded for people: 850 ms, 1.2 s, 42 s, 3 min 5 s, 2 h 4 min."""
    if ms is None:
        return "—"
    ms = max(0, round(ms))
    if ms < 1_000:
        return f"{ms} ms"
    if ms < 10_000:
        return f"{ms / 1000:.1f} s"
    seconds = round(ms / 1000)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def skew_text(skew_ms: int) -> str:
    return f"clock skew {round(skew_ms)} ms"


def span_duration(span: dict[str, Any]) -> str:
    """A span's duration with the precision it has: "350 ms", or "~2 s" when both its ends
    are only known to the whole second (the envelope's time; events.domain.clock); "clock skew N ms"
    when its end reads before its start (clocks that disagree: events.domain.timeline)."""
    if span.get("skew_ms"):
        return skew_text(span["skew_ms"])
    ms = span.get("duration_ms")
    if not span.get("approx") or ms is None:
        return human_ms(ms)
    if ms < 1_000:
        return "< 1 s"
    return f"~{round(ms / 1000)} s" if ms < 60_000 else f"~{human_ms(ms)}"


def duration_between(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    return human_ms((end - start).total_seconds() * 1000)


def status_css(status: str | None) -> str:
    return {
        "RUNNING": "running", "SUCCEEDED": "succeeded", "FAILED": "failed",
        "TIMED_OUT": "failed", "ABORTED": "failed",
    }.get(status or "", "unknown")  # fmt: skip

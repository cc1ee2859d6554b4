"""Geometry of the pages' SVG pictures, computed here and drawn by templates (pure).

static/dashboards/job.js redraws the timeline in the browser with the same constants and rules;
keep the two in step.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from events.envelope import parse_time

LABEL_W = 170
PLOT_W = 860
RIGHT_PAD = 30
AXIS_H = 34
EXEC_H = 24
ROW_H = 20
ROW_GAP = 5
GROUP_PAD = 8
PALETTE_SIZE = 8
TICK_STEPS_MS = [
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000,
    600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000,
]  # fmt: skip
MAX_TICKS = 10


def _time(value: str | None) -> datetime | None:
    return parse_time(value) if value else None


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


def span_duration(span: dict[str, Any]) -> str:
    """A span's duration with the precision it has: "350 ms", or "~2 s" when both its ends
    are only known to the whole second (the envelope's time; events.clock)."""
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


def tick_label(ms: int, step: int) -> str:
    if step < 1_000:
        return f"{ms / 1000:.1f} s"
    seconds = ms // 1000
    if seconds < 120:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes}:{seconds:02d}"
    return f"{minutes // 60} h {minutes % 60:02d}"


def tick_step(total_ms: float) -> int:
    for step in TICK_STEPS_MS:
        if total_ms / step <= MAX_TICKS:
            return step
    return TICK_STEPS_MS[-1]


def _colour_keys(spans: list[dict[str, Any]]) -> dict[str, int]:
    """Colour index per incoming detail-type, in order of first appearance."""
    keys: dict[str, int] = {}
    for span in spans:
        key = _incoming_label(span)
        if key not in keys:
            keys[key] = len(keys) % PALETTE_SIZE
    return keys


def _incoming_label(span: dict[str, Any]) -> str:
    incoming = span.get("incoming")
    return incoming["detailType"] if incoming else "(not observed)"


def _bounds(timeline: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    execution = timeline["execution"]
    starts = [_time(s["start"]) for s in timeline["spans"]] + [_time(execution["start"])]
    ends = [_time(s["end"]) for s in timeline["spans"]] + [_time(execution["stop"])]
    starts = [t for t in starts if t]
    ends = [t for t in ends + starts if t]
    return (min(starts), max(ends)) if starts else (None, None)


class _Scale:
    def __init__(self, t0: datetime, t1: datetime) -> None:
        self.t0 = t0
        self.total_ms = max(1.0, (t1 - t0).total_seconds() * 1000)

    def ms(self, t: datetime) -> float:
        return (t - self.t0).total_seconds() * 1000

    def x(self, t: datetime) -> float:
        return round(LABEL_W + self.ms(t) / self.total_ms * PLOT_W, 1)


def _groups(spans: list[dict[str, Any]], top: float) -> tuple[list[dict], dict[int, float], float]:
    """One band per fn (by fn_lane), as tall as its stacked sub-lanes; y of each lane."""
    depth: dict[int, int] = {}
    names: dict[int, str] = {}
    counts: dict[int, int] = {}
    for span in spans:
        fn_lane = span["fn_lane"]
        depth[fn_lane] = max(depth.get(fn_lane, 0), span["sub_lane"] + 1)
        names[fn_lane] = span["fn"] or span["lane"]  # a pending span: `awaiting <type>`
        counts[fn_lane] = counts.get(fn_lane, 0) + 1
    groups, lane_y, y = [], {}, top
    for index, fn_lane in enumerate(sorted(depth)):
        height = depth[fn_lane] * (ROW_H + ROW_GAP) - ROW_GAP + 2 * GROUP_PAD
        groups.append(
            {"fn": names[fn_lane], "y": y, "h": height, "label_y": y + height / 2,
             "count": counts[fn_lane], "odd": index % 2 == 1}
        )  # fmt: skip
        for sub in range(depth[fn_lane]):
            lane_y[(fn_lane, sub)] = y + GROUP_PAD + sub * (ROW_H + ROW_GAP)
        y += height
    return groups, lane_y, y


def _bar(span: dict[str, Any], scale: _Scale, y: float, colour: int) -> dict[str, Any]:
    start = _time(span["start"])
    # a pending span has no end: it waits to the chart's end (the job page draws it properly later)
    end = _time(span["end"]) or scale.t0 + timedelta(milliseconds=scale.total_ms)
    x = scale.x(start)
    w = max(3.0, round(scale.x(end) - x, 1))
    outgoing = span.get("outgoing") or {}
    return {
        "x": x, "y": y, "w": w, "h": ROW_H, "colour": colour, "open": span["open"],
        "fn": span["fn"], "incoming": _incoming_label(span),
        "outgoing": outgoing.get("detailType", ""), "step": span.get("step") or "",
        "start": span["start"], "end": span["end"],
        "duration": span_duration(span),
        "show_duration": w >= 52, "end_event": span.get("end_event"),
        "tx": round(x + 5, 1), "ty": round(y + 14, 1),
    }  # fmt: skip


def _execution(execution: dict[str, Any], scale: _Scale, t1: datetime) -> dict[str, Any]:
    start = _time(execution["start"]) or scale.t0
    stop = _time(execution["stop"])
    x = scale.x(start)
    end_x = scale.x(stop or t1)
    status = execution.get("status") or ""
    return {
        "x": x, "w": max(3.0, round(end_x - x, 1)), "end_x": end_x, "y": AXIS_H, "h": EXEC_H,
        "status": status, "css": status_css(status), "running": stop is None,
        "failed": status in {"FAILED", "TIMED_OUT", "ABORTED"},
        "error": execution.get("error") or "", "cause": execution.get("cause") or "",
        "duration": duration_between(start, stop) if stop else "",
        "text_x": round(x + 8, 1), "text_y": AXIS_H + 16, "mark_y": AXIS_H + EXEC_H / 2,
        "err_x": round(end_x - 14, 1), "err_y": AXIS_H + EXEC_H + 16,
    }  # fmt: skip


def status_css(status: str | None) -> str:
    return {
        "RUNNING": "running", "SUCCEEDED": "succeeded", "FAILED": "failed",
        "TIMED_OUT": "failed", "ABORTED": "failed",
    }.get(status or "", "unknown")  # fmt: skip


def timeline_geometry(timeline: dict[str, Any]) -> dict[str, Any] | None:
    """Everything the timeline template draws, or None when the job has no times at all."""
    t0, t1 = _bounds(timeline)
    if t0 is None or t1 is None:
        return None
    if t1 <= t0:
        t1 = t0 + timedelta(seconds=1)
    scale = _Scale(t0, t1)
    spans = timeline["spans"]
    colours = _colour_keys(spans)
    top = AXIS_H + EXEC_H + 22
    groups, lane_y, bottom = _groups(spans, top)
    step = tick_step(scale.total_ms)
    ticks = [
        {"x": round(LABEL_W + ms / scale.total_ms * PLOT_W, 1), "label": tick_label(ms, step)}
        for ms in range(0, int(scale.total_ms) + 1, step)
    ]
    bars = [
        _bar(s, scale, lane_y[(s["fn_lane"], s["sub_lane"])], colours[_incoming_label(s)])
        for s in spans
    ]
    height = max(bottom, top) + 12
    return {
        "width": LABEL_W + PLOT_W + RIGHT_PAD, "height": height, "plot_right": LABEL_W + PLOT_W,
        "label_w": LABEL_W, "ticks": ticks, "groups": groups, "bars": bars,
        "execution": _execution(timeline["execution"], scale, t1),
        "legend": [{"label": key, "colour": index} for key, index in colours.items()],
        "t0": t0,
    }  # fmt: skip

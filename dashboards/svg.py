"""Geometry of the architecture picture, computed here and drawn by its template, and the
duration texts of the pages (pure).

The job timeline is drawn in the browser only (static/dashboards/timeline.js): zoom, pan and live
updates need its geometry there, so it is kept in that one place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .layout import layered_layout


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


def status_css(status: str | None) -> str:
    return {
        "RUNNING": "running", "SUCCEEDED": "succeeded", "FAILED": "failed",
        "TIMED_OUT": "failed", "ABORTED": "failed",
    }.get(status or "", "unknown")  # fmt: skip


# --- architecture ---------------------------------------------------------------------------

KIND_CSS = {"event": "event", "fn": "fn", "state_machine": "sm"}


def edge_label(edge: dict[str, Any]) -> str:
    label = f"×{edge['count']}"
    if edge.get("p95_ms") is not None:
        label += f" · p95 {human_ms(edge['p95_ms'])}"
    return label


def _hexagon(x: float, y: float, w: float, h: float) -> str:
    inset = 14
    points = [
        (x + inset, y), (x + w - inset, y), (x + w, y + h / 2),
        (x + w - inset, y + h), (x + inset, y + h), (x, y + h / 2),
    ]  # fmt: skip
    return " ".join(f"{px:.1f},{py:.1f}" for px, py in points)


def architecture_geometry(graph: dict[str, Any]) -> dict[str, Any]:
    """Node boxes and edge paths of the architecture picture, with their labels."""
    layout = layered_layout(graph["nodes"], graph["edges"])
    data = {node["id"]: node for node in graph["nodes"]}
    edges = {(edge["source"], edge["target"]): edge for edge in graph["edges"]}
    nodes = []
    for box in layout.nodes:
        node = data[box.id]
        nodes.append(
            {"id": box.id, "kind": KIND_CSS.get(node["kind"], "event"), "label": node["label"],
             "count": node["count"], "sink": node["sink"], "unknown": node["unknown"],
             "x": box.x, "y": box.y, "w": box.w, "h": box.h, "cx": box.cx, "cy": box.cy,
             "hexagon": _hexagon(box.x, box.y, box.w, box.h)}
        )  # fmt: skip
    paths = []
    for path in layout.edges:
        edge = edges[(path.source, path.target)]
        label = edge_label(edge)
        paths.append(
            {"d": path.d, "label": label, "lx": path.label_x, "ly": path.label_y,
             "label_w": round(len(label) * 6.4 + 12, 1),
             "label_x0": -round((len(label) * 6.4 + 12) / 2, 1), "back": path.back,
             "source": data[path.source]["label"], "target": data[path.target]["label"],
             "count": edge["count"], "p50": human_ms(edge.get("p50_ms")),
             "p95": human_ms(edge.get("p95_ms"))}
        )  # fmt: skip
    return {"width": layout.width, "height": layout.height, "nodes": nodes, "edges": paths}

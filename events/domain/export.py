"""A job as a download: its events as JSON, or its timeline as a Mermaid Gantt chart. Pure.

Event strings are hostile (a fn name or a detail-type may hold `:`, `#`, `;`, `%%` or a newline,
each of which ends or bends a Mermaid statement), so every text put in the chart keeps only
letters, digits, spaces and `. _ - ( ) /`, and every task name starts with its number, so that no
name can read as a Mermaid keyword (`section`, `click`, ...). File names never hold event text
either: a slug of the execution name and a hash of the job id.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from django.utils.text import slugify

from events.domain.clock import ms
from events.domain.envelope import parse_time
from events.domain.lanes import work_name

UNSAFE = re.compile(r"[^\w .()/-]+")
MAX_TEXT = 80


def export_filename(job_id: str, name: str, extension: str) -> str:
    """`edobs-<slug of the name>-<hash of the id>.<extension>`: safe in any header or disk."""
    slug = slugify(name)[:40].strip("-") or "job"
    digest = hashlib.sha256(job_id.encode("utf-8", "replace")).hexdigest()[:12]
    return f"edobs-{slug}-{digest}.{extension}"


def mermaid_text(value: Any) -> str:
    """`value` as text that cannot break a Mermaid statement; "-" when nothing is left."""
    text = " ".join(UNSAFE.sub(" ", str(value)).split())[:MAX_TEXT].strip()
    return text or "-"


def _ms(value: str | None) -> int | None:
    return ms(parse_time(value)) if value else None


def _task(index: int, span: dict[str, Any], chart_end: int) -> str:
    start = _ms(span["start"])
    end = _ms(span["end"]) or max(chart_end, start or 0)
    incoming = (span.get("incoming") or {}).get("detailType", "not observed")
    outgoing = (span.get("outgoing") or {}).get("detailType", "no answer")
    name = mermaid_text(f"{index + 1}. {incoming} to {outgoing}")
    tags = {"failed": "crit, ", "pending": "active, "}.get(span.get("status") or "", "")
    return f"    {name} :{tags}s{index}, {start}, {end}"


def mermaid_gantt(title: str, timeline: dict[str, Any]) -> str:
    """A Gantt chart of a timeline: one section per lane (fn, or `awaiting ...`), one task per
    span in epoch ms; failed spans tagged `crit`, pending ones `active` up to the chart's end."""
    spans = timeline["spans"]
    times = [_ms(t) for span in spans for t in (span["start"], span["end"])]
    times.append(_ms(timeline["execution"].get("stop")))
    chart_end = max((t for t in times if t is not None), default=0)
    lines = [
        "gantt",
        f"    title {mermaid_text(title)}",
        "    dateFormat x",
        "    axisFormat %H:%M:%S",
    ]
    sections: dict[str, list[str]] = {}
    for index, span in enumerate(spans):
        lane = work_name(span)  # not the state lane: a section per fn, as before
        sections.setdefault(mermaid_text(lane), []).append(_task(index, span, chart_end))
    for section, tasks in sections.items():
        lines.append(f"    section {section}")
        lines.extend(tasks)
    return "\n".join(lines) + "\n"

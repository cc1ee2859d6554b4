"""The compare page: two jobs of one state machine, step by step (DESIGN section 9, "Job view").

The comparison itself is events.domain.compare's, read through selectors like the API's
`/api/jobs/compare`; this module only picks the jobs and shapes the answer for the template.

A state machine is known by its name here, so the same workflow deployed in two accounts (staging
and production, say) can be compared; jobs of two different names cannot, and the page says so.
The picker offers the state machines and jobs of recent activity the user may see; a job named
in the URL that is unknown or belongs to another team is a 404, as on the job page.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from events.domain import compare, fleet
from events.domain.summary import JobSummary
from events.read import selectors

from .formatting import human_ms, skew_text, status_css

PICK_JOBS = 50  # a state machine's newest jobs offered in the picker
PICK_MACHINES_FROM = 200  # the newest jobs whose state machines the picker offers
VALUE_PREVIEW = 120  # characters of a changed field's value shown before "more"
MAX_FIELD_ROWS = 400  # changed fields listed; the rest are counted


def signed_ms(ms: int | None) -> str:
    """A difference for people, with its sign: "+412 ms", "−1.3 s", "±0 ms"."""
    if ms is None:
        return "—"
    if ms == 0:
        return "±0 ms"
    return ("+" if ms > 0 else "−") + human_ms(abs(ms))


def delta_css(ms: int | None) -> str:
    """B slower than A is worse: the class colours it (the sign says it too)."""
    if not ms:
        return "same"
    return "slower" if ms > 0 else "faster"


def _visible_job(user, job_id: str) -> JobSummary | None:
    """The job if the user may see it; None also for an id no job can have (a NUL, too long)."""
    return selectors.job_get(user=user, job_id=job_id)


def _named_jobs(request: HttpRequest) -> dict[str, JobSummary | None]:
    """The jobs `a` and `b` of the query; Http404 for a named one the user cannot see."""
    jobs: dict[str, JobSummary | None] = {}
    for side in ("a", "b"):
        job_id = request.GET.get(side, "").strip()
        jobs[side] = _visible_job(request.user, job_id) if job_id else None
        if job_id and jobs[side] is None:
            raise Http404("No such job")
    return jobs


def _duration(job: JobSummary) -> int | None:
    return fleet.duration_ms(job, datetime.now(UTC))


def _job_card(job: JobSummary) -> dict[str, Any]:
    ms = _duration(job)
    return {"job": job, "css": status_css(job.status), "duration": human_ms(ms), "ms": ms}


def _option(job: JobSummary, *, accounts: bool) -> dict[str, str]:
    when = job.started_at or job.first_event_at
    wall = when.strftime("%Y-%m-%d %H:%M:%S") if when else ""
    parts = [
        job.status or "UNKNOWN",
        wall or "no start seen",
        human_ms(_duration(job)),
        job.name if len(job.name) <= 40 else job.name[:39] + "…",
    ]
    if accounts:
        parts.append(job.account)
    # compare.js rewrites `wall` (UTC) in the label when the user chose local time
    return {"id": job.id, "label": " · ".join(parts), "start": when.isoformat() if when else "",
            "wall": wall}  # fmt: skip


def _partner(job: JobSummary, jobs: list[JobSummary]) -> JobSummary | None:
    """What to compare `job` with by default: the newest other job with the other outcome
    (last night's success for tonight's failure), else the newest other one."""
    return compare.partner(job, jobs)


def _picker(user, machine: str, named: dict[str, JobSummary | None]) -> dict[str, Any]:
    recent = selectors.job_list_latest(user=user, limit=PICK_MACHINES_FROM).items
    machines = sorted({job.state_machine for job in recent} | ({machine} if machine else set()))
    jobs: list[JobSummary] = []
    if machine:
        jobs = selectors.job_list_latest(user=user, limit=PICK_JOBS, state_machine=machine).items
    chosen = {side: job for side, job in named.items() if job and job.state_machine == machine}
    jobs = jobs + [job for job in chosen.values() if job.id not in {j.id for j in jobs}]
    b = chosen.get("b") or (_partner(chosen["a"], jobs) if "a" in chosen else None)
    b = b or (jobs[0] if jobs else None)
    a = chosen.get("a") or (_partner(b, jobs) if b else None)
    several_accounts = len({job.account for job in jobs}) > 1
    return {
        "machine": machine,
        "machines": machines,
        "limit": PICK_JOBS,
        "options": [_option(job, accounts=several_accounts) for job in jobs],
        "a": a.id if a else "",
        "b": b.id if b else "",
    }


def _value(value: Any) -> dict[str, Any]:
    """A changed field's value as JSON text, with a preview when it is long."""
    if value is None:
        return {"text": "", "absent": True}
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    long = len(text) > VALUE_PREVIEW
    return {"text": text, "preview": text[: VALUE_PREVIEW - 1] + "…" if long else text,
            "long": long, "absent": False}  # fmt: skip


def _side(span: dict[str, Any]) -> dict[str, Any]:
    skew = span.get("skew_ms")
    human = skew_text(skew) if skew else human_ms(span["duration_ms"])
    return {**span, "human": human, "css": span["status"]}


def _label(item: dict[str, Any], counts: dict[str, int]) -> str:
    """The step's work, and what it worked on when it repeats (a Map iteration's item)."""
    lane, n = item["lane"], item["n"]
    if item.get("item"):
        return f"{lane} · {item['item']}"
    return f"{lane} #{n + 1}" if counts.get(lane, 0) > 1 else lane


def _state(item: dict[str, Any]) -> dict[str, Any]:
    """The step's state and its colour, the same as on the job pages (events.domain.lanes)."""
    return {"name": item["state"], "colour": item["colour"]}


def _lone(step: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    return {**_side(step), "label": _label(step, counts), "state_chip": _state(step)}


def _totals(totals: dict[str, Any]) -> dict[str, Any]:
    """The summed steps for people: B − A of what could be summed, and what was left out."""
    return {**totals, "a": human_ms(totals["a_ms"]), "b": human_ms(totals["b_ms"]),
            "diff": signed_ms(totals["diff_ms"]),
            "diff_css": delta_css(totals["diff_ms"])}  # fmt: skip


def _pct(ms: int | None, longest: int) -> float:
    return round(100 * (ms or 0) / longest, 1) if longest else 0.0


def _rows(comparison: dict[str, Any]) -> dict[str, Any]:
    """Steps with their labels, deltas and paired bars; one-sided steps; changed fields."""
    steps, only_a, only_b = comparison["steps"], comparison["only_a"], comparison["only_b"]
    counts: dict[str, int] = {}
    for item in [*steps, *only_a, *only_b]:
        counts[item["lane"]] = max(counts.get(item["lane"], 0), item["n"] + 1)
    longest = max(
        [s[side]["duration_ms"] or 0 for s in steps for side in ("a", "b")]
        + [s["duration_ms"] or 0 for s in [*only_a, *only_b]]
        + [1]
    )
    rows, fields = [], []
    for step in steps:
        label = _label(step, counts)
        rows.append({
            "label": label, "lane": step["lane"], "a": _side(step["a"]), "b": _side(step["b"]),
            "state": _state(step), "why": step["why"],
            "diff": signed_ms(step["diff_ms"]), "diff_css": delta_css(step["diff_ms"]),
            "diff_ms": step["diff_ms"], "changed": len(step["fields"]),
            "bar_a": _pct(step["a"]["duration_ms"], longest),
            "bar_b": _pct(step["b"]["duration_ms"], longest),
        })  # fmt: skip
        for n, change in enumerate(step["fields"]):
            fields.append({"step": label, "path": change["path"], "a": _value(change["a"]),
                           "b": _value(change["b"]),
                           "rows": len(step["fields"]) if n == 0 else 0})  # fmt: skip
    return {
        "rows": rows,
        "only_a": [_lone(s, counts) for s in only_a],
        "only_b": [_lone(s, counts) for s in only_b],
        "totals": _totals(comparison["totals"]),
        "fields": fields[:MAX_FIELD_ROWS],
        "fields_left_out": max(0, len(fields) - MAX_FIELD_ROWS),
        "slower": sum(1 for row in rows if row["diff_css"] == "slower"),
        "faster": sum(1 for row in rows if row["diff_css"] == "faster"),
    }


def _total(a: JobSummary, b: JobSummary) -> dict[str, str]:
    ms_a, ms_b = _duration(a), _duration(b)
    diff = ms_b - ms_a if ms_a is not None and ms_b is not None else None
    return {"text": signed_ms(diff), "css": delta_css(diff)}


@login_required
def job_compare(request: HttpRequest) -> HttpResponse:
    named = _named_jobs(request)
    a, b = named["a"], named["b"]
    machine = request.GET.get("state_machine", "").strip()
    machine = (a or b).state_machine if (a or b) and not machine else machine
    context: dict[str, Any] = {"picker": _picker(request.user, machine, named), "nav": "compare"}
    if a is None or b is None:
        return render(request, "dashboards/compare.html", context)
    context.update(a=_job_card(a), b=_job_card(b))
    if a.state_machine != b.state_machine:
        context["mismatch"] = True
        return render(request, "dashboards/compare.html", context, status=400)
    comparison = selectors.job_compare(user=request.user, a=a, b=b)
    context.update(result=_rows(comparison), total=_total(a, b))
    return render(request, "dashboards/compare.html", context)

"""The job and architecture pages (home: jobs.py, events: event_search.py, state machines:
fleet.py). Thin: read through events.read.selectors, shape for the templates, render."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from events.domain import budgets, console, lanes, shapes
from events.domain.architecture_diff import architecture_diff, previous_period
from events.domain.causality import FAILURES
from events.domain.envelope import iso, parse_time
from events.domain.export import export_filename
from events.domain.summary import JobSummary
from events.read import fn_failures, selectors
from events.stores.base import Window

from .failures import job_failure_link
from .formatting import duration_between, human_ms, span_duration, status_css
from .params import page_number, when, with_query
from .timewindow import QUICK_RANGES

logger = logging.getLogger(__name__)

WINDOWS = QUICK_RANGES
WINDOW_CHOICES = [("15m", "Last 15 min"), ("1h", "Last hour"), ("24h", "Last 24 h"),
                  ("7d", "Last 7 days"), ("all", "Everything kept"),
                  ("custom", "Custom…")]  # fmt: skip
COMPARE_CHOICES = [("", "Nothing"), ("previous", "The previous period"), ("custom", "Custom…")]
# The job page's event table shows one page of a job's events (a job may hold 100,000 of about
# 20 KB): 100 rows, each at most EDOBS_PAGE_EVENT_BYTES of JSON, keep the table near 1 MB.
EVENTS_PAGE = 100


def _event_row(event) -> dict:
    """An event's row: at most EDOBS_PAGE_EVENT_BYTES of its pretty JSON, and its full URL."""
    pretty = json.dumps(shapes.normalised_event(event), indent=2, sort_keys=True)
    shown, cut = budgets.text_cut(pretty, settings.EDOBS_PAGE_EVENT_BYTES)
    return {
        "event": event,
        "pretty": shown,
        "cut": cut,
        "kb": max(1, round(len(pretty.encode("utf-8", "surrogatepass")) / 1024)),
        "full": budgets.event_url(event_id=event.id, account=event.account),
    }


def _wall(value: str | None) -> str:
    """`2026-11-20 09:01:54.123 UTC`: a span's start as the timeline's text alternative says it."""
    if not value:
        return "—"
    moment = parse_time(value).astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d} UTC"


def _span_keys(spans: list[dict]) -> list[str]:
    """The id each span is known by in `#span=` links, as timeline.js gives it (spanKeys): its
    answer, or its trigger while pending, suffixed when an answered span already has that id."""
    taken = {span["end_event"] for span in spans if span["end_event"]}
    keys = []
    for span in spans:
        key, n = span["end_event"] or span["start_event"] or "", 1
        while not span["end_event"] and key in taken:
            key = (span["start_event"] or "") + ":pending" + (str(n - 1) if n > 1 else "")
            n += 1
        taken.add(key)
        keys.append(key)
    return keys


def _failed_span(timeline: dict) -> dict | None:
    """The span the error box links to: what the execution waited for when it failed (the
    latest pending span), else the latest span running when it failed; with its state."""
    execution = timeline["execution"]
    if execution.get("status") not in FAILURES:
        return None
    spans = timeline["spans"]
    keys = _span_keys(spans)
    for status in ("pending", "failed"):
        found = [i for i, span in enumerate(spans) if span["status"] == status]
        if found:
            i = max(found, key=lambda i: (spans[i]["start"], i))
            span = spans[i]
            return {"key": keys[i], "state": span["state"] or span["step"],
                    "work": lanes.work_name(span)}  # fmt: skip
    return None


def _span_rows(timeline: dict) -> list[dict]:
    """The spans as rows of text: the timeline's text alternative (job.js keeps it live)."""
    return [
        {
            "key": span["end_event"] or span["start_event"],
            "state": span["state"] or "—",
            "lane": lanes.work_name(span),
            "start": _wall(span["start"]),
            "duration": "no answer" if span["status"] == "pending" else span_duration(span),
            "status": span["status"],
            "trigger": (span["incoming"] or {}).get("detailType", "(not observed)"),
            "answer": (span["outgoing"] or {}).get("detailType", "—"),
        }
        for span in timeline["spans"]
    ]


def _task_tokens(events) -> dict[str, str]:
    """Event id -> `detail.TaskToken`, for the timeline's tooltips."""
    tokens = {event.id: event.detail.get("TaskToken") for event in events}
    return {key: token[:300] for key, token in tokens.items() if isinstance(token, str) and token}


def _exports(job: JobSummary) -> list[dict]:
    url = reverse("api-job-export", kwargs={"job_id": job.id})
    return [
        {
            "label": label,
            "href": f"{url}?format={fmt}",
            "file": export_filename(job.id, job.name, ext),
        }
        for label, fmt, ext in (("JSON", "json", "json"), ("Mermaid", "mermaid", "mmd"))
    ]


def _events_offset(request: HttpRequest, events: list) -> int:
    """Where the shown page of events starts: the page holding `?event=<id>` (a span's event
    on another page), else `?page=N`."""
    wanted = request.GET.get("event")
    index = next((i for i, event in enumerate(events) if event.id == wanted), None)
    if index is None:
        index = (page_number(request) - 1) * EVENTS_PAGE
    return min(index, max(len(events) - 1, 0)) // EVENTS_PAGE * EVENTS_PAGE


def _events_paging(request: HttpRequest, offset: int, total: int) -> dict:
    """The event table's count ("101–200 of 1,500") and its previous/next links."""
    last = min(offset + EVENTS_PAGE, total)
    page = offset // EVENTS_PAGE + 1

    def link(number: int) -> str:
        return with_query(request, page=str(number), event=None) + "#events"

    return {
        "count_text": f"{offset + 1:,}–{last:,} of {total:,}" if total else "",
        "previous": link(page - 1) if offset else None,
        "next": link(page + 1) if last < total else None,
        "paged": total > EVENTS_PAGE,
    }


def _aws_links(job: JobSummary, timeline: dict) -> dict:
    """The execution in the Step Functions console, and per function a Logs Insights query for
    the execution's trace token over its run: plain links, only from a real execution ARN."""
    start = job.started_at or job.first_event_at
    end = job.stopped_at or job.last_event_at
    functions = sorted({span["fn"] for span in timeline["spans"] if span.get("fn")})
    logs = {fn: console.logs_insights_url(job.execution_arn, fn, start, end) for fn in functions}
    return {
        "console": console.execution_url(job.execution_arn),
        "logs": {fn: url for fn, url in logs.items() if url},
    }


def _parent(request: HttpRequest, job) -> dict | None:
    """The job that started this one: its id, and whether the user can open it (a parent in
    an account the user does not see is named, never linked)."""
    if not job.parent:
        return None
    found = selectors.job_get(user=request.user, job_id=job.parent)
    return {"id": job.parent, "known": found is not None}


@login_required
def job_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    job = selectors.job_get(user=request.user, job_id=job_id)
    if job is None:
        raise Http404("No such job")
    events = selectors.job_event_list(user=request.user, job=job)
    timeline = selectors.job_timeline(user=request.user, job=job)
    offset = _events_offset(request, events)
    job = selectors.with_map_run(user=request.user, job=job)
    map_runs, nested = selectors.job_children(user=request.user, job=job)
    context = {
        "job": job,
        "css": status_css(job.status),
        "duration": duration_between(
            job.started_at or job.first_event_at, job.stopped_at or job.last_event_at
        ),
        "events": [_event_row(event) for event in events[offset : offset + EVENTS_PAGE]],
        "event_total": len(events),
        "events_paging": _events_paging(request, offset, len(events)),
        "timeline": timeline,
        "span_rows": _span_rows(timeline),
        "tokens": _task_tokens(events),
        "exports": _exports(job),
        "job_json": shapes.job_summary(job),
        "replay_of": shapes.job_replay_of(job),
        "replay_bus": settings.EDOBS_BUS_NAME,
        "span_count": len(timeline["spans"]),
        "failed_span": _failed_span(timeline),
        "similar": job_failure_link(user=request.user, job=job, spans=timeline["spans"]),
        "health": selectors.job_health(user=request.user, jobs=[job])[job.id],
        "parent": _parent(request, job),
        "aws": _aws_links(job, timeline),
        "map_runs": [
            {**run, "query": urlencode({"map_run": run["state_machine"]})} for run in map_runs
        ],
        "nested": nested,
        "map_run_query": urlencode({"map_run": job.state_machine}) if job.map_run else "",
        "nav": "home",
    }
    return render(request, "dashboards/job.html", context)


def _arch_window(request: HttpRequest, errors: list[str]) -> tuple[str, Window]:
    choice = request.GET.get("window", "24h")
    machine = request.GET.get("state_machine", "").strip() or None
    if choice in WINDOWS:
        since = datetime.now(UTC) - WINDOWS[choice]
        return choice, Window(since=since, state_machine=machine)
    if choice == "custom":
        since = when(request.GET.get("since", ""), "since", errors)
        until = when(request.GET.get("until", ""), "until", errors)
        return choice, Window(since=since, until=until, state_machine=machine)
    return "all", Window(state_machine=machine)


def _base_window(request: HttpRequest, window: Window, errors: list[str]) -> Window | None:
    """The window to compare with (`compare=previous` or `custom`), or None."""
    compare = request.GET.get("compare", "")
    if compare not in ("previous", "custom"):
        return None
    now = datetime.now(UTC)
    since = window.since or now - timedelta(hours=settings.EDOBS_RETENTION_HOURS)
    base_since, base_until = previous_period(since, window.until or now)
    if compare == "custom":
        base_since = when(request.GET.get("base_since", ""), "compare since", errors) or base_since
        base_until = when(request.GET.get("base_until", ""), "compare until", errors) or base_until
    if base_since >= base_until:
        errors.append("compare since: must be before compare until")
        return None
    return Window(since=base_since, until=base_until, state_machine=window.state_machine)


def _arch_data(graph: dict, diff: dict | None, base: Window | None) -> dict:
    """What static/dashboards/architecture.js draws (json_script escapes it for the page)."""
    base_range = {"since": iso(base.since), "until": iso(base.until)} if base else None
    return {"graph": graph, "diff": diff, "base": base_range}


def _edge_rows(graph: dict) -> list[dict]:
    """The edges as table rows (the page's text alternative to the picture)."""
    labels = {node["id"]: node["label"] for node in graph["nodes"]}
    return [
        {"from": labels[edge["source"]], "to": labels[edge["target"]], "count": edge["count"],
         "p50": human_ms(edge["p50_ms"]), "p95": human_ms(edge["p95_ms"])}
        for edge in graph["edges"]
    ]  # fmt: skip


def _arch_graph(request: HttpRequest, window: Window) -> dict:
    graph = selectors.architecture_graph(user=request.user, window=window)
    graph = selectors.architecture_drift(user=request.user, graph=graph, window=window)
    return fn_failures.architecture_with_failures(user=request.user, graph=graph, window=window)


@login_required
def architecture(request: HttpRequest) -> HttpResponse:
    errors: list[str] = []
    choice, window = _arch_window(request, errors)
    invalid = bool(errors)  # a window that could not be read: no graph rather than all time's
    graph = _arch_graph(request, window) if not invalid else {"nodes": [], "edges": []}
    base = _base_window(request, window, errors)
    diff = None
    if base is not None and not invalid:
        diff = architecture_diff(
            graph=graph, base=selectors.architecture_graph(user=request.user, window=base)
        )
    machines = sorted(
        {node["label"] for node in graph["nodes"] if node["kind"] == "state_machine"}
        | ({window.state_machine} if window.state_machine else set())
    )
    context = {
        "data": _arch_data(graph, diff, base),
        "graph": graph,
        "edge_rows": _edge_rows(graph),
        "diff": diff,
        "base": base,
        "choice": choice,
        "choices": WINDOW_CHOICES,
        "compare": request.GET.get("compare", "") if base else "",
        "compare_choices": COMPARE_CHOICES,
        "since": request.GET.get("since", ""),
        "until": request.GET.get("until", ""),
        "base_since": request.GET.get("base_since", ""),
        "base_until": request.GET.get("base_until", ""),
        "state_machine": window.state_machine or "",
        "machines": machines,
        "errors": errors,
        "invalid": invalid,
        "sinks": sum(1 for node in graph["nodes"] if node["sink"]),
        "unknowns": sum(1 for node in graph["nodes"] if node["unknown"]),
        "nav": "architecture",
    }
    return render(request, "dashboards/architecture.html", context)

"""The pages. Thin: read through events.selectors, shape for the templates, render."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from events import budgets, selectors
from events.api import shapes
from events.architecture_diff import architecture_diff, previous_period
from events.envelope import MalformedEvent, iso, parse_time
from events.stores.base import Window
from events.summary import JobSummary

from .svg import duration_between, human_ms, status_css, timeline_geometry

logger = logging.getLogger(__name__)

STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
HOME_LIMIT = 50
EVENTS_LIMIT = 200
WINDOWS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "24h": timedelta(hours=24)}
WINDOW_CHOICES = [("15m", "Last 15 min"), ("1h", "Last hour"), ("24h", "Last 24 h"),
                  ("all", "Everything kept"), ("custom", "Custom…")]  # fmt: skip
COMPARE_CHOICES = [("", "Nothing"), ("previous", "The previous period"), ("custom", "Custom…")]


def _job_row(job: JobSummary) -> dict:
    latest = job.latest
    return {
        "job": job,
        "css": status_css(job.status),
        "duration": duration_between(
            job.started_at or job.first_event_at, job.stopped_at or job.last_event_at
        ),
        "latest_type": latest.detail_type if latest else "",
        "latest_time": latest.time if latest else None,
    }


def _live_job(job: JobSummary) -> dict:
    data = shapes.job_summary(job)
    data["latest_type"] = job.latest.detail_type if job.latest else None
    return data


@login_required
def home(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    machine = request.GET.get("state_machine", "").strip()
    page = selectors.job_list_latest(
        user=request.user, limit=HOME_LIMIT, status=status or None, state_machine=machine or None
    )
    context = {
        "rows": [_job_row(job) for job in page.items],
        "jobs_json": [_live_job(job) for job in page.items],
        "filters": {"status": status, "state_machine": machine},
        "statuses": STATUSES,
        "limit": HOME_LIMIT,
        "nav": "home",
    }
    return render(request, "dashboards/home.html", context)


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


@login_required
def job_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    job = selectors.job_get(user=request.user, job_id=job_id)
    if job is None:
        raise Http404("No such job")
    events = selectors.job_event_list(user=request.user, job=job)
    timeline = selectors.job_timeline(user=request.user, job=job)
    context = {
        "job": job,
        "css": status_css(job.status),
        "duration": duration_between(
            job.started_at or job.first_event_at, job.stopped_at or job.last_event_at
        ),
        "events": [_event_row(event) for event in events],
        "geometry": timeline_geometry(timeline),
        "timeline": timeline,
        "job_json": shapes.job_summary(job),
        "span_count": len(timeline["spans"]),
        "nav": "home",
    }
    return render(request, "dashboards/job.html", context)


def _when(value: str, name: str, errors: list[str]) -> datetime | None:
    """A datetime from an ISO string or a `datetime-local` input (taken as UTC)."""
    if not value:
        return None
    try:
        parsed = parse_time(value, name)
    except MalformedEvent:
        errors.append(f"{name}: not a date and time")
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _arch_window(request: HttpRequest, errors: list[str]) -> tuple[str, Window]:
    choice = request.GET.get("window", "24h")
    machine = request.GET.get("state_machine", "").strip() or None
    if choice in WINDOWS:
        since = datetime.now(UTC) - WINDOWS[choice]
        return choice, Window(since=since, state_machine=machine)
    if choice == "custom":
        since = _when(request.GET.get("since", ""), "since", errors)
        until = _when(request.GET.get("until", ""), "until", errors)
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
        base_since = _when(request.GET.get("base_since", ""), "compare since", errors) or base_since
        base_until = _when(request.GET.get("base_until", ""), "compare until", errors) or base_until
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


@login_required
def architecture(request: HttpRequest) -> HttpResponse:
    errors: list[str] = []
    choice, window = _arch_window(request, errors)
    graph = selectors.architecture_graph(user=request.user, window=window)
    base = _base_window(request, window, errors)
    diff = None
    if base is not None:
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
        "sinks": sum(1 for node in graph["nodes"] if node["sink"]),
        "unknowns": sum(1 for node in graph["nodes"] if node["unknown"]),
        "nav": "architecture",
    }
    return render(request, "dashboards/architecture.html", context)


EVENT_FILTERS = ("source", "detail_type", "account", "job", "fn")


@login_required
def event_list(request: HttpRequest) -> HttpResponse:
    errors: list[str] = []
    values = {name: request.GET.get(name, "").strip() for name in EVENT_FILTERS}
    text = request.GET.get("q", "").strip()
    window = Window(
        since=_when(request.GET.get("since", ""), "since", errors),
        until=_when(request.GET.get("until", ""), "until", errors),
        limit=EVENTS_LIMIT + 1,
        **{name: value or None for name, value in values.items()},
    )
    found = selectors.event_search(user=request.user, window=window, text=text)
    context = {
        "events": [_event_row(event) for event in found[:EVENTS_LIMIT]],
        "more": len(found) > EVENTS_LIMIT,
        "limit": EVENTS_LIMIT,
        "filters": values,
        "q": text,
        "since": request.GET.get("since", ""),
        "until": request.GET.get("until", ""),
        "errors": errors,
        "nav": "events",
    }
    return render(request, "dashboards/events.html", context)

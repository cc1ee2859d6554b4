"""A state machine's page: its jobs per time bucket over a chosen window (started, succeeded,
failed, p50/p95 duration, failures by error), drawn with Chart.js, with the same numbers as
tables, and links to its failed and stuck jobs. Reads through events.read.selectors only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from events.domain import fleet
from events.domain.envelope import iso
from events.domain.maprun import is_map_child
from events.read import selectors
from events.stores.base import JobFilter

from .params import when
from .timewindow import QUICK_RANGES

WINDOWS = QUICK_RANGES
WINDOW_CHOICES = [("15m", "Last 15 min"), ("1h", "Last hour"), ("24h", "Last 24 h"),
                  ("7d", "Last 7 days"), ("custom", "Custom…")]  # fmt: skip
# Bucket sizes, smallest first: a window gets the smallest that gives at most MAX_BUCKETS.
BUCKETS = [(text, fleet.parse_bucket(text)) for text in ("1m", "5m", "15m", "1h", "6h", "1d", "7d")]
MAX_BUCKETS = 72
JOB_LINKS = 20


def pick_bucket(since: datetime, until: datetime) -> tuple[str, timedelta]:
    span = until - since
    for text, size in BUCKETS:
        if span / size <= MAX_BUCKETS:
            return text, size
    return BUCKETS[-1]


def _window(request: HttpRequest, errors: list[str]) -> tuple[str, datetime, datetime]:
    now = datetime.now(UTC)
    choice = request.GET.get("window", "24h")
    if choice == "custom":
        since = when(request.GET.get("since", ""), "since", errors) or now - WINDOWS["24h"]
        until = when(request.GET.get("until", ""), "until", errors) or now
        if until <= since:
            errors.append("until must be after since")
            since, until = until - WINDOWS["24h"], until
        if until - since > BUCKETS[-1][1] * fleet.MAX_BUCKETS:  # the metrics refuse it
            longest = (BUCKETS[-1][1] * fleet.MAX_BUCKETS).days
            raise BadRequest(f"since/until: a window is at most {longest} days")
        return choice, since, until
    choice = choice if choice in WINDOWS else "24h"
    return choice, now - WINDOWS[choice], now


def _chart_data(name: str, answer: dict, bucket: str) -> dict:
    return {
        "state_machine": name, "bucket": bucket,
        "buckets": [{**row, "start": iso(row["start"]), "end": iso(row["end"])}
                    for row in answer["buckets"]],
        "total": answer["total"],
    }  # fmt: skip


def _job_lists(request: HttpRequest, name: str) -> dict:
    failed = selectors.job_list_latest(
        user=request.user, limit=JOB_LINKS,
        filters=JobFilter(state_machine=name, statuses=tuple(sorted(fleet.FAILED_STATUSES))),
    )  # fmt: skip
    stuck, health = selectors.job_list_health(
        user=request.user, limit=JOB_LINKS, filters=JobFilter(state_machine=name), stuck=True
    )
    # A Map Run's children are listed one by one only under `map_run` (the home page groups them).
    key = "map_run" if is_map_child(name) else "state_machine"
    return {
        "failed_jobs": failed.items,
        "stuck_jobs": [(job, health[job.id]) for job in stuck.items],
        "failed_link": "/?" + urlencode([(key, name), *(
            ("status", s) for s in sorted(fleet.FAILED_STATUSES))]),
        "stuck_link": "/?" + urlencode({key: name, "stuck": "1"}),
    }  # fmt: skip


@login_required
def state_machine(request: HttpRequest, name: str) -> HttpResponse:
    errors: list[str] = []
    choice, since, until = _window(request, errors)
    context = {
        "name": name, "choice": choice, "choices": WINDOW_CHOICES, "errors": errors,
        "since": request.GET.get("since", ""), "until": request.GET.get("until", ""),
        "nav": "home",
    }  # fmt: skip
    known = selectors.job_list_latest(user=request.user, limit=1, state_machine=name).items
    if not known:
        return render(request, "dashboards/state_machine.html", context, status=404)
    bucket, size = pick_bucket(since, until)
    answer = selectors.state_machine_metrics(
        user=request.user, state_machine=name, since=since, until=until, bucket=size
    )
    context.update(
        known=True, bucket=bucket, window_since=since, window_until=until,
        chart=_chart_data(name, answer, bucket), rows=answer["buckets"],
        total=answer["total"], **_job_lists(request, name),
    )  # fmt: skip
    return render(request, "dashboards/state_machine.html", context)

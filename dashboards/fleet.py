"""A state machine's page: its jobs per time bucket over a chosen window (started, succeeded,
failed, failure rate, p50/p95/p99 duration, failures by error), drawn with Chart.js, with the
same numbers as tables, and links to its failed and stuck jobs. Each bucket links to its jobs
on the home page (the jobs active in the bucket; its failed ones from a failure bar).
state_machine.js keeps it up to date from GET /api/state-machines/<name>/metrics.
Reads through events.read.selectors only."""

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

from .formatting import human_ms
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


def _list_key(name: str) -> str:
    # A Map Run's children are listed one by one only under `map_run` (the home page groups them).
    return "map_run" if is_map_child(name) else "state_machine"


def _local(moment: datetime) -> str:
    """The home page's `since`/`until` form value: UTC, as a datetime-local input holds it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def jobs_link(name: str, start: datetime, end: datetime, *, failed: bool = False) -> str:
    """The home page's list of this state machine's jobs active in [start, end)."""
    query = [(_list_key(name), name), ("since", _local(start)), ("until", _local(end))]
    if failed:
        query += [("status", s) for s in sorted(fleet.FAILED_STATUSES)]
    return "/?" + urlencode(query)


def percent(rate: float | None) -> str:
    if rate is None:
        return "—"
    shown = rate * 100
    return f"{shown:.0f} %" if shown == 0 or shown >= 10 else f"{shown:.1f} %"


def _chart_data(name: str, answer: dict, bucket: str, live_ms: int | None) -> dict:
    """What state_machine.js draws, and how it reads the same numbers again (`live_ms`: the
    window's length when it ends now, so a refresh moves it; None for a fixed window)."""
    return {
        "state_machine": name, "bucket": bucket, "live_ms": live_ms,
        "list_key": _list_key(name), "failed_statuses": sorted(fleet.FAILED_STATUSES),
        "buckets": [{**row, "start": iso(row["start"]), "end": iso(row["end"])}
                    for row in answer["buckets"]],
        "total": answer["total"],
    }  # fmt: skip


def _rows(name: str, buckets: list[dict]) -> list[dict]:
    return [
        {**row, "failure_pct": percent(row["failure_rate"]),
         "link": jobs_link(name, row["start"], row["end"]),
         "failed_link": jobs_link(name, row["start"], row["end"], failed=True)}
        for row in buckets
    ]  # fmt: skip


def _totals(total: dict) -> dict:
    """The totals in the units the charts' axes use (human durations, percent)."""
    return {**total, "failure_pct": percent(total["failure_rate"]),
            **{key: human_ms(total[key]) for key in ("p50_ms", "p95_ms", "p99_ms")}}  # fmt: skip


def _job_lists(request: HttpRequest, name: str) -> dict:
    failed = selectors.job_list_latest(
        user=request.user, limit=JOB_LINKS,
        filters=JobFilter(state_machine=name, statuses=tuple(sorted(fleet.FAILED_STATUSES))),
    )  # fmt: skip
    stuck, health = selectors.job_list_health(
        user=request.user, limit=JOB_LINKS, filters=JobFilter(state_machine=name), stuck=True
    )
    key = _list_key(name)
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
    if errors:  # a window that could not be read: no numbers rather than another window's
        context.update(known=True, invalid=True)
        return render(request, "dashboards/state_machine.html", context)
    bucket, size = pick_bucket(since, until)
    answer = selectors.state_machine_metrics(
        user=request.user, state_machine=name, since=since, until=until, bucket=size
    )
    live_ms = None if choice == "custom" else (until - since) // timedelta(milliseconds=1)
    context.update(
        known=True, bucket=bucket, window_since=since, window_until=until,
        chart=_chart_data(name, answer, bucket, live_ms), rows=_rows(name, answer["buckets"]),
        total=_totals(answer["total"]), **_job_lists(request, name),
    )  # fmt: skip
    return render(request, "dashboards/state_machine.html", context)

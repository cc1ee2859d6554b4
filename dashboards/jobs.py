"""The home page: the jobs, filtered, sorted and paged, with a strip of state machine sparklines.

Reads through events.read.listing and events.read.selectors; home.js keeps the rows up to date in
place.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from events.domain import shapes
from events.domain.envelope import iso
from events.domain.summary import JobSummary
from events.read import listing, selectors
from events.stores.base import JobFilter

from .formatting import duration_between, human_ms, status_css
from .params import page_number, paging, sort_columns
from .timewindow import QUICK_RANGES, since_until

STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "UNKNOWN"]
PAGE_SIZE = 50
SPARK_MACHINES = 8
SPARK_HOURS = 24
NARROW = (
    "To reach them, narrow the filters: a status, a state machine, a duration or a shorter "
    "Active since–until range."
)
COLUMNS = [("state_machine", "State machine"), ("status", "Status"), ("started", "Started (UTC)"),
           ("duration", "Duration"), ("events", "Events"), ("last", "Last activity")]  # fmt: skip


def _seconds_ms(value: str, name: str, errors: list[str]) -> int | None:
    if not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 10**9:
        errors.append(f"{name}: a number of seconds, e.g. 0.5 or 30")
        return None
    return round(seconds * 1000)


def _query(request: HttpRequest, errors: list[str]) -> tuple[listing.JobQuery, dict]:
    get = request.GET
    statuses = [s for s in get.getlist("status") if s in STATUSES]
    form = {
        "statuses": statuses, "state_machine": get.get("state_machine", "").strip(),
        "stuck": get.get("stuck") == "1", "min_duration": get.get("min_duration", ""),
        "max_duration": get.get("max_duration", ""), "since": get.get("since", ""),
        "until": get.get("until", ""), "map_run": get.get("map_run", "").strip(),
        "window": get.get("window", "") if get.get("window") in QUICK_RANGES else "",
    }  # fmt: skip
    since, until = since_until(request, errors)
    filters = JobFilter(
        statuses=tuple(statuses),
        min_duration_ms=_seconds_ms(form["min_duration"], "min duration", errors),
        max_duration_ms=_seconds_ms(form["max_duration"], "max duration", errors),
    )
    query = listing.JobQuery(
        filters=filters, state_machine=form["state_machine"], stuck=form["stuck"],
        since=since, until=until,
        sort=get.get("sort", "-last"), map_run=form["map_run"],
    )  # fmt: skip
    form["active"] = any(form[k] for k in form if k != "statuses") or bool(statuses)
    return query, form


def _row(job: JobSummary, health) -> dict:
    latest = job.latest
    start, stop = job.started_at or job.first_event_at, job.stopped_at or job.last_event_at
    known = health.duration_ms is not None
    return {
        "job": job,
        "css": status_css(job.status),
        "health": health,
        "duration": human_ms(health.duration_ms) if known else duration_between(start, stop),
        "latest_type": latest.detail_type if latest else "",
        "map_run_query": urlencode({"map_run": job.state_machine}) if job.map_run else "",
    }


def sparklines(*, user, now: datetime) -> list[dict]:
    """Started and failed jobs per hour over the last day, per recently active state machine."""
    since = (now - timedelta(hours=SPARK_HOURS)).replace(minute=0, second=0, microsecond=0)
    out = []
    for name in listing.state_machine_names(user=user, limit=SPARK_MACHINES):
        metrics = selectors.state_machine_metrics(
            user=user, state_machine=name, since=since, until=now, bucket=timedelta(hours=1)
        )
        buckets = metrics["buckets"]
        out.append({
            "name": name, "started": [b["started"] for b in buckets],
            "failed": [b["failed"] for b in buckets], "total": metrics["total"],
        })  # fmt: skip
    return out


@login_required
def home(request: HttpRequest) -> HttpResponse:
    errors: list[str] = []
    query, form = _query(request, errors)
    now = datetime.now(UTC)
    page = page_number(request)
    offset = (page - 1) * PAGE_SIZE
    # A filter that could not be read is not dropped: no rows rather than unfiltered ones.
    found, health = (listing.Listing([], 0, False, offset, PAGE_SIZE), {}) if errors else (
        listing.job_listing(
            user=request.user, query=query, offset=offset, limit=PAGE_SIZE, now=now
        )
    )  # fmt: skip
    jobs = found.items
    live = {
        "now": iso(now), "statuses": form["statuses"], "state_machine": form["state_machine"],
        "stuck": form["stuck"], "invalid": bool(errors),
        "min_duration_ms": query.filters.min_duration_ms,
        "max_duration_ms": query.filters.max_duration_ms, "map_run": form["map_run"],
        "jobs": [shapes.job_summary(job, health[job.id]) for job in jobs],
    }  # fmt: skip
    context = {
        "rows": [_row(job, health[job.id]) for job in jobs],
        "live": live,
        "form": form,
        "errors": errors,
        "statuses": STATUSES,
        "columns": sort_columns(
            request, COLUMNS, listing.sort_key(query.sort, listing.JOB_SORTS, "-last")
        ),
        "paging": paging(request, found, noun="matching jobs", narrow=NARROW),
        "sparks": sparklines(user=request.user, now=now),
        "nav": "home",
    }
    return render(request, "dashboards/home.html", context)

"""The failures page: failed and timed-out jobs grouped by state machine, failed state, error and
normalised cause (events.domain.failures), most failures first, each with its first and last
failure, count, a trend drawn here as an SVG polyline, sample jobs and links to search them.
`?group=<id>` shows one group (the job page's error box links there)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from events.domain import failures
from events.domain.envelope import iso
from events.domain.summary import JobSummary
from events.read import failures as failure_reads

from .params import when

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
WINDOW_CHOICES = [("1h", "Last hour"), ("24h", "Last 24 h"), ("7d", "Last 7 days"),
                  ("custom", "Custom…")]  # fmt: skip
TREND_BUCKETS = 24
SPARK_WIDTH, SPARK_HEIGHT = 120, 28
LOOKBACK = timedelta(hours=24)  # the job page counts its group over a day


def sparkline_points(counts: list[int], *, width: int = SPARK_WIDTH,
                     height: int = SPARK_HEIGHT) -> str:  # fmt: skip
    """SVG polyline points for counts, left to right, the highest touching the top (1 px in)."""
    top = max(counts, default=0) or 1
    step = width / max(len(counts) - 1, 1)
    return " ".join(
        f"{n * step:.1f},{height - 1 - (count / top) * (height - 2):.1f}"
        for n, count in enumerate(counts)
    )


def _window(request: HttpRequest, errors: list[str]) -> tuple[str, datetime, datetime]:
    now = datetime.now(UTC)
    choice = request.GET.get("window", "24h")
    if choice == "custom":
        until = when(request.GET.get("until", ""), "until", errors) or now
        since = when(request.GET.get("since", ""), "since", errors) or until - WINDOWS["24h"]
        if until <= since:
            errors.append("until must be after since")
            since = until - WINDOWS["24h"]
        return choice, since, until
    choice = choice if choice in WINDOWS else "24h"
    return choice, now - WINDOWS[choice], now


def _row(group: failures.Group, since: str, until: str) -> dict:
    search = failures.search_query(group, since=since, until=until)
    jobs = failures.jobs_query(group, since=since, until=until)
    return {
        "group": group,
        "points": sparkline_points(group.trend),
        "trend_text": ", ".join(str(n) for n in group.trend),
        "search": reverse("events") + "?" + urlencode(search),
        "jobs": reverse("home") + "?" + urlencode(jobs),
    }


@login_required
def failure_list(request: HttpRequest) -> HttpResponse:
    errors: list[str] = []
    choice, since, until = _window(request, errors)
    wanted = request.GET.get("group", "").strip()
    state_machine = request.GET.get("state_machine", "").strip()
    found = failure_reads.failure_groups(
        user=request.user, since=since, until=until, state_machine=state_machine or None,
        trend_buckets=TREND_BUCKETS,
    )  # fmt: skip
    groups = [g for g in found.groups if not wanted or g.id == wanted]
    texts = {"since": iso(since), "until": iso(until)}
    context = {
        "rows": [_row(group, **texts) for group in groups],
        "found": found, "cap": failure_reads.FAILURE_JOBS, "group": wanted,
        "state_machine": state_machine, "choice": choice, "choices": WINDOW_CHOICES,
        "window_since": since, "window_until": until,
        "since": request.GET.get("since", ""), "until": request.GET.get("until", ""),
        "all_link": "?" + urlencode({k: v for k, v in request.GET.items() if k != "group"}),
        "bucket_minutes": round((until - since).total_seconds() / 60 / TREND_BUCKETS),
        "errors": errors, "nav": "failures",
    }  # fmt: skip
    return render(request, "dashboards/failures.html", context)


def job_failure_link(*, user, job: JobSummary, spans: list[dict]) -> dict | None:
    """For the job page's error box: "N similar failures", linked to its group over the last
    day (for an older failure, the day up to it); the failures page gets the same window, so
    the counts agree."""
    if job.status not in failures.FAILED_STATUSES:
        return None
    until = datetime.now(UTC)
    if failure_reads.failed_at(job) < until - LOOKBACK:  # an old failure: the day up to it
        until = failure_reads.failed_at(job) + timedelta(seconds=1)
    since = until - LOOKBACK
    state = failures.failed_state(spans, job.status)
    found = failure_reads.similar_failures(user=user, job=job, state=state, since=since,
                                           until=until)  # fmt: skip
    if found is None:
        return None
    group, count, capped = found
    query = {"window": "custom", "since": iso(since), "until": iso(until), "group": group,
             "state_machine": job.state_machine}  # fmt: skip
    return {"count": count, "capped": capped, "href": reverse("failures") + "?" + urlencode(query)}

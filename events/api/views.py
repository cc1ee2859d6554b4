"""Thin DRF views: parse the request, call a selector, shape the answer.

Every answer an endpoint can give is in its schema: 200 with the serializer that describes it,
400 for a parameter it refuses, 401/403 without a login, 404 for an unknown job; all errors in
the one shape `{"error": "..."}`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.api import serializers
from events.api.params import (
    ACCOUNT,
    BUDGET_NOTE,
    CURSOR,
    DATE_TIME,
    EVENT,
    JOB,
    LIMIT,
    account_param,
    answers,
    event_or_404,
    job_or_404,
    limit_param,
    page_response,
    text_param,
    time_param,
)  # fmt: skip
from events.domain import shapes
from events.domain.summary import JobSummary
from events.ingest.health import health_report
from events.read import fn_failures, selectors
from events.read.job_events import job_event_page_in_order
from events.stores.base import JobFilter, Window


def _latest_within(job: JobSummary) -> dict:
    item = shapes.original_latest_item(job)
    if job.latest is None:
        return item
    return shapes.original_item_within(
        item, event_id=job.latest.id, account=job.latest.account,
        limit=settings.EDOBS_API_EVENT_BYTES,
    )  # fmt: skip


def _original_within(event, item: dict) -> dict:
    return shapes.original_item_within(
        item, event_id=event.id, account=event.account, limit=settings.EDOBS_API_EVENT_BYTES
    )


class LatestView(APIView):
    @extend_schema(
        summary="Latest jobs in the original design's shape",
        description="The keys stay; big detail fields are cut." + BUDGET_NOTE,
        parameters=[LIMIT],
        responses=answers(serializers.OriginalLatestSerializer, 400),
    )
    def get(self, request: Request) -> Response:
        page = selectors.job_list_latest(
            user=request.user, limit=limit_param(request, 100), group_map_runs=True
        )
        return Response({"latest": [_latest_within(job) for job in page.items]})


class OriginalJobView(APIView):
    @extend_schema(
        summary="A job's events in the original design's shape",
        description="The keys stay; big detail fields are cut." + BUDGET_NOTE,
        parameters=[JOB], responses=answers(serializers.OriginalJobSerializer, 404),
    )  # fmt: skip
    def get(self, request: Request, job_id: str) -> Response:
        job = job_or_404(request, job_id)
        events = selectors.job_event_list(user=request.user, job=job)
        items = zip(events, shapes.original_event_items(events), strict=True)
        return Response({"events": [_original_within(event, item) for event, item in items]})


STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE", "UNKNOWN")
STATUS_CHOICES = [*STATUSES, *(status.lower() for status in STATUSES)]
MAX_DURATION_MS = 10**11  # about three years: far beyond any retention


def _duration(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]{1,12}", value, re.ASCII) or int(value) > MAX_DURATION_MS:
        raise ValidationError({name: f"must be a whole number of ms from 0 to {MAX_DURATION_MS}"})
    return int(value)


def _statuses(request: Request) -> tuple[str, ...]:
    values = request.query_params.getlist("status")
    for value in values:
        if value not in STATUS_CHOICES:
            raise ValidationError({"status": f"must be one of {', '.join(STATUSES)}"})
    return tuple(sorted({value.upper() for value in values}))


def _job_filter(request: Request) -> JobFilter:
    filters = JobFilter(
        statuses=_statuses(request),
        state_machine=text_param(request, "state_machine") or None,
        min_duration_ms=_duration(request, "min_duration_ms"),
        max_duration_ms=_duration(request, "max_duration_ms"),
    )
    low, high = filters.min_duration_ms, filters.max_duration_ms
    if low is not None and high is not None and low > high:
        raise ValidationError({"min_duration_ms": "must not be over max_duration_ms"})
    return filters


def _stuck(request: Request) -> bool:
    value = request.query_params.get("stuck", "0")
    if value not in ("0", "1"):
        raise ValidationError({"stuck": "must be 1 (only stuck jobs) or 0"})
    return value == "1"


class JobListView(APIView):
    @extend_schema(
        summary="Job summaries, newest activity first, with their duration and stuck verdict",
        parameters=[
            LIMIT, CURSOR,
            OpenApiParameter(
                "status", {"type": "array", "items": {"type": "string", "enum": STATUS_CHOICES}},
                explode=True, description="any of these (repeat it); UNKNOWN: none seen",
            ),
            OpenApiParameter("state_machine", OpenApiTypes.STR),
            OpenApiParameter(
                "stuck", {"type": "string", "enum": ["0", "1"]},
                description="1: only stuck jobs (a page may come back short, with a cursor)",
            ),
            OpenApiParameter(
                "min_duration_ms", {"type": "integer", "minimum": 0, "maximum": MAX_DURATION_MS},
                description="at least this long (ms); leaves out jobs of unknown duration",
            ),
            OpenApiParameter(
                "max_duration_ms", {"type": "integer", "minimum": 0, "maximum": MAX_DURATION_MS},
                description="at most this long (ms); leaves out jobs of unknown duration",
            ),
        ],
        responses=answers(serializers.JobPageSerializer, 400),
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        page, health = selectors.job_list_health(
            user=request.user,
            limit=limit_param(request, 50),
            cursor=request.query_params.get("cursor"),
            filters=_job_filter(request),
            stuck=_stuck(request),
            group_map_runs=True,  # a Map Run is one row; `state_machine=Parent/Label` lists it
        )
        jobs = [shapes.job_summary(job, health[job.id]) for job in page.items]
        return page_response(request, "results", jobs, page.next_cursor)


class JobEventsView(APIView):
    @extend_schema(
        summary="A job's normalised events in causal order (an answer never before its trigger)",
        description="`detail` and `raw` go first." + BUDGET_NOTE,
        parameters=[JOB, LIMIT, CURSOR],
        responses=answers(serializers.EventPageSerializer, 400, 404),
    )  # fmt: skip
    def get(self, request: Request, job_id: str) -> Response:
        job = job_or_404(request, job_id)
        page = job_event_page_in_order(
            user=request.user, job=job, limit=limit_param(request, 100),
            cursor=request.query_params.get("cursor"),
        )  # fmt: skip
        limit = settings.EDOBS_API_EVENT_BYTES
        events = [shapes.normalised_event_within(event, limit=limit) for event in page.items]
        return page_response(request, "results", events, page.next_cursor)


class JobTimelineView(APIView):
    @extend_schema(
        summary="A job's timeline: spans and the execution bar",
        parameters=[JOB], responses=answers(serializers.TimelineSerializer, 404),
    )  # fmt: skip
    def get(self, request: Request, job_id: str) -> Response:
        job = job_or_404(request, job_id)
        timeline = selectors.job_timeline(user=request.user, job=job)
        health = selectors.job_health(user=request.user, jobs=[job])[job.id]
        job = selectors.with_map_run(user=request.user, job=job)
        return Response({"job": shapes.job_summary(job, health), **timeline})


class ArchitectureView(APIView):
    @extend_schema(
        summary="The architecture inferred from events in a time window",
        parameters=[
            OpenApiParameter("since", DATE_TIME, description="default: the retention's start"),
            OpenApiParameter("until", DATE_TIME, description="default: no end"),
            OpenApiParameter("state_machine", OpenApiTypes.STR),
        ],
        responses=answers(serializers.ArchitectureSerializer, 400),
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        since = time_param(request, "since")
        if since is None:
            since = datetime.now(UTC) - timedelta(hours=settings.EDOBS_RETENTION_HOURS)
        window = Window(
            since=since,
            until=time_param(request, "until"),
            state_machine=text_param(request, "state_machine") or None,
        )
        graph = selectors.architecture_graph(user=request.user, window=window)
        graph = selectors.architecture_drift(user=request.user, graph=graph, window=window)
        return Response(
            fn_failures.architecture_with_failures(user=request.user, graph=graph, window=window)
        )


class EventView(APIView):
    @extend_schema(
        operation_id="event_retrieve",
        summary="One event's whole normalised JSON, never cut",
        description="Resolved among the accounts you may see; 400 when the id is an event of "
        "several of them and `account` does not say which; 404 when unknown or not yours.",
        parameters=[EVENT, ACCOUNT],
        responses=answers(serializers.EventSerializer, 400, 404),
    )  # fmt: skip
    def get(self, request: Request, event_id: str) -> Response:
        event = event_or_404(request, event_id, account_param(request))
        return Response(shapes.normalised_event(event))


class HealthView(APIView):
    @extend_schema(
        summary="The workers' health: ok, degraded (backlog growing) or down (none polling)",
        responses=answers(serializers.HealthSerializer),
    )
    def get(self, request: Request) -> Response:
        return Response(health_report())

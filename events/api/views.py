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
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors
from ..envelope import MalformedEvent, parse_time
from ..health import health_report
from ..stores.base import MAX_LIMIT, JobFilter, Window
from ..summary import JobSummary
from . import serializers, shapes
from .errors import not_found

JOB = OpenApiParameter("job_id", OpenApiTypes.STR, OpenApiParameter.PATH)
LIMIT = OpenApiParameter(
    "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, description="page size"
)
CURSOR = OpenApiParameter(
    "cursor", OpenApiTypes.STR, description="`next_cursor` of the previous page of this listing"
)
DATE_TIME = {"type": "string", "format": "date-time"}
# RFC 3339's date-time, what `format: date-time` promises; fromisoformat alone takes more.
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", re.ASCII)
MAX_JOB_ID = selectors.MAX_JOB_ID

ERROR = OpenApiResponse(serializers.ErrorSerializer, description='`{"error": "..."}`')
DENIED = {401: ERROR, 403: ERROR}  # not logged in: 403, or 401 for a token scheme first


def _answers(ok, *errors: int) -> dict:
    """The responses of an endpoint: 200 with `ok`, each error status with the error shape."""
    return {200: ok, **DENIED, **{status: ERROR for status in errors}}


def _limit(request: Request, default: int) -> int:
    value = request.query_params.get("limit", default)
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise ValidationError({"limit": "must be a whole number"}) from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError({"limit": f"must be between 1 and {MAX_LIMIT}"})
    return limit


def _time(request: Request, name: str) -> datetime | None:
    """An RFC 3339 date-time with its offset; absent is None, anything else (empty too) a 400."""
    value = request.query_params.get(name)
    if value is None:
        return None
    if not RFC3339.fullmatch(value.upper()):
        raise ValidationError({name: "must be an RFC 3339 date-time, e.g. 2026-11-19T00:00:00Z"})
    try:
        return parse_time(value.upper(), name)
    except MalformedEvent as exc:  # no such day, or an instant Python cannot hold
        raise ValidationError({name: str(exc)}) from None


def _text(request: Request, name: str) -> str | None:
    """A text filter; one holding a NUL is refused here, as PostgreSQL would refuse it (a 500)."""
    value = request.query_params.get(name)
    if value is not None and "\x00" in value:
        raise ValidationError({name: "must not contain a NUL character"})
    return value


def _job(request: Request, job_id: str) -> JobSummary | None:
    """The visible job, or None (404), also for an id no job can have (selectors.job_get)."""
    return selectors.job_get(user=request.user, job_id=job_id)


def _page(request: Request, key: str, items: list, next_cursor: str | None) -> Response:
    next_url = None
    if next_cursor:
        query = request.query_params.copy()
        query["cursor"] = next_cursor
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return Response({key: items, "next_cursor": next_cursor, "next": next_url})


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


BUDGET_NOTE = (
    " An event over EDOBS_API_EVENT_BYTES (16 KiB) has its largest fields replaced by"
    ' `{"truncated": true, "bytes": N, "full": URL}`; GET `full` for the whole event.'
)


class LatestView(APIView):
    @extend_schema(
        summary="Latest jobs in the original design's shape",
        description="The keys stay; big detail fields are cut." + BUDGET_NOTE,
        parameters=[LIMIT],
        responses=_answers(serializers.OriginalLatestSerializer, 400),
    )
    def get(self, request: Request) -> Response:
        page = selectors.job_list_latest(
            user=request.user, limit=_limit(request, 100), group_map_runs=True
        )
        return Response({"latest": [_latest_within(job) for job in page.items]})


class OriginalJobView(APIView):
    @extend_schema(
        summary="A job's events in the original design's shape",
        description="The keys stay; big detail fields are cut." + BUDGET_NOTE,
        parameters=[JOB], responses=_answers(serializers.OriginalJobSerializer, 404),
    )  # fmt: skip
    def get(self, request: Request, job_id: str) -> Response:
        job = _job(request, job_id)
        if job is None:
            return not_found("job")
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
        state_machine=_text(request, "state_machine") or None,
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
        responses=_answers(serializers.JobPageSerializer, 400),
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        page, health = selectors.job_list_health(
            user=request.user,
            limit=_limit(request, 50),
            cursor=request.query_params.get("cursor"),
            filters=_job_filter(request),
            stuck=_stuck(request),
            group_map_runs=True,  # a Map Run is one row; `state_machine=Parent/Label` lists it
        )
        jobs = [shapes.job_summary(job, health[job.id]) for job in page.items]
        return _page(request, "results", jobs, page.next_cursor)


class JobEventsView(APIView):
    @extend_schema(
        summary="A job's normalised events in order",
        description="`detail` and `raw` go first." + BUDGET_NOTE,
        parameters=[JOB, LIMIT, CURSOR],
        responses=_answers(serializers.EventPageSerializer, 400, 404),
    )  # fmt: skip
    def get(self, request: Request, job_id: str) -> Response:
        job = _job(request, job_id)
        if job is None:
            return not_found("job")
        page = selectors.job_event_page(
            user=request.user, job=job, limit=_limit(request, 100),
            cursor=request.query_params.get("cursor"),
        )  # fmt: skip
        limit = settings.EDOBS_API_EVENT_BYTES
        events = [shapes.normalised_event_within(event, limit=limit) for event in page.items]
        return _page(request, "results", events, page.next_cursor)


class JobTimelineView(APIView):
    @extend_schema(
        summary="A job's timeline: spans and the execution bar",
        parameters=[JOB], responses=_answers(serializers.TimelineSerializer, 404),
    )  # fmt: skip
    def get(self, request: Request, job_id: str) -> Response:
        job = _job(request, job_id)
        if job is None:
            return not_found("job")
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
        responses=_answers(serializers.ArchitectureSerializer, 400),
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        since = _time(request, "since")
        if since is None:
            since = datetime.now(UTC) - timedelta(hours=settings.EDOBS_RETENTION_HOURS)
        window = Window(
            since=since,
            until=_time(request, "until"),
            state_machine=_text(request, "state_machine") or None,
        )
        graph = selectors.architecture_graph(user=request.user, window=window)
        return Response(selectors.architecture_drift(user=request.user, graph=graph, window=window))


EVENT = OpenApiParameter("event_id", OpenApiTypes.STR, OpenApiParameter.PATH)
ACCOUNT = OpenApiParameter(
    "account", OpenApiTypes.STR,
    description="The event's account, when its id is an event of several (the links edobs "
    "makes always name it)",
)  # fmt: skip


class EventView(APIView):
    @extend_schema(
        operation_id="event_retrieve",
        summary="One event's whole normalised JSON, never cut",
        description="Resolved among the accounts you may see; 400 when the id is an event of "
        "several of them and `account` does not say which; 404 when unknown or not yours.",
        parameters=[EVENT, ACCOUNT],
        responses=_answers(serializers.EventSerializer, 400, 404),
    )  # fmt: skip
    def get(self, request: Request, event_id: str) -> Response:
        event = _event(request, event_id, _text(request, "account"))
        if event is None:
            return not_found("event")
        return Response(shapes.normalised_event(event))


def _event(request: Request, event_id: str, account: str | None):
    """The visible event, or None (404), also for an id or account no store can hold; an id
    that several visible accounts share without `account` is a 400 that names them."""
    if _unstorable(event_id) or (account is not None and _unstorable(account)):
        return None
    try:
        return selectors.event_get(user=request.user, event_id=event_id, account=account)
    except selectors.AmbiguousEvent as exc:
        raise ValidationError({"account": f"required: the id is an event of {exc}"}) from None


def _unstorable(value: str) -> bool:
    """A key no store holds and some would refuse: too long, a NUL, a lone surrogate."""
    try:
        return len(value.encode()) > MAX_JOB_ID or "\x00" in value
    except UnicodeEncodeError:
        return True


class HealthView(APIView):
    @extend_schema(
        summary="The workers' health: ok, degraded (backlog growing) or down (none polling)",
        responses=_answers(serializers.HealthSerializer),
    )
    def get(self, request: Request) -> Response:
        return Response(health_report())

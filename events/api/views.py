"""Thin DRF views: parse the request, call a selector, shape the answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors
from ..envelope import MalformedEvent, parse_time
from ..stores.base import MAX_LIMIT, Window
from . import shapes
from .errors import not_found

JOB = OpenApiParameter("job_id", OpenApiTypes.STR, OpenApiParameter.PATH)
LIMIT = OpenApiParameter("limit", OpenApiTypes.INT, description=f"1 to {MAX_LIMIT}")
CURSOR = OpenApiParameter("cursor", OpenApiTypes.STR, description="next_cursor of the last page")


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
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return parse_time(value, name)
    except MalformedEvent as exc:
        raise ValidationError({name: str(exc)}) from None


def _page(request: Request, key: str, items: list, next_cursor: str | None) -> Response:
    next_url = None
    if next_cursor:
        query = request.query_params.copy()
        query["cursor"] = next_cursor
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return Response({key: items, "next_cursor": next_cursor, "next": next_url})


class LatestView(APIView):
    @extend_schema(
        summary="Latest jobs in the original design's shape", responses=OpenApiTypes.OBJECT
    )
    def get(self, request: Request) -> Response:
        page = selectors.job_list_latest(user=request.user, limit=_limit(request, 100))
        return Response({"latest": [shapes.original_latest_item(job) for job in page.items]})


class OriginalJobView(APIView):
    @extend_schema(
        summary="A job's events in the original design's shape",
        parameters=[JOB], responses=OpenApiTypes.OBJECT,
    )  # fmt: skip
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get(user=request.user, job_id=job_id)
        if job is None:
            return not_found("job")
        events = selectors.job_event_list(user=request.user, job=job)
        return Response({"events": [shapes.original_event_item(job, e) for e in events]})


class JobListView(APIView):
    @extend_schema(
        summary="Job summaries, newest activity first",
        parameters=[
            LIMIT, CURSOR,
            OpenApiParameter("status", OpenApiTypes.STR, description="RUNNING, SUCCEEDED, ..."),
            OpenApiParameter("state_machine", OpenApiTypes.STR),
        ],
        responses=OpenApiTypes.OBJECT,
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        page = selectors.job_list_latest(
            user=request.user,
            limit=_limit(request, 50),
            cursor=request.query_params.get("cursor"),
            status=request.query_params.get("status"),
            state_machine=request.query_params.get("state_machine"),
        )
        return _page(
            request, "results", [shapes.job_summary(j) for j in page.items], page.next_cursor
        )


class JobEventsView(APIView):
    @extend_schema(
        summary="A job's normalised events in order",
        parameters=[JOB, LIMIT, CURSOR], responses=OpenApiTypes.OBJECT,
    )  # fmt: skip
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get(user=request.user, job_id=job_id)
        if job is None:
            return not_found("job")
        page = selectors.job_event_page(
            user=request.user, job=job, limit=_limit(request, 100),
            cursor=request.query_params.get("cursor"),
        )  # fmt: skip
        events = [shapes.normalised_event(event) for event in page.items]
        return _page(request, "results", events, page.next_cursor)


class JobTimelineView(APIView):
    @extend_schema(summary="A job's timeline: spans and the execution bar", parameters=[JOB],
                   responses=OpenApiTypes.OBJECT)  # fmt: skip
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get(user=request.user, job_id=job_id)
        if job is None:
            return not_found("job")
        timeline = selectors.job_timeline(user=request.user, job=job)
        return Response({"job": shapes.job_summary(job), **timeline})


class ArchitectureView(APIView):
    @extend_schema(
        summary="The architecture inferred from events in a time window",
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="default: retention"),
            OpenApiParameter("until", OpenApiTypes.DATETIME),
            OpenApiParameter("state_machine", OpenApiTypes.STR),
        ],
        responses=OpenApiTypes.OBJECT,
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        since = _time(request, "since")
        if since is None:
            since = datetime.now(UTC) - timedelta(hours=settings.EDOBS_RETENTION_HOURS)
        window = Window(
            since=since,
            until=_time(request, "until"),
            state_machine=request.query_params.get("state_machine") or None,
        )
        return Response(selectors.architecture_graph(user=request.user, window=window))

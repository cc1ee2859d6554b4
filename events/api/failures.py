"""`GET /api/failures`: failed and timed-out jobs grouped by state machine, failed state, error and
normalised cause (events.domain.failures). Thin: parse, call the read, shape."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers as s
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.api.params import DATE_TIME, MAX_JOB_ID, answers, text_param, time_param
from events.domain import failures
from events.domain.envelope import iso
from events.read import failures as failure_reads

DEFAULT_WINDOW = timedelta(hours=24)
TREND_BUCKETS = 24
GROUP_ID = re.compile(r"[0-9a-f]{16}", re.ASCII)


class FailureGroupSerializer(s.Serializer):
    id = s.CharField(help_text="fingerprint of the group's key: stable, for links")
    state_machine = s.CharField()
    state = s.CharField(allow_null=True, help_text="the state it failed in, if events name it")
    error = s.CharField(allow_null=True)
    cause = s.CharField(help_text="the cause with numbers, ids and timestamps masked")
    first_seen = s.DateTimeField()
    last_seen = s.DateTimeField()
    count = s.IntegerField()
    accounts = s.ListField(child=s.CharField())
    sample_jobs = s.ListField(child=s.CharField(), help_text="job ids, newest first")
    trend = s.ListField(child=s.IntegerField(), help_text="failures per bucket, oldest first")
    search = s.CharField(help_text="the events page with the group's status-change events")
    jobs = s.CharField(help_text="the jobs page with its state machine's failed jobs")


class FailuresSerializer(s.Serializer):
    since = s.DateTimeField()
    until = s.DateTimeField()
    bucket_seconds = s.FloatField(help_text="the width of each `trend` bucket")
    scanned = s.IntegerField(help_text="failed jobs read")
    capped = s.BooleanField(help_text="the read stopped at its cap: counts are lower bounds")
    cap = s.IntegerField()
    groups = FailureGroupSerializer(many=True)


def window(since: datetime | None, until: datetime | None, now: datetime) -> tuple:
    """The window asked for, by default the 24 hours before `until`; a ValueError when empty."""
    until = until or now
    since = since or until - DEFAULT_WINDOW
    if since >= until:
        raise ValueError("since must be before until")
    return since, until


def group_json(group: failures.Group, *, since: str, until: str) -> dict:
    return {
        "id": group.id, "state_machine": group.state_machine, "state": group.state,
        "error": group.error, "cause": group.cause, "first_seen": iso(group.first_seen),
        "last_seen": iso(group.last_seen), "count": group.count,
        "accounts": sorted(group.accounts), "sample_jobs": group.sample_jobs,
        "trend": group.trend,
        "search": reverse("events") + "?" + urlencode(
            failures.search_query(group, since=since, until=until)),
        "jobs": reverse("home") + "?" + urlencode(
            failures.jobs_query(group, since=since, until=until)),
    }  # fmt: skip


def _group_param(request: Request) -> str | None:
    value = request.query_params.get("group")
    if value is not None and not GROUP_ID.fullmatch(value):
        raise ValidationError({"group": "must be a group id: 16 hex digits 0-9a-f"})
    return value


def _state_machine(request: Request) -> str | None:
    value = text_param(request, "state_machine")
    if value is not None and len(value.encode(errors="replace")) > MAX_JOB_ID:
        raise ValidationError({"state_machine": f"must be at most {MAX_JOB_ID} bytes"})
    return value or None


class FailuresView(APIView):
    @extend_schema(
        summary="Failed and timed-out jobs grouped by state machine, state, error and cause",
        description="Groups of the visible jobs that failed or timed out in the window, most "
        "failures first. The cause is normalised: numbers, UUIDs, hex ids, ARNs' run names, "
        "timestamps masked. At most `cap` failed jobs are read (newest first); `capped` says "
        "the read stopped there.",
        parameters=[
            OpenApiParameter("since", DATE_TIME, description="default: 24 hours before until"),
            OpenApiParameter("until", DATE_TIME, description="default: now"),
            OpenApiParameter("state_machine", OpenApiTypes.STR, description="exact name"),
            OpenApiParameter("group", {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                             description="only this group (its `id`)"),
        ],
        responses=answers(FailuresSerializer, 400),
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        try:
            since, until = window(
                time_param(request, "since"), time_param(request, "until"), datetime.now(UTC)
            )
        except ValueError as exc:
            raise ValidationError({"since": str(exc)}) from None
        group, cap = _group_param(request), failure_reads.FAILURE_JOBS
        found = failure_reads.failure_groups(
            user=request.user, since=since, until=until, state_machine=_state_machine(request),
            cap=cap, trend_buckets=TREND_BUCKETS,
        )  # fmt: skip
        texts = {"since": iso(since), "until": iso(until)}
        groups = [g for g in found.groups if group is None or g.id == group]
        return Response({
            **texts, "bucket_seconds": (until - since).total_seconds() / TREND_BUCKETS,
            "scanned": found.scanned, "capped": found.capped, "cap": cap,
            "groups": [group_json(g, **texts) for g in groups],
        })  # fmt: skip

"""The architecture diff (DESIGN section 9, "Change over time"): thin, like views.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.api import serializers
from events.api.params import DATE_TIME, answers, text_param, time_param
from events.domain.architecture_diff import previous_period
from events.read import selectors
from events.stores.base import Window


def diff_windows(request: Request, *, now: datetime) -> tuple[Window, Window]:
    """The window and its base from the query; 400 when either ends before it starts."""
    since = time_param(request, "since") or now - timedelta(hours=settings.EDOBS_RETENTION_HOURS)
    until = time_param(request, "until") or now
    default_since, default_until = previous_period(since, until)
    base_since = time_param(request, "base_since") or default_since
    base_until = time_param(request, "base_until") or default_until
    if since >= until:
        raise ValidationError({"since": "must be before until"})
    if base_since >= base_until:
        raise ValidationError({"base_since": "must be before base_until"})
    machine = text_param(request, "state_machine") or None
    return (
        Window(since=since, until=until, state_machine=machine),
        Window(since=base_since, until=base_until, state_machine=machine),
    )


class ArchitectureDiffView(APIView):
    @extend_schema(
        summary="What changed in the architecture between a base window and a window",
        description="Nodes and edges added (only in the window) and removed (only in the base), "
        "and the edges both have whose p95 moved by more than half of the base's. The base "
        "defaults to the period of the same length just before the window.",
        parameters=[
            OpenApiParameter("since", DATE_TIME, description="default: the retention's start"),
            OpenApiParameter("until", DATE_TIME, description="default: now; after since"),
            OpenApiParameter("base_since", DATE_TIME, description="default: since − length"),
            OpenApiParameter("base_until", DATE_TIME, description="default: since"),
            OpenApiParameter("state_machine", OpenApiTypes.STR, description="in both windows"),
        ],
        responses=answers(serializers.ArchitectureDiffSerializer, 400),
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        window, base = diff_windows(request, now=datetime.now(UTC))
        return Response(selectors.architecture_diff(user=request.user, window=window, base=base))

"""Inferred schemas and their drift (DESIGN section 9, "Change over time"): thin views over
events.domain.drift, through events.read.selectors for the accounts the user may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers as s
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.api.errors import not_found
from events.api.params import DATE_TIME, answers, time_param, unstorable
from events.domain.drift import SAMPLE, Windows
from events.domain.envelope import iso
from events.read import selectors

WINDOW_NOTE = (
    " The current window is [since, until) of envelope time (default: the newer half of the "
    "retention, until now); the base window is [base_since, base_until) (default: the window "
    f"of equal length just before). At most {SAMPLE} events are read per window, oldest first; "
    "`sampled` says a window held more."
)
WINDOW_PARAMETERS = [
    OpenApiParameter(name, DATE_TIME) for name in ("since", "until", "base_since", "base_until")
]


class EventRefSerializer(s.Serializer):
    id = s.CharField(help_text="envelope id")
    job = s.CharField(allow_null=True, help_text="its job id; link: /jobs/<job>/#span=<id>")
    account = s.CharField()
    at = s.DateTimeField(allow_null=True)


class FieldSerializer(s.Serializer):
    path = s.CharField(help_text="dot-separated keys; `[]` for an array's elements")
    types = s.ListField(child=s.CharField(), help_text="JSON types seen at the path")
    presence = s.FloatField(help_text="share of the type's events holding the path, 0 to 1")
    count = s.IntegerField(help_text="events holding the path")


class SchemaSummarySerializer(s.Serializer):
    source = s.CharField()
    detail_type = s.CharField()
    events = s.IntegerField(help_text="events read in the current window")
    base_events = s.IntegerField(help_text="events read in the base window")
    new = s.BooleanField(help_text="not seen in the base window: a new producer or consumer")
    first_event = EventRefSerializer(allow_null=True)
    fields = FieldSerializer(many=True, help_text="at most `field_cap`, the first seen")
    fields_more = s.IntegerField(help_text="fields seen past `field_cap`, left out of `fields`")
    drift = s.IntegerField(help_text="fields added, removed or changed in type against the base")


class WindowsSerializer(s.Serializer):
    since = s.DateTimeField()
    until = s.DateTimeField()
    base_since = s.DateTimeField()
    base_until = s.DateTimeField()


class SchemaListSerializer(WindowsSerializer):
    sampled = s.BooleanField()
    comparable = s.BooleanField(help_text="false: the base window holds no events, no drift")
    types = SchemaSummarySerializer(many=True)
    field_cap = s.IntegerField(help_text="at most this many fields per type and window")


class ChangeSerializer(s.Serializer):
    path = s.CharField()
    types_before = s.ListField(child=s.CharField())
    types_after = s.ListField(child=s.CharField())
    first_event = EventRefSerializer(
        allow_null=True, help_text="the first event of the current window that showed it"
    )


class DriftSerializer(s.Serializer):
    added = ChangeSerializer(many=True)
    removed = ChangeSerializer(many=True)
    changed = ChangeSerializer(many=True)


class SchemaDetailSerializer(WindowsSerializer, SchemaSummarySerializer):
    drift = DriftSerializer()
    drift_count = s.IntegerField()
    base_fields = FieldSerializer(many=True)
    base_fields_more = s.IntegerField(help_text="base fields left out past `field_cap`")
    field_cap = s.IntegerField(help_text="at most this many fields per window and in `schema`")
    sampled = s.BooleanField()
    comparable = s.BooleanField(help_text="false: the base window holds no events, no drift")
    schema = s.JSONField(
        allow_null=True,
        help_text="the JSON Schema of the current window's details (genson), at most "
        "`field_cap` properties over all levels; `$comment` says when some were left out",
    )
    schema_more = s.IntegerField(help_text="properties left out of `schema`")


def windows_of(request: Request) -> Windows:
    """The windows a request asks for; ValidationError (400) for an empty one, or one that
    reaches past the calendar."""
    until, since = time_param(request, "until"), time_param(request, "since")
    base_since, base_until = time_param(request, "base_since"), time_param(request, "base_until")
    half = timedelta(hours=settings.EDOBS_RETENTION_HOURS) / 2
    try:
        until = until or (since + half if since else datetime.now(UTC))
        since = since or until - half
        return Windows.make(since=since, until=until, base_since=base_since, base_until=base_until)
    except (ValueError, OverflowError) as exc:
        raise ValidationError({"window": str(exc)}) from None


def window_keys(windows: Windows) -> dict[str, str | None]:
    return {
        "since": iso(windows.since), "until": iso(windows.until),
        "base_since": iso(windows.base_since), "base_until": iso(windows.base_until),
    }  # fmt: skip


class SchemaListView(APIView):
    @extend_schema(
        operation_id="schemas_list",
        summary="Inferred schemas: per source and detail-type, fields, JSON types, presence, "
        "and how many fields drifted",
        description=WINDOW_NOTE,
        parameters=WINDOW_PARAMETERS,
        responses=answers(SchemaListSerializer, 400),
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        windows = windows_of(request)
        answer = selectors.schema_list(user=request.user, windows=windows)
        return Response({**window_keys(windows), **answer})


class SchemaDetailView(APIView):
    @extend_schema(
        operation_id="schemas_retrieve",
        summary="One event type's fields, their drift against the base window (each change "
        "with the first event that showed it), and its inferred JSON Schema",
        description=WINDOW_NOTE + " 404 when neither window holds the type.",
        parameters=WINDOW_PARAMETERS,
        responses=answers(SchemaDetailSerializer, 400, 404),
    )  # fmt: skip
    def get(self, request: Request, source: str, detail_type: str) -> Response:
        if unstorable(source) or unstorable(detail_type):
            return not_found("event type")
        windows = windows_of(request)
        answer = selectors.schema_detail(
            user=request.user, windows=windows, source=source, detail_type=detail_type
        )
        if answer is None:
            return not_found("event type")
        return Response({**window_keys(windows), **answer})

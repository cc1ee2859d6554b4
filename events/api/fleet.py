"""Fleet views (DESIGN section 9): a state machine's metrics over time, and the raw event search.

Thin, like views.py: parse and refuse (400 `{"error": ...}`), call a selector, shape the answer.
"""

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
from events.api.errors import not_found
from events.api.params import (
    BUDGET_NOTE,
    CURSOR,
    DATE_TIME,
    LIMIT,
    MAX_JOB_ID,
    account_param,
    answers,
    limit_param,
    page_response,
    text_param,
    time_param,
)
from events.domain import fleet, search, shapes
from events.domain.envelope import iso
from events.read import selectors
from events.stores.base import Window

MAX_WHERE_TEXT = 1000
MAX_NAME = 200  # bytes: a state machine name is at most 80 characters

STATE_MACHINE = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH)
WHERE = OpenApiParameter(
    "where",
    {
        "type": "array",
        "items": {"type": "string", "pattern": r"^[^.=]+(\.[^.=]+)*=", "maxLength": MAX_WHERE_TEXT},
        "maxItems": search.MAX_WHERE,
    },
    explode=True,
    description="`path=value` on the detail, repeatable (all must hold): a dot-separated path "
    'of keys and a JSON value, `orderId=1234` a number, `customer.name="Zoë"` a string; a '
    "value that is not JSON is a string (`status=FAILED`)",
)


def _state_machine(name: str) -> str | None:
    """None for a name no state machine can have (no store could look it up). A "/" is
    allowed: Distributed Map children run under `Parent/MapRunLabel`."""
    try:
        size = len(name.encode())
    except UnicodeEncodeError:
        return None
    return name if 0 < size <= MAX_NAME and "\x00" not in name else None


def _bucket(request: Request, since: datetime, until: datetime) -> tuple[str, timedelta]:
    """The bucket asked for, or without one (or an empty one) the one that fits the range."""
    text = request.query_params.get("bucket", "")
    if not text:
        return fleet.auto_bucket(since, until)
    try:
        return text, fleet.parse_bucket(text)
    except ValueError as exc:
        raise ValidationError({"bucket": str(exc)}) from None


class StateMachineMetricsView(APIView):
    @extend_schema(
        summary="A state machine's jobs per time bucket: started, succeeded, failed, failure "
        "rate, p50/p95/p99",
        parameters=[
            STATE_MACHINE,
            OpenApiParameter("since", DATE_TIME, description="default: the retention's start"),
            OpenApiParameter("until", DATE_TIME, description="default: now"),
            OpenApiParameter(
                "bucket", {"type": "string", "pattern": r"^([1-9][0-9]{0,5}[mhd])?$"},
                description=f"15m, 1h, 1d, ...: at most {fleet.MAX_BUCKET.days}d, and at most "
                f"{fleet.MAX_BUCKETS} buckets between since and until. Default: the smallest of "
                f"{', '.join(fleet.AUTO_BUCKETS)} that gives at most {fleet.MAX_BUCKETS} "
                "(the answer says which, and `bucket_auto`); an empty one is the same",
            ),
        ],
        responses=answers(serializers.MetricsSerializer, 400, 404),
    )  # fmt: skip
    def get(self, request: Request, name: str) -> Response:
        if _state_machine(name) is None:
            return not_found("state machine")
        now = datetime.now(UTC)
        retention = timedelta(hours=settings.EDOBS_RETENTION_HOURS)
        since = time_param(request, "since") or now - retention
        until = time_param(request, "until") or now
        text, size = _bucket(request, since, until)
        try:
            answer = selectors.state_machine_metrics(
                user=request.user, state_machine=name, since=since, until=until, bucket=size
            )
        except ValueError as exc:  # no buckets, too many, or off the calendar
            raise ValidationError({"bucket": str(exc)}) from None
        buckets = [
            {**row, "start": iso(row["start"]), "end": iso(row["end"])} for row in answer["buckets"]
        ]
        return Response({
            "state_machine": name, "since": buckets[0]["start"], "until": buckets[-1]["end"],
            "bucket": text, "bucket_auto": not request.query_params.get("bucket"),
            "buckets": buckets, "total": answer["total"],
        })  # fmt: skip


def _where(request: Request) -> tuple[search.Where, ...]:
    values = request.query_params.getlist("where")
    if len(values) > search.MAX_WHERE:
        raise ValidationError({"where": f"at most {search.MAX_WHERE} conditions"})
    if any("\x00" in value or len(value) > MAX_WHERE_TEXT for value in values):
        raise ValidationError({"where": f"must be at most {MAX_WHERE_TEXT} characters, no NUL"})
    try:
        return tuple(search.parse_where(value) for value in values)
    except ValueError as exc:
        raise ValidationError({"where": str(exc)}) from None


def _filter(request: Request, name: str) -> str | None:
    value = text_param(request, name)
    if value is not None and len(value.encode(errors="replace")) > MAX_JOB_ID:
        raise ValidationError({name: f"must be at most {MAX_JOB_ID} bytes"})
    return value or None


class EventSearchView(APIView):
    @extend_schema(
        operation_id="events_search",
        summary="Raw events, newest first: by source, type, account, job, function, detail "
        "fields and free text",
        description="Newest first by envelope time." + BUDGET_NOTE,
        parameters=[
            OpenApiParameter("source", OpenApiTypes.STR),
            OpenApiParameter("detail_type", OpenApiTypes.STR),
            OpenApiParameter("account", OpenApiTypes.STR),
            OpenApiParameter("job", OpenApiTypes.STR, description="a full job id"),
            OpenApiParameter("fn", OpenApiTypes.STR, description="the function that emitted it"),
            OpenApiParameter(
                "q", OpenApiTypes.STR,
                description="free text, any script, case-insensitive: the envelope id or any "
                "key or value of the detail",
            ),
            WHERE,
            OpenApiParameter("since", DATE_TIME, description="envelope time, inclusive"),
            OpenApiParameter("until", DATE_TIME, description="envelope time, exclusive"),
            CURSOR, LIMIT,
        ],
        responses=answers(serializers.EventPageSerializer, 400),
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        window = Window(
            since=time_param(request, "since"),
            until=time_param(request, "until"),
            **{name: _filter(request, name) for name in ("source", "detail_type")},
            account=account_param(request),
            job=_filter(request, "job"),
            fn=_filter(request, "fn"),
            where=_where(request),
        )
        page = selectors.event_search_page(
            user=request.user, window=window, text=text_param(request, "q") or "",
            limit=limit_param(request, 100), cursor=request.query_params.get("cursor"),
        )  # fmt: skip
        limit = settings.EDOBS_API_EVENT_BYTES
        events = [shapes.normalised_event_within(event, limit=limit) for event in page.items]
        return page_response(request, "results", events, page.next_cursor)

"""What the API's views share: OpenAPI parameters and answers, query parameters checked into
400s, the visible job or event or a 404, and a page with its `next` link.

Its own module so that every API module reads these from one place instead of from the private
helpers of events.api.views. A 404 is raised (rest_framework's NotFound): the exception handler
(events.api.errors) gives it the one error shape, `{"error": "job not found"}`.
"""

from __future__ import annotations

import re
from datetime import datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from events.api import serializers
from events.domain.envelope import MalformedEvent, NormalisedEvent, is_account, parse_window_time
from events.domain.summary import JobSummary
from events.read import selectors
from events.stores.base import MAX_LIMIT

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


def answers(ok, *errors: int) -> dict:
    """The responses of an endpoint: 200 with `ok`, each error status with the error shape."""
    return {200: ok, **DENIED, **{status: ERROR for status in errors}}


def limit_param(request: Request, default: int) -> int:
    value = request.query_params.get("limit", default)
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise ValidationError({"limit": "must be a whole number"}) from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError({"limit": f"must be between 1 and {MAX_LIMIT}"})
    return limit


def time_param(request: Request, name: str) -> datetime | None:
    """An RFC 3339 date-time with its offset; absent is None, anything else (empty too) a 400."""
    value = request.query_params.get(name)
    if value is None:
        return None
    if not RFC3339.fullmatch(value.upper()):
        raise ValidationError({name: "must be an RFC 3339 date-time, e.g. 2026-11-19T00:00:00Z"})
    try:
        return parse_window_time(value.upper(), name)
    except MalformedEvent as exc:  # no such day, or too near the calendar's ends
        raise ValidationError({name: str(exc)}) from None


def text_param(request: Request, name: str) -> str | None:
    """A text filter; one holding a NUL is refused here, as PostgreSQL would refuse it (a 500)."""
    value = request.query_params.get(name)
    if value is not None and "\x00" in value:
        raise ValidationError({name: "must not contain a NUL character"})
    return value


def account_param(request: Request) -> str | None:
    """An `account=` parameter: 12 ASCII digits, or absent/empty (None); anything else a 400
    (other scripts' digits included: no account has them)."""
    value = request.query_params.get("account")
    if not value:
        return None
    if not is_account(value):
        raise ValidationError({"account": "must be an AWS account id: 12 digits 0-9"})
    return value


def job_or_404(request: Request, job_id: str) -> JobSummary:
    """The visible job; a 404 `{"error": "job not found"}` otherwise, also for an id no job can
    have (selectors.job_get)."""
    job = selectors.job_get(user=request.user, job_id=job_id)
    if job is None:
        raise NotFound("job not found")
    return job


def page_response(request: Request, key: str, items: list, next_cursor: str | None) -> Response:
    next_url = None
    if next_cursor:
        query = request.query_params.copy()
        query["cursor"] = next_cursor
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return Response({key: items, "next_cursor": next_cursor, "next": next_url})


EVENT = OpenApiParameter("event_id", OpenApiTypes.STR, OpenApiParameter.PATH)
ACCOUNT = OpenApiParameter(
    "account", OpenApiTypes.STR,
    description="The event's account, when its id is an event of several (the links edobs "
    "makes always name it)",
)  # fmt: skip


def event_or_404(request: Request, event_id: str, account: str | None) -> NormalisedEvent:
    """The visible event; a 404 otherwise, also for an id or account no store can hold; an id
    that several visible accounts share without `account` is a 400 that names them."""
    event = None
    if not (unstorable(event_id) or (account is not None and unstorable(account))):
        try:
            event = selectors.event_get(user=request.user, event_id=event_id, account=account)
        except selectors.AmbiguousEvent as exc:
            raise ValidationError({"account": f"required: the id is an event of {exc}"}) from None
    if event is None:
        raise NotFound("event not found")
    return event


def unstorable(value: str) -> bool:
    """A key no store holds and some would refuse: too long, a NUL, a lone surrogate."""
    try:
        return len(value.encode()) > MAX_JOB_ID or "\x00" in value
    except UnicodeEncodeError:
        return True


BUDGET_NOTE = (
    " An event over EDOBS_API_EVENT_BYTES (16 KiB) has its largest fields replaced by"
    ' `{"truncated": true, "bytes": N, "full": URL}`; GET `full` for the whole event.'
)

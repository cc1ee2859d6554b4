"""Thin views of the job view (DESIGN section 9): two jobs compared, a job exported.

As in views.py, every answer is in the schema, errors in the one shape `{"error": "..."}`.
The export takes `?format=`, the name DRF reserves for choosing a renderer: these views choose
theirs themselves (always JSON, for the errors and the JSON export), so an unknown format is the
documented 400 and not DRF's 404, and the Mermaid chart is a plain-text answer of its own.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.api import serializers
from events.api.params import DENIED, ERROR, JOB, job_or_404, text_param
from events.domain import shapes
from events.domain.export import export_filename
from events.read import selectors

FORMATS = ("json", "mermaid")
JSON = "application/json"
JOB_ID = {"type": "string", "minLength": 1}
EXPORTED = (
    "`format=json`: the job and every event, in order, as an attachment (`Content-Disposition`); "
    "`format=mermaid`: a Mermaid `gantt` chart of the timeline, as text"
)


class FirstRenderer(BaseContentNegotiation):
    """The view's first renderer whatever `Accept` or `?format=` say: the view decides."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None


def _errors(*statuses: int) -> dict:
    return {(status, JSON): ERROR for status in (*DENIED, *statuses)}


def _required(request: Request, name: str) -> str:
    value = text_param(request, name)
    if not value:
        raise ValidationError({name: "is required: a job id"})
    return value


class JobCompareView(APIView):
    content_negotiation_class = FirstRenderer

    @extend_schema(
        summary="Two jobs step by step: durations, missing steps and detail fields that differ",
        parameters=[
            OpenApiParameter("a", JOB_ID, required=True, description="a job id or short form"),
            OpenApiParameter(
                "b",
                JOB_ID,
                description="a job id or short form; default: the newest other "
                "job of a's state machine with the other outcome (a success for a failure, a "
                "failure for a success), else its newest other job",
            ),
        ],
        responses={(200, JSON): serializers.CompareSerializer, **_errors(400, 404)},
    )
    def get(self, request: Request) -> Response:
        a = job_or_404(request, _required(request, "a"))
        b_id = text_param(request, "b") if "b" in request.query_params else None
        if b_id is not None and not b_id:
            raise ValidationError({"b": "is required when given: a job id"})
        b = job_or_404(request, b_id) if b_id else selectors.job_compare_partner(
            user=request.user, job=a
        )
        if b is None:
            raise NotFound("job not found")
        jobs = {"a": a, "b": b}
        comparison = selectors.job_compare(user=request.user, a=jobs["a"], b=jobs["b"])
        summaries = {name: shapes.job_summary(job) for name, job in jobs.items()}
        return Response({**summaries, **comparison})


class JobExportView(APIView):
    content_negotiation_class = FirstRenderer

    @extend_schema(
        summary="A job as a download: every event (JSON) or a Mermaid Gantt chart (text)",
        parameters=[
            JOB,
            OpenApiParameter("format", {"type": "string", "enum": list(FORMATS)}, default="json"),
        ],
        responses={
            (200, JSON): OpenApiResponse(serializers.ExportSerializer, description=EXPORTED),
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description=EXPORTED),
            **_errors(400, 404),
        },
    )
    def get(self, request: Request, job_id: str) -> Response | HttpResponse:
        wanted = request.query_params.get("format", "json")
        if wanted not in FORMATS:
            raise ValidationError({"format": f"must be one of {', '.join(FORMATS)}"})
        job = job_or_404(request, job_id)
        if wanted == "mermaid":
            chart = selectors.job_mermaid(user=request.user, job=job)
            return HttpResponse(chart, content_type="text/plain; charset=utf-8")
        events = selectors.job_event_list(user=request.user, job=job)
        filename = export_filename(job.id, job.name, "json")
        return Response(
            {"job": shapes.job_summary(job), "events": [e.as_dict() for e in events]},
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

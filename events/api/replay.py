"""Replay an event or a job's events to a bus (events.replay.send): permission, then visibility."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches
from drf_spectacular.utils import extend_schema
from rest_framework import serializers as s
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from events.api.params import ACCOUNT, EVENT, JOB, answers, event_or_404, job_or_404
from events.domain.envelope import is_account
from events.read import selectors
from events.replay import send as replay

MAX_BUS = 1600  # characters: an event bus ARN is at most 1600


class ReplayRequestSerializer(s.Serializer):
    bus = s.CharField(
        max_length=MAX_BUS, help_text="the event bus's name or ARN (in the events' account)"
    )
    dry_run = s.BooleanField(
        default=False, help_text="true: answer what would be sent, send nothing"
    )
    account = s.CharField(
        required=False, max_length=12,
        help_text="the event's account, when its id is an event of several (event replay only)",
    )  # fmt: skip

    def validate_account(self, value: str) -> str:
        if not is_account(value):
            raise s.ValidationError("must be an AWS account id: 12 digits 0-9")
        return value

    def validate_bus(self, value: str) -> str:
        if "\x00" in value or not value.strip():
            raise s.ValidationError("must be a bus name or ARN")
        if not replay.bus_allowed(value.strip()):
            raise s.ValidationError(replay.bus_refusal(value.strip()))
        return value.strip()


class ReplayEntrySerializer(s.Serializer):
    Source = s.CharField()
    DetailType = s.CharField()
    Detail = s.CharField(help_text="JSON text, with meta.replayOf")
    Resources = s.ListField(child=s.CharField())
    Time = s.DateTimeField()
    EventBusName = s.CharField()


class ReplayResultSerializer(s.Serializer):
    replay = s.IntegerField(help_text="the Replay record's id (admin)")
    dry_run = s.BooleanField()
    bus = s.CharField()
    count = s.IntegerField(help_text="entries put (or, dry, to be put) on the bus")
    skipped = s.IntegerField(help_text="events not replayable: `aws.*` sources")
    sent = s.IntegerField()
    failed = s.IntegerField()
    error = s.CharField(allow_blank=True)
    new_job = s.CharField(allow_null=True, help_text="the job the replayed events will form")
    replay_of = s.CharField(allow_null=True, help_text="the original job id")
    entries = ReplayEntrySerializer(many=True, help_text="dry run only: what would be sent")


class ReplayRateThrottle(UserRateThrottle):
    """EDOBS_REPLAY_RATE replays per user. Counted in the `shared` cache (settings.py: Redis
    with REDIS_URL, else the database), which every server process reads: a per-process cache
    would let each daphne process allow the rate again."""

    scope = "replay"

    def __init__(self) -> None:
        self.cache = caches[settings.EDOBS_REPLAY_CACHE]
        super().__init__()

    def get_rate(self) -> str:
        return settings.EDOBS_REPLAY_RATE


def _refused(request: Request) -> Response | None:
    if request.user.has_perm(replay.PERMISSION):
        return None
    return Response(
        {"error": f"replay needs the {replay.PERMISSION} permission"},
        status=status.HTTP_403_FORBIDDEN,
    )


def _body(request: Request) -> dict:
    body = ReplayRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data


def _answer(record, outcome) -> Response:
    entries = [{**entry, "Time": entry["Time"].isoformat()} for entry in outcome.entries]
    return Response({
        "replay": record.pk, "dry_run": record.dry_run, "bus": record.bus,
        "count": record.entries, "skipped": record.skipped, "sent": record.sent,
        "failed": record.failed, "error": record.error, "new_job": record.new_job or None,
        "replay_of": record.job_id or None, "entries": entries if record.dry_run else [],
    })  # fmt: skip


REPLAY_NOTE = (
    "Needs the `events.replay_event` permission (403 without). Each replayed event carries "
    "`detail.meta.replayOf` and is renamed into a new job `<name>-replay-<short id>`; every "
    "replay, dry or not, is recorded (admin: Replays). The bus must be one of "
    "EDOBS_REPLAY_BUSES (400 otherwise); EDOBS_REPLAY_RATE replays per user (429 beyond)."
)


class EventReplayView(APIView):
    throttle_classes = [ReplayRateThrottle]

    @extend_schema(
        operation_id="event_replay",
        summary="Put one event back on a bus (or, dry, say what would be sent)",
        description=REPLAY_NOTE, parameters=[EVENT, ACCOUNT], request=ReplayRequestSerializer,
        responses=answers(ReplayResultSerializer, 400, 404, 429),
    )  # fmt: skip
    def post(self, request: Request, event_id: str) -> Response:
        refused = _refused(request)
        if refused:
            return refused
        body = _body(request)
        event = event_or_404(request, event_id, body.get("account"))
        record, outcome = replay.replay_record(
            user=request.user, events=[event], job=None, event_id=event.id, bus=body["bus"],
            dry_run=body["dry_run"],
        )  # fmt: skip
        return _answer(record, outcome)


class JobReplayView(APIView):
    throttle_classes = [ReplayRateThrottle]

    @extend_schema(
        operation_id="job_replay",
        summary="Put a job's events back on a bus, as a new job linked to it (or, dry, say "
        "what would be sent)",
        description=REPLAY_NOTE + " Step Functions' own `aws.states` events are skipped.",
        parameters=[JOB], request=ReplayRequestSerializer,
        responses=answers(ReplayResultSerializer, 400, 404, 429),
    )  # fmt: skip
    def post(self, request: Request, job_id: str) -> Response:
        refused = _refused(request)
        if refused:
            return refused
        body = _body(request)
        job = job_or_404(request, job_id)
        events = selectors.job_event_list(user=request.user, job=job)
        record, outcome = replay.replay_record(
            user=request.user, events=events, job=job, bus=body["bus"], dry_run=body["dry_run"]
        )
        return _answer(record, outcome)

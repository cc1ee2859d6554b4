"""The answers' shapes for the OpenAPI document (DESIGN sections 6 and 9), nothing else.

The views build their answers in shapes.py; these serializers only describe them, so the schema
names every top-level key with its type. Free-form parts (an event's detail, its raw envelope)
stay open objects, and the original design's items may carry any detail field besides theirs.
"""

from rest_framework import serializers as s


class ErrorSerializer(s.Serializer):
    error = s.CharField(help_text="What was wrong, for a person to read")


class MapRunSerializer(s.Serializer):
    label = s.CharField()
    running = s.IntegerField(help_text="children without a terminal status")
    succeeded = s.IntegerField()
    failed = s.IntegerField(help_text="FAILED, TIMED_OUT or ABORTED children")


class AttemptSerializer(s.Serializer):
    attempt = s.IntegerField(help_text="`redriveCount` of the status events: 0 for the first run")
    start = s.DateTimeField(allow_null=True, help_text="startDate, or redriveDate of a redrive")
    stop = s.DateTimeField(allow_null=True)
    status = s.CharField(allow_null=True)
    error = s.CharField(allow_null=True)


class JobSummarySerializer(s.Serializer):
    id = s.CharField()
    execution_arn = s.CharField(allow_null=True)
    state_machine = s.CharField()
    name = s.CharField()
    account = s.CharField()
    region = s.CharField()
    status = s.CharField(allow_null=True, help_text="RUNNING, SUCCEEDED, FAILED, ...")
    error = s.CharField(allow_null=True)
    cause = s.CharField(allow_null=True)
    started_at = s.DateTimeField(allow_null=True)
    stopped_at = s.DateTimeField(allow_null=True)
    first_event_at = s.DateTimeField(allow_null=True)
    last_event_at = s.DateTimeField(allow_null=True)
    event_count = s.IntegerField()
    duration_ms = s.IntegerField(
        allow_null=True, help_text="stopped - started, or now - started while running; null "
        "when the start (or the stop of a finished job) is unknown",
    )  # fmt: skip
    replay_of = s.CharField(
        allow_null=True, required=False,
        help_text="the original job id when this job is a replay (events.replay.send)",
    )  # fmt: skip
    stuck = s.BooleanField(
        allow_null=True,
        help_text="Run longer than EDOBS_STUCK_FACTOR x the p99 of its state machine's "
        "succeeded jobs; null where not judged (compare's and export's jobs)",
    )
    stuck_reason = s.CharField(
        allow_null=True, help_text='e.g. "running 12 min, 2x the p99 of 6 min"'
    )
    parent = s.CharField(
        allow_null=True, required=False,
        help_text="the job id of the execution that started this one (input field "
        "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID); null when unknown",
    )  # fmt: skip
    map_run = MapRunSerializer(
        allow_null=True, required=False,
        help_text="a Distributed Map child's Map Run (state machine `Parent/Label`) with its "
        "children's counts; in lists this row stands for the whole run",
    )  # fmt: skip
    attempts = AttemptSerializer(
        many=True, required=False,
        help_text="the runs of the execution, oldest first; more than one when it was redriven",
    )  # fmt: skip


class EventSerializer(s.Serializer):
    """A normalised event (DESIGN section 2)."""

    id = s.CharField()
    source = s.CharField()
    detail_type = s.CharField()
    account = s.CharField()
    region = s.CharField()
    time = s.DateTimeField(help_text="The envelope's time (whole seconds on EventBridge)")
    at = s.DateTimeField(help_text="When it happened, from the best clock it carries, with ms")
    at_source = s.ChoiceField(
        ["producer", "stepfunctions", "delivery", "envelope"], help_text="Which clock `at` is"
    )
    received_at = s.DateTimeField()
    resources = s.ListField(child=s.JSONField())
    detail = s.DictField(child=s.JSONField())
    job = s.CharField(allow_null=True)
    fn = s.CharField(allow_null=True)
    incoming = s.DictField(child=s.JSONField(), allow_null=True)
    outgoing = s.DictField(child=s.JSONField(), allow_null=True)
    raw = s.DictField(child=s.JSONField(), help_text="The envelope as received")


class TrimmedEventSerializer(EventSerializer):
    """A normalised event in a list: one over EDOBS_API_EVENT_BYTES has its `detail` and `raw`
    (and any other big field) replaced by `{"truncated": true, "bytes": N, "full": URL}`."""

    truncated = s.BooleanField(required=False, help_text="Only on a cut event: true")
    bytes = s.IntegerField(required=False, help_text="The whole event's size as JSON")
    full = s.CharField(required=False, help_text="GET it for the whole event")


class WorkerSerializer(s.Serializer):
    worker = s.CharField(help_text="host:pid of a consume_events process")
    alive = s.BooleanField(help_text="Polled the queue recently enough")
    started_at = s.DateTimeField()
    last_poll_at = s.DateTimeField(allow_null=True)
    last_batch_at = s.DateTimeField(allow_null=True, help_text="When it last received messages")
    last_batch_size = s.IntegerField()
    poll_seconds = s.IntegerField(help_text="Its long-poll wait")
    backlog = s.IntegerField(allow_null=True, help_text="ApproximateNumberOfMessages it saw")
    backlog_at = s.DateTimeField(allow_null=True)
    seen_at = s.DateTimeField(help_text="Its heartbeat's last write")


class HealthSerializer(s.Serializer):
    status = s.ChoiceField(choices=["ok", "degraded", "down"])
    workers = WorkerSerializer(many=True)
    backlog = s.IntegerField(allow_null=True, help_text="Messages waiting in the queue")
    backlog_growing = s.BooleanField()
    checked_at = s.DateTimeField()


class PageSerializer(s.Serializer):
    next_cursor = s.CharField(allow_null=True, help_text="Pass as `cursor` for the next page")
    next = s.URLField(allow_null=True, help_text="The next page's URL")


class JobPageSerializer(PageSerializer):
    results = JobSummarySerializer(many=True)


class EventPageSerializer(PageSerializer):
    results = TrimmedEventSerializer(many=True)


class OriginalLatestItemSerializer(s.Serializer):
    """Also every field of the latest event's detail (never one of these keys)."""

    pk = s.CharField(help_text='"LATEST"')
    sk = s.CharField(help_text='"EVENT#<job id>"')
    latest = s.CharField(allow_null=True, help_text="The latest event's `at`, epoch ms")
    account = s.CharField()
    source = s.CharField(allow_null=True)
    detailType = s.CharField(allow_null=True)  # noqa: N815  (the original design's key)
    meta = s.DictField(
        child=s.JSONField(), help_text="The detail's meta, with `job` and `stateMachine` always"
    )


class OriginalLatestSerializer(s.Serializer):
    latest = OriginalLatestItemSerializer(many=True)


class OriginalEventItemSerializer(s.Serializer):
    """Also every field of the event's detail (never one of these keys)."""

    pk = s.CharField(help_text='"EVENT#<job id>"')
    sk = s.CharField(
        help_text="The event's `at`, epoch ms; unique within the job (a millisecond already "
        "taken gives the next free one), ascending in causal order (an answer's above its "
        "trigger's)"
    )
    account = s.CharField()
    source = s.CharField()
    detailType = s.CharField()  # noqa: N815  (the original design's key)


class OriginalJobSerializer(s.Serializer):
    events = OriginalEventItemSerializer(many=True)


class SpanSerializer(s.Serializer):
    fn = s.CharField(allow_null=True)
    start = s.DateTimeField()
    end = s.DateTimeField(allow_null=True)
    start_event = s.CharField(allow_null=True, help_text="null when the trigger was not seen")
    end_event = s.CharField(allow_null=True)
    incoming = s.DictField(child=s.JSONField(), allow_null=True)
    outgoing = s.DictField(child=s.JSONField(), allow_null=True)
    open = s.BooleanField()
    approx = s.BooleanField(help_text="both ends known to the whole second only")
    duration_ms = s.IntegerField(
        allow_null=True, min_value=0,
        help_text="end minus start; null when pending or when the two clocks disagree",
    )  # fmt: skip
    skew_ms = s.IntegerField(
        allow_null=True,
        min_value=1,
        help_text="how far the two ends' clocks disagree when the span would run backwards "
        "(then `duration_ms` is null and `end` equals `start`); else null",
    )
    state = s.CharField(
        allow_null=True,
        help_text="the workflow state the span ran in (its trigger's `stateName` or execution "
        "context, through the chain of triggers); null when no event says",
    )
    lane = s.CharField(
        help_text="the state where known, else the fn, else `awaiting <detail-type>` (pending)"
    )
    fn_lane = s.IntegerField(help_text="the lane's place, fixed per state machine for states")
    sub_lane = s.IntegerField(help_text="the span's row inside its lane")
    row = s.IntegerField(help_text="the span's row in the whole chart")
    colour = s.IntegerField(
        allow_null=True,
        help_text="palette index (0-7) of the state (else fn), fixed per state machine",
    )
    status = s.ChoiceField(
        ["ok", "failed", "pending"],
        help_text="failed: running when the execution failed; pending: its trigger was seen and "
        "no answer came (no fn, no end)",
    )
    kind = s.ChoiceField(
        ["execution"], required=False,
        help_text="only on the spans of the executions this job started (after the others)",
    )  # fmt: skip
    child = s.CharField(
        required=False, help_text="the started execution's job id (a Map Run's newest child)"
    )
    map_run = MapRunSerializer(allow_null=True, required=False)


class ExecutionSerializer(s.Serializer):
    start = s.DateTimeField(allow_null=True)
    stop = s.DateTimeField(allow_null=True)
    status = s.CharField(allow_null=True)
    error = s.CharField(allow_null=True)
    cause = s.CharField(allow_null=True)


class TimelineSerializer(s.Serializer):
    job = JobSummarySerializer()
    spans = SpanSerializer(many=True)
    execution = ExecutionSerializer()
    critical_path = s.ListField(
        child=s.IntegerField(min_value=0),
        help_text="Indices into `spans` of the longest cause-to-effect chain, first span first",
    )


class NodeSerializer(s.Serializer):
    id = s.CharField(help_text="event:<source>/<detail-type>, fn:<name> or sm:<name>")
    kind = s.ChoiceField(choices=["event", "fn", "state_machine"])
    label = s.CharField()
    count = s.IntegerField()
    sink = s.BooleanField()
    unknown = s.BooleanField()
    drift = s.IntegerField(
        required=False,
        help_text="event types only: fields added, removed or changed in type against the window "
        "of equal length just before (events.domain.drift)",
    )
    failed = s.IntegerField(
        required=False, help_text="functions only: runs going when their job failed"
    )
    failure_rate = s.FloatField(
        required=False, allow_null=True, help_text="functions only: failed / count, 0..1"
    )


class EdgeSerializer(s.Serializer):
    source = s.CharField()
    target = s.CharField()
    count = s.IntegerField()
    p50_ms = s.IntegerField(allow_null=True)
    p95_ms = s.IntegerField(allow_null=True)


class ArchitectureSerializer(s.Serializer):
    nodes = NodeSerializer(many=True)
    edges = EdgeSerializer(many=True)
    failures_sampled = s.BooleanField(
        required=False, help_text="more failed jobs than were read for the failure rates"
    )


class ErrorCountSerializer(s.Serializer):
    error = s.CharField(allow_null=True)
    count = s.IntegerField()


class MetricsRowSerializer(s.Serializer):
    started = s.IntegerField(help_text="jobs started in the bucket")
    succeeded = s.IntegerField(help_text="jobs that succeeded in the bucket")
    failed = s.IntegerField(help_text="jobs that failed, timed out or were aborted in the bucket")
    p50_ms = s.IntegerField(allow_null=True, help_text="of the jobs finished in the bucket")
    p95_ms = s.IntegerField(allow_null=True, help_text="of the jobs finished in the bucket")
    p99_ms = s.IntegerField(allow_null=True, help_text="of the jobs finished in the bucket")
    failure_rate = s.FloatField(
        allow_null=True, help_text="failed / (succeeded + failed), 0..1; null: none finished"
    )
    errors = ErrorCountSerializer(many=True, help_text="failures by error, most first")


class MetricsBucketSerializer(MetricsRowSerializer):
    start = s.DateTimeField()
    end = s.DateTimeField()


class MetricsSerializer(s.Serializer):
    state_machine = s.CharField()
    since = s.DateTimeField(help_text="the first bucket's start")
    until = s.DateTimeField(help_text="the last bucket's end")
    bucket = s.CharField(help_text="e.g. 15m, 1h, 1d")
    bucket_auto = s.BooleanField(help_text="no bucket was asked for: this one fits the range")
    buckets = MetricsBucketSerializer(many=True)
    total = MetricsRowSerializer()


class StepSideSerializer(s.Serializer):
    start = s.DateTimeField()
    end = s.DateTimeField(allow_null=True)
    duration_ms = s.IntegerField(allow_null=True)
    skew_ms = s.IntegerField(allow_null=True, help_text="clocks that disagree: no duration")
    status = s.ChoiceField(["ok", "failed", "pending"])
    start_event = s.CharField(allow_null=True)
    end_event = s.CharField(allow_null=True)
    skew_ms = s.IntegerField(allow_null=True, help_text="clock skew between the span's two ends")
    why = s.CharField(allow_null=True, help_text="why the duration cannot be compared or summed")


class FieldChangeSerializer(s.Serializer):
    path = s.CharField(help_text="dot-separated path into the detail")
    a = s.JSONField(allow_null=True, help_text="null when absent")
    b = s.JSONField(allow_null=True, help_text="null when absent")


class StepSerializer(s.Serializer):
    state = s.CharField(allow_null=True, help_text="the state the step ran in, if known")
    colour = s.IntegerField(allow_null=True, help_text="its state's colour, as in the timeline")
    lane = s.CharField(help_text="the fn, or `awaiting <detail-type>`")
    n = s.IntegerField(help_text="the step's rank in its lane in a, from 0")
    n_b = s.IntegerField(help_text="the step's rank in its lane in b, from 0")
    item = s.CharField(
        allow_null=True, help_text="what a repeated step (Map iteration) worked on: paired by it"
    )
    a = StepSideSerializer()
    b = StepSideSerializer()
    diff_ms = s.IntegerField(
        allow_null=True, help_text="b's duration minus a's; null when either cannot be compared"
    )
    why = s.CharField(allow_null=True, help_text="why diff_ms is null (pending, clock skew)")
    fields = FieldChangeSerializer(many=True)


class LoneStepSerializer(StepSideSerializer):
    state = s.CharField(allow_null=True)
    colour = s.IntegerField(allow_null=True)
    lane = s.CharField()
    n = s.IntegerField()
    item = s.CharField(allow_null=True)


class LeftOutSerializer(s.Serializer):
    state = s.CharField(allow_null=True)
    lane = s.CharField()
    n = s.IntegerField()
    item = s.CharField(allow_null=True)
    why = s.CharField()


class CompareTotalsSerializer(s.Serializer):
    a_ms = s.IntegerField(help_text="a's comparable matched steps, summed")
    b_ms = s.IntegerField(help_text="b's comparable matched steps, summed")
    diff_ms = s.IntegerField()
    steps = s.IntegerField(help_text="matched steps in the sums")
    left_out = LeftOutSerializer(many=True, help_text="matched steps not summed, and why")
    only_a = s.IntegerField(help_text="steps only a has (not summed)")
    only_b = s.IntegerField(help_text="steps only b has (not summed)")


class CompareSerializer(s.Serializer):
    a = JobSummarySerializer()
    b = JobSummarySerializer()
    steps = StepSerializer(many=True)
    only_a = LoneStepSerializer(many=True)
    only_b = LoneStepSerializer(many=True)
    totals = CompareTotalsSerializer()


class ExportSerializer(s.Serializer):
    job = JobSummarySerializer()
    events = EventSerializer(many=True)


class MovedEdgeSerializer(s.Serializer):
    source = s.CharField()
    target = s.CharField()
    count = s.IntegerField()
    base_count = s.IntegerField()
    p95_ms = s.IntegerField()
    base_p95_ms = s.IntegerField()


class ArchitectureDiffSerializer(s.Serializer):
    nodes_added = NodeSerializer(many=True, help_text="Nodes only the window has")
    nodes_removed = NodeSerializer(many=True, help_text="Nodes only the base has, as in the base")
    edges_added = EdgeSerializer(many=True)
    edges_removed = EdgeSerializer(many=True, help_text="As they were in the base")
    edges_moved = MovedEdgeSerializer(
        many=True, help_text="Edges whose p95 moved by more than half of the base's p95"
    )
    comparable = s.BooleanField(
        help_text="false: the base holds no events, so nothing is compared (every list empty)"
    )

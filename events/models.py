from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, URLValidator
from django.db import models
from django.utils import timezone

from events.webhooks import form_error


class Team(models.Model):
    """A group of users granted the events of some AWS accounts."""

    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)

    def __str__(self) -> str:
        return self.name


# Exactly 12 ASCII digits: `\d` and str.isdigit() would take other scripts' digits too.
account_validator = RegexValidator(r"^[0-9]{12}\Z", "An AWS account id is exactly 12 digits 0-9.")


class TeamAccount(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="accounts")
    account = models.CharField(
        max_length=12, help_text="12-digit AWS account id", validators=[account_validator]
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "account"], name="team_account_unique")
        ]

    def __str__(self) -> str:
        return self.account


class Job(models.Model):
    """One execution's summary, kept current on ingest (see events.summary)."""

    id = models.CharField(primary_key=True, max_length=400)
    execution_arn = models.CharField(max_length=600, blank=True, default="")
    state_machine = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    account = models.CharField(max_length=12)
    region = models.CharField(max_length=40)
    status = models.CharField(max_length=20, blank=True, default="")
    status_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    cause = models.TextField(blank=True, default="")
    first_event_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    event_count = models.PositiveIntegerField(default=0)
    latest_event = models.ForeignKey(
        "Event", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Execution shapes (DESIGN section 10): the job id of the execution that started this one
    # ("" when unknown), and the runs of a redriven execution (events.summary).
    parent = models.CharField(max_length=400, blank=True, default="")
    attempts = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["-last_event_at", "-id"], name="job_latest"),
            # A parent's children (nested executions and Map Runs on the parent's page).
            models.Index(fields=["parent", "-last_event_at"], name="job_parent_latest"),
            models.Index(fields=["account", "-last_event_at"], name="job_account_latest"),
            models.Index(fields=["name", "-last_event_at"], name="job_name_latest"),
            # A state machine's jobs over a window (metrics, baselines): bench/search.py.
            models.Index(fields=["state_machine", "-last_event_at"], name="job_machine_latest"),
        ]

    def __str__(self) -> str:
        return self.id


class Event(models.Model):
    """One EventBridge envelope, stored once per account and envelope id."""

    seq = models.BigAutoField(primary_key=True, help_text="arrival order")
    event_id = models.CharField(max_length=128)
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    source = models.CharField(max_length=256)
    detail_type = models.CharField(max_length=256)
    account = models.CharField(max_length=12)
    region = models.CharField(max_length=40)
    time = models.DateTimeField(help_text="the envelope's time (whole seconds)")
    at = models.DateTimeField(help_text="when it happened, from its best clock (events.clock)")
    at_source = models.CharField(max_length=16, default="envelope")
    received_at = models.DateTimeField()
    fn = models.CharField(max_length=200, blank=True, default="")
    raw = models.JSONField(help_text="the envelope exactly as received")
    # What free-text search (`q`) matches, folded as events.search.search_text makes it:
    # PostgreSQL indexes it by trigrams (migration 0007); the search checks `raw` again.
    search_text = models.TextField(default="", editable=False)
    # Which ingest call inserted the row: lets concurrent workers tell their inserts apart.
    batch = models.UUIDField(db_index=False)

    class Meta:
        indexes = [
            models.Index(fields=["job", "at", "seq"], name="event_job_order"),
            models.Index(fields=["time"], name="event_time"),
            models.Index(fields=["received_at"], name="event_arrival"),
            models.Index(fields=["account", "time"], name="event_account_time"),
            models.Index(fields=["source", "detail_type"], name="event_type"),
        ]
        constraints = [
            # Envelope ids are unique per account only: another account may reuse one.
            models.UniqueConstraint(fields=["account", "event_id"], name="event_once_per_account")
        ]
        permissions = [("replay_event", "Can replay events and jobs to a bus (events.replay)")]

    def __str__(self) -> str:
        return f"{self.detail_type} {self.event_id}"


class RejectedMessage(models.Model):
    """An SQS message whose body was not a valid envelope, kept for inspection."""

    body = models.TextField()
    reason = models.TextField()
    message_id = models.CharField(max_length=128, blank=True, default="")
    receive_count = models.PositiveIntegerField(default=1)
    received_at = models.DateTimeField(auto_now_add=True)
    requeued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            # Quarantine is idempotent by SQS message id even when two workers race (an id-less
            # message, e.g. one quarantined by hand, may repeat).
            models.UniqueConstraint(
                fields=["message_id"], condition=~models.Q(message_id=""), name="rejected_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.message_id or 'message'}: {self.reason[:60]}"


class EventConflict(models.Model):
    """A second envelope with the id of a stored event (in its account) and other content.

    The stored event is never overwritten; this keeps the other envelope for an operator
    (admin: Event conflicts), once per distinct content. In the ORM database whatever the
    store, as RejectedMessage."""

    account = models.CharField(max_length=12)
    event_id = models.CharField(max_length=128)
    digest = models.CharField(max_length=64, help_text="SHA-256 of the canonical envelope JSON")
    raw = models.JSONField(help_text="the conflicting envelope as received")
    message_id = models.CharField(max_length=128, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "event_id", "digest"], name="event_conflict_once"
            )
        ]

    def __str__(self) -> str:
        return f"conflict on {self.account}/{self.event_id}"


class DeliveryFailure(models.Model):
    """Why the last attempt to handle an SQS message failed, while the message waits for its
    redelivery: kept so that a message SQS gives up on reaches admin with its real reason
    (events.services.dead_letter_import); removed once the message is handled or imported."""

    message_id = models.CharField(primary_key=True, max_length=128)
    reason = models.TextField()
    failed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.message_id}: {self.reason[:60]}"


class Connection(models.Model):
    """A live WebSocket connection (written by the consumers)."""

    channel_name = models.CharField(max_length=200, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    path = models.CharField(max_length=500)
    job_id = models.CharField(max_length=400, blank=True, default="")
    client = models.CharField(max_length=100, blank=True, default="")
    user_agent = models.CharField(max_length=500, blank=True, default="")
    server = models.CharField(max_length=100, blank=True, default="")
    connected_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)
    messages_sent = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-connected_at"]

    def __str__(self) -> str:
        return f"{self.user} {self.path}"


class WorkerHeartbeat(models.Model):
    """The latest heartbeat of one consume_events process (events.health).

    In the ORM database whatever the event store, like users and sessions.
    """

    worker = models.CharField(max_length=200, unique=True, help_text="host:pid")
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(help_text="when this row was last written")
    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_batch_at = models.DateTimeField(null=True, blank=True)
    last_batch_size = models.PositiveIntegerField(default=0)
    poll_seconds = models.PositiveIntegerField(default=20)
    backlog = models.IntegerField(null=True, blank=True, help_text="ApproximateNumberOfMessages")
    backlog_at = models.DateTimeField(null=True, blank=True)
    backlog_samples = models.JSONField(default=list, help_text="[[epoch s, messages], ...]")

    def __str__(self) -> str:
        return self.worker


class AlertRule(models.Model):
    """When to post a job (or a failure rate) to a webhook (events.alerts)."""

    FAILED, STUCK, FAILURE_RATE = "failed", "stuck", "failure_rate"
    KINDS = [
        (FAILED, "a job failed"),
        (STUCK, "a job is stuck"),
        (FAILURE_RATE, "failure rate over a window"),
    ]
    SLACK, JSON = "slack", "json"
    FORMATS = [(SLACK, "Slack-compatible text and blocks"), (JSON, "the job summary as JSON")]

    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    state_machine = models.CharField(
        max_length=200, blank=True, default="", help_text="blank: every state machine"
    )
    kind = models.CharField(max_length=20, choices=KINDS, default=FAILED)
    threshold_percent = models.PositiveSmallIntegerField(
        default=10, help_text="failure_rate: fire at or above this share of failed jobs"
    )
    window_minutes = models.PositiveIntegerField(
        default=60, help_text="failure_rate: the jobs finished in the last this many minutes"
    )
    min_jobs = models.PositiveIntegerField(
        default=5, help_text="failure_rate: judge only with at least this many finished jobs"
    )
    webhook_url = models.URLField(
        max_length=1000, validators=[URLValidator(schemes=["http", "https"])]
    )
    format = models.CharField(max_length=10, choices=FORMATS, default=SLACK)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules",
        help_text="sees only the accounts granted to this team; blank: every account "
        "(superusers only)",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    enabled_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="when it was last enabled: it never fires for jobs that ended before",
    )  # fmt: skip

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        """Enabling (or creating enabled) starts the rule's watch now; disabling ends it, so
        enabling again never fires for the jobs that ended meanwhile (no backfill)."""
        if not self.enabled:
            self.enabled_at = None
        elif self.enabled_at is None:
            self.enabled_at = timezone.now()
        if kwargs.get("update_fields") is not None and "enabled" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "enabled_at"}
        super().save(*args, **kwargs)

    @property
    def watching_since(self) -> datetime:
        """Jobs that ended before this are not the rule's to fire for."""
        return self.enabled_at or self.created_at

    def clean(self):
        """A webhook into edobs's own network is refused here as well as at delivery (SSRF:
        events.webhooks); an invalid URL is left to the field's own validator. A failure-rate
        rule needs a threshold of 1 to 100 % and a window (the admin's and the pages' forms)."""
        errors = {}
        if self.webhook_url.startswith(("http://", "https://")):
            if error := form_error(self.webhook_url):
                errors["webhook_url"] = error
        if self.kind == self.FAILURE_RATE:
            if not 1 <= (self.threshold_percent or 0) <= 100:
                errors["threshold_percent"] = "must be 1 to 100"
            if not self.window_minutes:
                errors["window_minutes"] = "must be at least 1"
        if errors:
            raise ValidationError(errors)


class AlertFiring(models.Model):
    """A rule fired: once per rule and job (failure_rate: once per rule and window period).
    `body` is what every delivery attempt posts.

    Grouping (EDOBS_ALERT_GROUP_SECONDS): the first job a rule fires for in a group window
    leads the group: it is posted once the window ends (`group_until`), its body naming the
    `count` jobs of the group and the first of them. The jobs that join it are recorded with
    `lead` set and the state GROUPED: they are never posted on their own."""

    PENDING, DELIVERED, GAVE_UP, GROUPED = "pending", "delivered", "gave_up", "grouped"
    STATES = [(PENDING, "pending"), (DELIVERED, "delivered"), (GAVE_UP, "gave up"),
              (GROUPED, "posted with its group")]  # fmt: skip

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="firings")
    key = models.CharField(max_length=400, help_text="the job id, or window:<start>")
    job_id = models.CharField(max_length=400, blank=True, default="")
    account = models.CharField(max_length=12, blank=True, default="")
    state_machine = models.CharField(max_length=200, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    body = models.TextField(help_text="the JSON posted")
    fired_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=STATES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lead = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="members",
        help_text="the firing this one is posted with (its group's first)",
    )  # fmt: skip
    count = models.PositiveIntegerField(default=1, help_text="jobs in the group it leads")
    group_until = models.DateTimeField(
        null=True, blank=True, help_text="its group takes jobs until then, then it is posted"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "key"], name="alert_once_per_rule_and_job")
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="alert_due")]

    def __str__(self) -> str:
        return f"{self.rule}: {self.key}"


class AlertDelivery(models.Model):
    """One attempt to post a firing, with the answer it got."""

    firing = models.ForeignKey(AlertFiring, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveIntegerField()
    at = models.DateTimeField()
    status = models.PositiveIntegerField(null=True, blank=True, help_text="HTTP status")
    response = models.TextField(blank=True, default="", help_text="the answer's first bytes")
    error = models.TextField(blank=True, default="")
    next_retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["firing", "attempt"]
        verbose_name_plural = "alert deliveries"

    def __str__(self) -> str:
        return f"{self.firing} #{self.attempt}"


class Replay(models.Model):
    """One replay of an event or a job's events to a bus (events.replay): who, when, what, and
    how it went. Written once by the replay service, read-only in the admin."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, help_text="kept if the user is deleted")
    created_at = models.DateTimeField(auto_now_add=True)
    # What ingest checks a replayed event's `meta.replayOf` against before it stores the event
    # under the original account (events.replay.origin_accounts): the short id the replayed
    # events carry, and the original envelope ids this replay put back on the bus.
    short = models.CharField(max_length=16, blank=True, default="", db_index=True)
    originals = models.JSONField(default=list, blank=True, help_text="original event ids sent")
    # Beside each original, the digest of the detail put for it (replay_marks.replayed_digest):
    # a replayed event claims the original's account only with that very content.
    digests = models.JSONField(default=list, blank=True, help_text="digests of the details sent")
    event_id = models.CharField(max_length=128, blank=True, default="")
    job_id = models.CharField(max_length=400, blank=True, default="")
    account = models.CharField(max_length=12)
    new_job = models.CharField(max_length=400, blank=True, default="", help_text="the replay's job")
    bus = models.CharField(max_length=1600)
    dry_run = models.BooleanField(default=False)
    entries = models.PositiveIntegerField(default=0, help_text="events to put on the bus")
    skipped = models.PositiveIntegerField(default=0, help_text="events not replayable (aws.*)")
    sent = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        what = f"job {self.job_id}" if self.job_id else f"event {self.event_id}"
        return f"replay of {what} by {self.username}"


class ArchitectureRollup(models.Model):
    """What the events of one time bucket add to the architecture (events.rollups), kept at
    ingest in the transaction that stores the events."""

    key = models.CharField(max_length=40, unique=True, help_text="digest of the fields below")
    width = models.PositiveIntegerField(help_text="bucket width, seconds (60 or 3600)")
    bucket = models.BigIntegerField(help_text="epoch seconds: start of the bucket of the time")
    account = models.CharField(max_length=12)
    state_machine = models.CharField(max_length=200, blank=True, default="")
    kind = models.CharField(max_length=8, help_text="event, fn, edge or job")
    source = models.TextField()
    target = models.TextField(blank=True, default="")
    count = models.BigIntegerField(default=0)
    sketch = models.JSONField(null=True, blank=True, help_text="latency sketch (events.sketch)")

    class Meta:
        indexes = [models.Index(fields=["width", "bucket", "kind"], name="rollup_bucket")]

    def __str__(self) -> str:
        start = datetime.fromtimestamp(self.bucket, UTC)
        return f"{start:%Y-%m-%d %H:%M} {self.kind} {self.source} {self.target}"


class PendingSpan(models.Model):
    """A stored end of a span whose trigger (named by `meta.incoming.id`) is not stored yet:
    its latency goes to the rollups when the trigger arrives (events.stores.orm_rollups)."""

    account = models.CharField(max_length=12)
    job = models.CharField(max_length=400)
    wanted = models.CharField(max_length=128, help_text="the trigger's envelope id")
    end_event = models.CharField(max_length=128)
    time = models.DateTimeField(help_text="the end event's envelope time (its buckets)")
    at = models.DateTimeField(help_text="the end event's best clock")
    received_at = models.DateTimeField()
    state_machine = models.CharField(max_length=200, blank=True, default="")
    edges = models.JSONField(help_text="[[source, target], ...] the span's edges")

    class Meta:
        indexes = [models.Index(fields=["job", "wanted"], name="pending_trigger")]
        constraints = [
            models.UniqueConstraint(fields=["account", "end_event"], name="pending_once")
        ]

    def __str__(self) -> str:
        return f"{self.end_event} waits for {self.wanted}"


class UserPreference(models.Model):
    """What one user chose once for every page: times in UTC (the default) or in the browser's
    own time zone. Kept per user, not per browser, so a second device shows the same."""

    UTC = "utc"
    LOCAL = "local"
    TIME_ZONES = [(UTC, "UTC"), (LOCAL, "Local time")]

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="edobs_preference"
    )
    time_zone = models.CharField(max_length=8, choices=TIME_ZONES, default=UTC)

    def __str__(self) -> str:
        return f"{self.user}: {self.time_zone}"

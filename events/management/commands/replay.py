"""Replay a job's events, or one event, to a bus from the command line (events.replay.send).

Acts as --user: that user needs the events.replay_event permission and must be able to see the
job or event, exactly as through the API; the replay is recorded under their name.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from events.read import selectors
from events.replay import send as replay


class Command(BaseCommand):
    help = "Put a job's events (or one event) back on a bus as a new linked job; --dry-run first"

    def add_arguments(self, parser) -> None:
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--job", help="a job id or short form")
        what.add_argument("--event", help="an envelope id")
        parser.add_argument("--account", help="the event's account, if its id is in several")
        parser.add_argument("--bus", default=settings.EDOBS_BUS_NAME, help="bus name or ARN")
        parser.add_argument("--user", required=True, help="who replays (needs the permission)")
        parser.add_argument("--dry-run", action="store_true", help="say what would be sent")

    def handle(self, *args, **options) -> None:
        user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
        if user is None or not user.has_perm(replay.PERMISSION):
            raise CommandError(f"{options['user']} may not replay ({replay.PERMISSION})")
        if not replay.bus_allowed(options["bus"]):
            raise CommandError(replay.bus_refusal(options["bus"]))
        job, events, event_id = self._what(user, options)
        record, outcome = replay.replay_record(
            user=user, events=events, job=job, event_id=event_id, bus=options["bus"],
            dry_run=options["dry_run"],
        )  # fmt: skip
        verb = "would put" if record.dry_run else f"sent {record.sent} of"
        self.stdout.write(
            f"replay {record.pk}: {verb} {record.entries} events on {record.bus} "
            f"(skipped {record.skipped}, failed {record.failed}) as job {record.new_job or '-'}"
        )
        if record.error:
            self.stderr.write(record.error)

    def _what(self, user, options):
        if options["job"]:
            job = selectors.job_get(user=user, job_id=options["job"])
            if job is None:
                raise CommandError("job not found")
            return job, selectors.job_event_list(user=user, job=job), ""
        try:
            event = selectors.event_get(
                user=user, event_id=options["event"], account=options["account"]
            )
        except selectors.AmbiguousEvent as exc:
            raise CommandError(f"name the --account: the id is an event of {exc}") from None
        if event is None:
            raise CommandError("event not found")
        return None, [event], event.id

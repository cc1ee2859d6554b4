from django.core.management.base import BaseCommand

from edobs_site.startup import freeze_startup_objects
from events.ingest.worker import Worker
from events.management.stopping import stopped_by_signals


class Command(BaseCommand):
    help = "Long-poll the SQS queue, store events idempotently, delete what was stored."

    def add_arguments(self, parser):
        parser.add_argument(
            "--once", action="store_true", help="drain what is queued now, then exit"
        )
        parser.add_argument(
            "--wait", type=int, default=20, choices=range(0, 21), metavar="0-20",
            help="long-poll seconds per receive (default 20)",
        )  # fmt: skip

    def handle(self, *args, once: bool, wait: int, **options):
        with stopped_by_signals(
            lambda: self.stderr.write("stopping after the batch in hand ...")
        ) as stop:
            worker = Worker(wait_seconds=wait, stop=stop)
            freeze_startup_objects()
            totals = worker.run(once=once)
        self.stdout.write(totals.summary())

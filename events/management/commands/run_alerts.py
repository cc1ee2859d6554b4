from django.core.management.base import BaseCommand

from events.alerts.runner import AlertRunner
from events.management.stopping import stopped_by_signals


class Command(BaseCommand):
    help = "Evaluate the alert rules every few seconds and post their firings to the webhooks."

    def add_arguments(self, parser):
        parser.add_argument(
            "--once", action="store_true",
            help="evaluate once, make the deliveries due now, then exit",
        )  # fmt: skip

    def handle(self, *args, once: bool, **options):
        with stopped_by_signals(
            lambda: self.stderr.write("stopping after the attempts in hand ...")
        ) as stop:
            totals = AlertRunner(stop).run(once=once)
        self.stdout.write(totals.summary())

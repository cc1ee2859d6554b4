import signal
import threading

from django.core.management.base import BaseCommand

from events.alerts.runner import AlertRunner


class Command(BaseCommand):
    help = "Evaluate the alert rules every few seconds and post their firings to the webhooks."

    def add_arguments(self, parser):
        parser.add_argument(
            "--once", action="store_true",
            help="evaluate once, make the deliveries due now, then exit",
        )  # fmt: skip

    def handle(self, *args, once: bool, **options):
        stop = threading.Event()
        # Restored afterwards: call_command (tests) must not keep our handlers.
        previous = {
            signum: signal.signal(signum, lambda *_: self._stop(stop))
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            totals = AlertRunner(stop).run(once=once)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write(totals.summary())

    def _stop(self, stop: threading.Event) -> None:
        if not stop.is_set():
            self.stderr.write("stopping after the attempts in hand ...")
        stop.set()

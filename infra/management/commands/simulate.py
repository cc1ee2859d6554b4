import signal
import sys
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from events.aws import events_client
from infra.traffic_send import run_traffic


class Command(BaseCommand):
    help = "Put the demo workflow's traffic on the bus (DESIGN section 7)."

    def add_arguments(self, parser):
        parser.add_argument("--jobs", type=int, default=10, help="jobs; 0: until stopped")
        parser.add_argument("--concurrency", type=int, default=3, help="jobs running at once")
        parser.add_argument("--fail-rate", type=float, default=0.1, help="share of jobs that fail")
        parser.add_argument("--speed", type=float, default=1.0, help="time compression; 0: none")
        parser.add_argument("--seed", type=int, default=None, help="same seed, same traffic")

    def handle(self, *args, jobs, concurrency, fail_rate, speed, seed, **options):
        if jobs < 0 or concurrency < 1 or not 0 <= fail_rate <= 1:
            raise CommandError("need --jobs >= 0, --concurrency >= 1 and 0 <= --fail-rate <= 1")
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        started = time.monotonic()
        stats = run_traffic(
            client=events_client(),
            bus_name=settings.EDOBS_BUS_NAME,
            jobs=jobs,
            concurrency=concurrency,
            fail_rate=fail_rate,
            speed=speed,
            seed=seed,
            account=settings.EDOBS_ACCOUNT,
            on_progress=self._progress,
            stop_event=stop,
        )
        sys.stderr.write("\n")
        self.stdout.write(
            f"sent {stats.events_sent} events for {stats.jobs_done} jobs "
            f"in {time.monotonic() - started:.1f}s (seed {stats.seed})"
        )

    def _progress(self, events_sent: int, jobs_done: int) -> None:
        sys.stderr.write(f"\r{events_sent} events sent, {jobs_done} jobs done")
        sys.stderr.flush()

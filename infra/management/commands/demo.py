from django.core.management import call_command
from django.core.management.base import BaseCommand

from infra.demo import DEMO_USER, Demo, ensure_demo_user


class Command(BaseCommand):
    help = "Run everything in one process: embedded AWS, worker, demo traffic, the dashboard."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--store", choices=["orm", "dynamodb"], default="orm")
        parser.add_argument("--concurrency", type=int, default=3, help="jobs running at once")
        parser.add_argument("--fail-rate", type=float, default=0.15)
        parser.add_argument("--speed", type=float, default=1.0, help="traffic time compression")

    def handle(self, *args, host, port, store, concurrency, fail_rate, speed, **options):
        demo = Demo(store=store, concurrency=concurrency, fail_rate=fail_rate, speed=speed)
        self.stdout.write(f"embedded AWS emulator on {demo.start_emulator()}")
        call_command("migrate", interactive=False, verbosity=0)
        # The static files as production serves them: hashed, gzipped, cached (README).
        call_command("collectstatic", interactive=False, verbosity=0)
        ensure_demo_user()
        for change in demo.provision().changes:
            self.stdout.write(str(change))
        demo.start_worker()
        demo.start_alerts(f"http://{host}:{port}")
        demo.start_traffic()
        self._banner(host, port, store)
        try:
            self._serve(host, port)
        finally:
            self.stdout.write("stopping: worker, traffic, emulator ...")
            demo.shutdown()

    def _banner(self, host: str, port: int, store: str) -> None:
        line = "=" * 64
        self.stdout.write(
            f"{line}\n  edobs demo ({store} store) on http://{host}:{port}/\n"
            f"  log in as  {DEMO_USER} / {DEMO_USER}\n  Ctrl-C stops everything\n{line}"
        )

    def _serve(self, host: str, port: int) -> None:
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from edobs_site.asgi import application

        Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=True,
            verbosity=0,
        ).run()

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from events.models import Event, Job
from events.stores.orm.rebuild import rebuild_jobs


class Command(BaseCommand):
    help = "Recompute every job of the ORM store from its stored events (after an upgrade)."

    def handle(self, *args, **options):
        if settings.EDOBS_STORE != "orm":
            raise CommandError("rebuild_jobs works on the ORM store (EDOBS_STORE=orm)")
        count = rebuild_jobs(
            event_model=Event,
            job_model=Job,
            progress=lambda n: self.stdout.write(f"  {n} events read"),
        )
        self.stdout.write(self.style.SUCCESS(f"rebuilt {count} jobs"))

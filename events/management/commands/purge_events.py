from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from events.stores import get_store


class Command(BaseCommand):
    help = "Delete events older than the retention (EDOBS_RETENTION_HOURS)."

    def add_arguments(self, parser):
        parser.add_argument("--hours", type=int, default=None, help="override the retention")

    def handle(self, *args, hours: int | None, **options):
        hours = hours or settings.EDOBS_RETENTION_HOURS
        before = datetime.now(UTC) - timedelta(hours=hours)
        deleted = get_store().purge(before=before)
        self.stdout.write(f"deleted {deleted} events older than {before:%Y-%m-%d %H:%M}Z")

from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from events.stores.orm.rollups import rebuild


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--since: not an ISO-8601 time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Recompute the architecture rollups of the ORM store from its stored events (after a "
        "purge by hand, a restore or an upgrade that changes the rules)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since", type=_moment, default=None,
            help="only events from the hour of this time on (ISO-8601); default: every event",
        )  # fmt: skip

    def handle(self, *args, since: datetime | str | None, **options):
        if isinstance(since, str):  # given to call_command as text
            since = _moment(since)
        if settings.EDOBS_STORE != "orm":
            raise CommandError("rebuild_rollups works on the ORM store (EDOBS_STORE=orm)")
        count = rebuild(since=since, progress=lambda n: self.stdout.write(f"  {n} events read"))
        self.stdout.write(self.style.SUCCESS(f"rebuilt the rollups of {count} events"))

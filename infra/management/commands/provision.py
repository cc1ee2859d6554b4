from django.conf import settings
from django.core.management.base import BaseCommand

from events.aws import dynamodb_client, events_client, sqs_client
from infra.provision import Plan, provision


class Command(BaseCommand):
    help = "Create or update the bus rule, queue, dead-letter queue and (DynamoDB store) table."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
        parser.add_argument(
            "--status-events", action="store_true",
            help="also forward Step Functions status events (source aws.states)",
        )  # fmt: skip
        parser.add_argument(
            "--table", action="store_true", help="create the DynamoDB table even with the ORM store"
        )

    def handle(self, *args, dry_run: bool, status_events: bool, table: bool, **options):
        plan = Plan(
            queue_name=_queue_name(),
            bus_name=settings.EDOBS_BUS_NAME,
            sources=settings.EDOBS_RULE_SOURCES,
            table_name=settings.EDOBS_TABLE_NAME if table or _dynamo() else None,
            with_status_events=status_events,
            dry_run=dry_run,
        )
        target = settings.AWS_ENDPOINT_URL or f"AWS ({settings.AWS_DEFAULT_REGION})"
        self.stdout.write(f"{'Planning' if dry_run else 'Provisioning'} on {target}:")
        dynamodb = dynamodb_client() if plan.table_name else None
        provision(plan, sqs=sqs_client(), events=events_client(), dynamodb=dynamodb)
        for change in plan.changes:
            self.stdout.write(str(change))


def _dynamo() -> bool:
    return settings.EDOBS_STORE == "dynamodb"


def _queue_name() -> str:
    if settings.EDOBS_QUEUE_URL:
        return settings.EDOBS_QUEUE_URL.rstrip("/").rsplit("/", 1)[-1]
    return settings.EDOBS_QUEUE_NAME

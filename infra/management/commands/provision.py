from argparse import ArgumentTypeError

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from events.aws import dynamodb_client, events_client, sqs_client
from infra.bus_policy import InvalidSource, parse_accounts, parse_organization
from infra.provision import Plan, provision


class Command(BaseCommand):
    help = (
        "Create or update the bus rule, queue, dead-letter queue, (DynamoDB store) table and the "
        "bus policy admitting other accounts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
        parser.add_argument(
            "--status-events", action="store_true",
            help="also forward Step Functions status events (source aws.states)",
        )  # fmt: skip
        parser.add_argument(
            "--table", action="store_true", help="create the DynamoDB table even with the ORM store"
        )
        parser.add_argument(
            "--source-accounts", type=_as_argument(parse_accounts), metavar="A,B",
            help="12-digit ids of the accounts whose events the bus admits (EDOBS_SOURCE_ACCOUNTS)",
        )  # fmt: skip
        parser.add_argument(
            "--organization", type=_as_argument(parse_organization), metavar="o-xxxxxxxxxx",
            help="admit every account of this AWS Organization (EDOBS_ORGANIZATION_ID)",
        )  # fmt: skip

    def handle(self, *args, dry_run: bool, status_events: bool, table: bool, **options):
        accounts, organization = _sources(options["source_accounts"], options["organization"])
        plan = Plan(
            queue_name=_queue_name(),
            bus_name=settings.EDOBS_BUS_NAME,
            sources=settings.EDOBS_RULE_SOURCES,
            table_name=settings.EDOBS_TABLE_NAME if table or _dynamo() else None,
            with_status_events=status_events,
            source_accounts=accounts,
            organization_id=organization,
            dry_run=dry_run,
        )
        target = settings.AWS_ENDPOINT_URL or f"AWS ({settings.AWS_DEFAULT_REGION})"
        self.stdout.write(f"{'Planning' if dry_run else 'Provisioning'} on {target}:")
        dynamodb = dynamodb_client() if plan.table_name else None
        provision(plan, sqs=sqs_client(), events=events_client(), dynamodb=dynamodb)
        for change in plan.changes:
            self.stdout.write(str(change))


def _as_argument(parse):
    def convert(text: str):
        try:
            return parse(text)
        except InvalidSource as exc:
            raise ArgumentTypeError(str(exc)) from None

    return convert


def _sources(accounts: list[str] | None, organization: str | None) -> tuple[list[str], str]:
    """The flags, else the settings (validated the same way: call_command skips system checks)."""
    try:
        if accounts is None and settings.EDOBS_SOURCE_ACCOUNTS:
            accounts = parse_accounts(",".join(settings.EDOBS_SOURCE_ACCOUNTS))
        if organization is None and settings.EDOBS_ORGANIZATION_ID:
            organization = parse_organization(settings.EDOBS_ORGANIZATION_ID)
    except InvalidSource as exc:
        raise CommandError(f"EDOBS_SOURCE_ACCOUNTS / EDOBS_ORGANIZATION_ID: {exc}") from None
    return accounts or [], organization or ""


def _dynamo() -> bool:
    return settings.EDOBS_STORE == "dynamodb"


def _queue_name() -> str:
    if settings.EDOBS_QUEUE_URL:
        return settings.EDOBS_QUEUE_URL.rstrip("/").rsplit("/", 1)[-1]
    return settings.EDOBS_QUEUE_NAME

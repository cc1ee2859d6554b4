import json

from django.core.management.base import BaseCommand, CommandError

from events.aws import queue_url, sqs_client
from events.ingest.services import dead_letter_import


class Command(BaseCommand):
    help = (
        "Move the messages of the queue's dead-letter queue into admin's rejected messages "
        "(reason 'dead-letter queue'), where they can be read and requeued."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dlq-url", default="", help="the DLQ (default: the queue's redrive policy target)"
        )

    def handle(self, *args, dlq_url: str, **options):
        client = sqs_client()
        url = dlq_url or _dead_letter_url(client)
        count = dead_letter_import(client=client, dlq_url=url)
        self.stdout.write(f"imported {count} dead letters from {url}")


def _dead_letter_url(client) -> str:
    """The DLQ named by the main queue's RedrivePolicy."""
    attributes = client.get_queue_attributes(QueueUrl=queue_url(client), AttributeNames=["All"])
    policy = attributes["Attributes"].get("RedrivePolicy")
    if not policy:
        raise CommandError("the queue has no redrive policy: pass --dlq-url")
    name = json.loads(policy)["deadLetterTargetArn"].rsplit(":", 1)[1]
    return client.get_queue_url(QueueName=name)["QueueUrl"]

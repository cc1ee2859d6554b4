"""A message nobody manages to handle goes to the DLQ after maxReceiveCount and shows in admin."""

from __future__ import annotations

import json
import time

import pytest
from django.core.management import call_command

from events.models import RejectedMessage
from infra.provision import MAX_RECEIVE_COUNT

from .harness import Outcome, record

POISON = json.dumps({"version": "0", "id": "poison-0001", "detail": "never handled"})


def _receive_without_deleting(queues, times: int) -> None:
    """A consumer that keeps failing: it takes the message and never deletes it."""
    client = queues.client()
    for _ in range(times):
        response = client.receive_message(
            QueueUrl=queues.url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        assert [m["Body"] for m in response.get("Messages", [])] == [POISON]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_moves_a_poison_message_to_the_dlq_and_shows_it_in_admin(
    queues_factory, admin_client, settings
):
    started = time.monotonic()
    queues = queues_factory(visibility=1)
    client = queues.client()
    message_id = client.send_message(QueueUrl=queues.url, MessageBody=POISON)["MessageId"]
    _receive_without_deleting(queues, MAX_RECEIVE_COUNT)
    # The next receive finds the count spent: SQS moves the message to the DLQ instead.
    assert client.receive_message(QueueUrl=queues.url, VisibilityTimeout=0).get("Messages") is None
    assert queues.depth(queues.dlq_url) == (1, 0)

    settings.AWS_ENDPOINT_URL = queues.endpoint
    settings.EDOBS_QUEUE_URL = queues.url
    call_command("import_dead_letters")  # finds the DLQ from the queue's redrive policy
    call_command("import_dead_letters")  # nothing left: no second row

    row = RejectedMessage.objects.get()
    assert (row.message_id, row.body, row.reason) == (message_id, POISON, "dead-letter queue")
    assert row.receive_count > MAX_RECEIVE_COUNT - 1
    assert queues.depth(queues.dlq_url) == (0, 0)
    assert queues.depth() == (0, 0)
    response = admin_client.get("/admin/events/rejectedmessage/")
    assert response.status_code == 200
    assert message_id in response.content.decode()
    assert "dead-letter queue" in response.content.decode()
    record(
        Outcome(
            scenario="poison_message_to_dlq", events_sent=0, duplicate_copies_sent=0,
            malformed_sent=1, stored=0, stored_twice=0, duplicates_dropped=0, quarantined=1,
            lost=0, queue_left=0, dlq_left=0,
            elapsed_seconds=round(time.monotonic() - started, 1),
            notes=f"received {MAX_RECEIVE_COUNT} times without delete, then in the DLQ, "
            "imported by manage.py import_dead_letters, listed in admin",
        )
    )  # fmt: skip


@pytest.mark.django_db
def test_it_quarantines_a_redelivered_malformed_message_once():
    """A worker killed between the quarantine commit and the delete sees the message again."""
    from events.ingest.services import InboundMessage, event_ingest

    again = InboundMessage(body="not json at all", message_id="m-1", receive_count=2)
    other = InboundMessage(body="not json at all", message_id="m-2")
    event_ingest(messages=[InboundMessage(body="not json at all", message_id="m-1")])
    report = event_ingest(messages=[again, again, other])

    assert report.outcomes == ["quarantined"] * 3
    assert sorted(RejectedMessage.objects.values_list("message_id", flat=True)) == ["m-1", "m-2"]

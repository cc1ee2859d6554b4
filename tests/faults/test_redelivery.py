"""SQS hands the same messages out again and again: each event is still stored exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally

import pytest

from .harness import (
    Counter,
    Producer,
    Queues,
    assert_exact,
    outcome,
    traffic,
    wait_for_drain,
    worker_env,
)

pytestmark = pytest.mark.slow

EVENTS = 1500
RAW_RECEIVES = 3  # per message, below the redrive policy's maxReceiveCount of 5
PACE = 0.2


class Redeliverer(threading.Thread):
    """A consumer that receives and never deletes: each message it takes comes back after the
    visibility timeout (1 s) and SQS delivers it anew, to a worker or to itself again."""

    def __init__(self, queues: Queues) -> None:
        super().__init__(daemon=True, name="fault-redeliverer")
        self.queues = queues
        self.seen: Tally[str] = Tally()
        self.stop = threading.Event()

    def run(self) -> None:
        """One receive every PACE seconds while traffic flows, so redeliveries spread over it."""
        client = self.queues.client()
        while not self.stop.wait(PACE):
            response = client.receive_message(
                QueueUrl=self.queues.url, MaxNumberOfMessages=10, VisibilityTimeout=1
            )
            for message in response.get("Messages", []):
                self.seen[message["MessageId"]] += 1
            if self.seen and max(self.seen.values()) >= RAW_RECEIVES:
                return  # any more could push a message into the DLQ


def test_it_stores_once_what_sqs_delivers_many_times(
    queues_factory, sqlite_url, tmp_path, start_workers
):
    started = time.monotonic()
    queues = queues_factory(visibility=1)
    sent = traffic(events=EVENTS, seed=51)
    counter = Counter(sqlite_url)
    workers = start_workers(worker_env(queues=queues, var_dir=tmp_path, database_url=sqlite_url), 2)
    producer = Producer(queues, sent.bodies)
    producer.start()
    redeliverer = Redeliverer(queues)
    redeliverer.start()
    producer.finish()
    redeliverer.stop.set()
    redeliverer.join(10)
    wait_for_drain(
        queues=queues, counter=counter, expected=len(sent.valid_ids), malformed=sent.malformed
    )
    workers.stop()

    result = outcome(
        scenario="sqs_redelivers_many_times", sent=sent, queues=queues, counter=counter,
        workers=workers, started=started,
        notes=f"{len(redeliverer.seen)} messages taken {sum(redeliverer.seen.values())} times "
        "by a consumer that never deletes, each then redelivered",
    )  # fmt: skip
    assert len(workers.summaries) == 2, workers.stderr()
    assert redeliverer.seen  # the fault was injected: each message it took came back
    assert_exact(result, sent, counter)

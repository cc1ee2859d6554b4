"""SQS hands a batch out again while the worker that took it is still storing it: each event is
still stored exactly once, and the copies are dropped as duplicates."""

from __future__ import annotations

import json
import time

import pytest

from .harness import (
    WINDOW_SCALE,
    Counter,
    Producer,
    WriteLock,
    assert_exact,
    batch_in_hand,
    outcome,
    send,
    traffic,
    wait_for_drain,
    wait_until,
    worker_env,
)

pytestmark = pytest.mark.slow

EVENTS = 1500
# Seconds: shorter than the stall, so the batch in hand comes back.  Under load the stream
# after the stall can see a few more redeliveries; they are welcome and counted too.
VISIBILITY = 1


def test_it_stores_once_what_sqs_delivers_again_to_a_second_worker(
    queues_factory, sqlite_url, tmp_path, start_workers
):
    started = time.monotonic()
    queues = queues_factory(visibility=VISIBILITY)
    # No duplicate copies in the traffic: every duplicate the workers drop is a redelivery.
    sent = traffic(events=EVENTS, seed=51, duplicate_rate=0.0, scale=WINDOW_SCALE)
    stalled, rest = _first_valid(sent.bodies, sent.valid_ids, 10)
    counter = Counter(sqlite_url)
    env = worker_env(
        queues=queues, var_dir=tmp_path, database_url=sqlite_url, DATABASE_BUSY_TIMEOUT="300"
    )

    send(queues, stalled)
    with WriteLock(sqlite_url):
        workers = start_workers(env, 1)  # the first worker takes the batch; its store waits
        taken = batch_in_hand(queues)
        # The visibility timeout expires while that worker still holds the batch ...
        assert wait_until(lambda: queues.depth() == (len(stalled), 0)), queues.depth()
        workers.start()  # ... and SQS delivers it again, to the second worker
        retaken = batch_in_hand(queues)
        assert counter.safe_count() == 0  # neither store got through yet
    producer = Producer(queues, rest)
    producer.start()
    producer.finish()
    wait_for_drain(
        queues=queues, counter=counter, expected=len(sent.valid_ids), malformed=sent.malformed
    )
    workers.stop()

    result = outcome(
        scenario="sqs_redelivers_a_batch_in_hand", sent=sent, queues=queues, counter=counter,
        workers=workers, started=started,
        notes=f"a worker held {taken} messages past the {VISIBILITY} s visibility timeout "
        f"(its store waited on a write lock); SQS delivered {retaken} again to a second worker",
    )  # fmt: skip
    assert len(workers.summaries) == 2, workers.stderr()
    # The fault happened: the whole batch handed out again was dropped as duplicates (by which
    # ever worker stored second), not merely some message of the run.
    assert retaken > 0
    assert result.duplicates_dropped >= retaken, result
    assert_exact(result, sent, counter)


def _first_valid(bodies: list[str], valid: set[str], count: int) -> tuple[list[str], list[str]]:
    """The first `count` valid envelopes, and every other body in its order."""
    chosen: list[int] = []
    for index, body in enumerate(bodies):
        try:
            envelope = json.loads(body)
        except ValueError:
            continue
        if isinstance(envelope, dict) and envelope.get("id") in valid and len(chosen) < count:
            chosen.append(index)
    picked = set(chosen)
    return [bodies[i] for i in chosen], [b for i, b in enumerate(bodies) if i not in picked]

"""DynamoDB throttles for a while, then recovers: nothing is lost, nothing is stored twice.

moto never throttles, so a fault-injecting proxy (tests/faults/throttle_proxy.py) stands between
the code under test and moto's server, and answers DynamoDB's writes and batch reads the way a
throttled table does while the test holds its window open. Every successful answer is moto's.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from datetime import UTC, datetime, timedelta

import pytest

from events.stores.dynamodb.store import DynamoStore
from tests.events.store_fixtures import make_event

from .harness import (
    WINDOW_SCALE,
    DynamoCounter,
    Producer,
    assert_exact,
    dynamodb,
    outcome,
    scan,
    send,
    table_in,
    thirds,
    traffic,
    wait_for_drain,
    wait_until,
    worker_env,
)
from .throttle_proxy import ThrottleProxy

EVENTS = 450  # moto copies the whole table on every TransactWriteItems: keep it small
THROTTLE_SECONDS = 20  # outlasts botocore's own retries of one call (5 attempts)


@pytest.fixture
def proxy(moto_endpoint):
    with ThrottleProxy(moto_endpoint, seed=7) as running:
        yield running


@pytest.mark.slow
def test_it_loses_nothing_while_dynamodb_throttles(
    moto_endpoint, proxy, queues_factory, sqlite_url, tmp_path, start_workers
):
    started = time.monotonic()
    queues = queues_factory(visibility=2)
    table = table_in(moto_endpoint, f"edobs-throttle-{queues.url.rsplit('-', 1)[-1]}")
    env = worker_env(
        queues=queues, var_dir=tmp_path, database_url=sqlite_url,
        AWS_ENDPOINT_URL=proxy.url, EDOBS_STORE="dynamodb", EDOBS_TABLE_NAME=table,
    )  # fmt: skip
    sent = traffic(events=EVENTS, seed=53, scale=WINDOW_SCALE)
    counter = DynamoCounter(endpoint=moto_endpoint, table=table, database_url=sqlite_url)
    before, during, after = thirds(sent.bodies)
    # One worker: moto's TransactWriteItems is not safe against concurrent writers (it
    # deep-copies the table mid-write and answers 500); racing workers are scenario 2's job.
    workers = start_workers(env, 1)

    send(queues, before)
    assert wait_until(lambda: queues.depth() == (0, 0)), workers.stderr()
    # The producer keeps the queue fed while every DynamoDB write is throttled.
    producer = Producer(queues, during + after)
    producer.start()
    proxy.throttle(seconds=THROTTLE_SECONDS)
    producer.finish()
    wait_for_drain(
        queues=queues, counter=counter, expected=len(sent.valid_ids), malformed=sent.malformed
    )
    workers.stop()

    # Throttled calls are retried by botocore, then by the store, then (if it still fails) by
    # the worker's backoff and SQS redelivery; which layer absorbs it depends on timing, so the
    # counts are reported, and what is asserted is that throttling happened and nothing was lost.
    notes = (
        f"store_failures={workers.reported('store_failures')} refused={dict(proxy.refused)} "
        f"partial={dict(proxy.partial)} withheld={dict(proxy.withheld)}"
    )
    result = outcome(
        scenario="dynamodb_throttled_and_back", sent=sent, queues=queues, counter=counter,
        workers=workers, started=started, notes=notes,
    )  # fmt: skip
    assert len(workers.summaries) == 1, workers.stderr()
    assert proxy.refused["TransactWriteItems"] > 0, notes
    assert proxy.partial["BatchGetItem"] > 0, notes
    assert counter.orphans() == ([], []), notes
    assert_exact(result, sent, counter)


def test_purge_deletes_everything_while_batch_writes_come_back_unprocessed(moto_endpoint, proxy):
    table = table_in(moto_endpoint, "edobs-throttle-purge")
    store = DynamoStore(client=dynamodb(proxy.url), table_name=table, retention_hours=1)
    now = datetime.now(UTC).replace(microsecond=0)
    arrived = now - timedelta(hours=3)  # retention counts from arrival
    old = [
        make_event(at=now - timedelta(hours=3, seconds=i), job=f"old-{i % 4}", received_at=arrived)
        for i in range(60)
    ]
    new = [make_event(at=now - timedelta(minutes=10, seconds=i), job="new") for i in range(5)]
    assert store.ingest(old + new) == ["stored"] * 65

    with proxy.throttling():
        deleted = store.purge(before=now - timedelta(hours=1))

    left = Tally(item["pk"]["S"].split("#", 1)[0] for item in scan(dynamodb(moto_endpoint), table))
    assert deleted == len(old)
    assert proxy.partial["BatchWriteItem"] > 0 and proxy.withheld["BatchWriteItem"] > 0
    # The new job's five events, their five markers and its summary: nothing else.
    assert left == {"EVENT": 5, "ID": 5, "JOB": 1}, left

"""The store or the channel layer goes away while events flow, then comes back: nothing is lost.

Each fault is injected between phases (a third of the traffic before, during and after it), so
that events certainly arrive while it lasts, whatever the machine's speed.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time

import pytest

from .harness import (
    WINDOW_SCALE,
    Counter,
    Producer,
    assert_exact,
    manage,
    outcome,
    send,
    thirds,
    traffic,
    wait_for_drain,
    wait_until,
    worker_env,
)

pytestmark = pytest.mark.slow

EVENTS = 1500
OUTAGE_SECONDS = 8
# Long enough that a worker receiving under the lock runs messages up to maxReceiveCount: with
# a ping that only read, 20 good events went to the dead-letter queue.
LOCK_SECONDS = 24


def test_it_resumes_ingest_when_postgresql_comes_back(
    own_postgres, queues_factory, tmp_path, start_workers
):
    # An outage several times the visibility timeout: a worker that kept receiving while the
    # database is down would run messages up to maxReceiveCount and into the DLQ.
    queues = queues_factory(visibility=2)
    env = worker_env(queues=queues, var_dir=tmp_path, database_url=own_postgres.url)
    manage("migrate", "--noinput", env=env)
    store_outage(
        "postgresql_down_and_back", postgres_stopped(own_postgres), OUTAGE_SECONDS,
        queues=queues, sent=traffic(events=EVENTS, seed=31, scale=WINDOW_SCALE),
        counter=Counter(own_postgres.url),
        workers=start_workers(env, 2),
    )  # fmt: skip


def test_it_resumes_ingest_when_sqlite_stays_locked(
    queues_factory, sqlite_url, tmp_path, start_workers
):
    queues = queues_factory(visibility=2)
    # Writes give up after 1 s instead of 20, so the lock fails the store again and again.
    env = worker_env(
        queues=queues, var_dir=tmp_path, database_url=sqlite_url, DATABASE_BUSY_TIMEOUT="1"
    )
    store_outage(
        "sqlite_locked", sqlite_write_lock(sqlite_url), LOCK_SECONDS,
        queues=queues, sent=traffic(events=EVENTS, seed=37, scale=WINDOW_SCALE),
        counter=Counter(sqlite_url),
        workers=start_workers(env, 2),
    )  # fmt: skip


def store_outage(scenario: str, fault, seconds: float, *, queues, sent, counter, workers) -> None:
    """A third of the traffic, then the rest sent while `fault` holds for `seconds`, then
    drained: every event stored exactly once, and the workers saw the store fail."""
    started = time.monotonic()
    before, during, after = thirds(sent.bodies)
    send(queues, before)
    assert wait_until(lambda: queues.depth() == (0, 0)), workers.stderr()
    # The producer fills the queue (up to its depth limit) while the store is unavailable.
    producer = Producer(queues, during + after)
    with fault:
        producer.start()
        time.sleep(seconds)
    producer.finish()
    wait_for_drain(
        queues=queues, counter=counter, expected=len(sent.valid_ids), malformed=sent.malformed
    )
    workers.stop()

    result = outcome(
        scenario=scenario, sent=sent, queues=queues, counter=counter, workers=workers,
        started=started, notes=f"store_failures={workers.reported('store_failures')}",
    )  # fmt: skip
    assert len(workers.summaries) == 2, workers.stderr()
    assert workers.reported("store_failures") > 0
    assert_exact(result, sent, counter)


@contextlib.contextmanager
def postgres_stopped(server):
    server.stop()
    try:
        yield
    finally:
        server.start()


@contextlib.contextmanager
def sqlite_write_lock(url: str):
    """Another connection holds SQLite's write lock (a backup, a long admin write)."""
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_it_goes_on_ingesting_while_redis_is_down(
    own_redis, queues_factory, sqlite_url, tmp_path, start_workers
):
    started = time.monotonic()
    queues = queues_factory(visibility=3)
    env = worker_env(
        queues=queues, var_dir=tmp_path, database_url=sqlite_url, REDIS_URL=own_redis.url
    )
    sent = traffic(events=EVENTS, seed=41, scale=WINDOW_SCALE)
    counter = Counter(sqlite_url)
    before, during, after = thirds(sent.bodies)
    workers = start_workers(env, 1)

    send(queues, before)
    assert wait_until(lambda: queues.depth() == (0, 0)), workers.stderr()
    own_redis.stop()
    send(queues, during)
    assert wait_until(lambda: queues.depth() == (0, 0)), workers.stderr()
    own_redis.start()
    send(queues, after)
    wait_for_drain(
        queues=queues, counter=counter, expected=len(sent.valid_ids), malformed=sent.malformed
    )
    workers.stop()

    failures = workers.reported("publish_failures")
    result = outcome(
        scenario="redis_down_and_back", sent=sent, queues=queues, counter=counter,
        workers=workers, started=started, notes=f"publish_failures={failures}",
    )  # fmt: skip
    assert len(workers.summaries) == 1, workers.stderr()
    assert failures > 0  # every event of the middle third was stored while Redis was down
    assert_exact(result, sent, counter)

"""Workers killed mid-batch and workers racing on one queue lose nothing and store nothing twice."""

from __future__ import annotations

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
    traffic,
    wait_for_drain,
    worker_env,
)

pytestmark = pytest.mark.slow

EVENTS = 2000
SEED = 6
KILLS = 4
VISIBILITY = 2  # seconds


def test_it_loses_nothing_when_the_worker_is_killed_mid_batch(
    queues_factory, sqlite_url, tmp_path, start_workers
):
    started = time.monotonic()
    queues = queues_factory(visibility=VISIBILITY)
    sent = traffic(events=EVENTS, seed=SEED)
    counter = Counter(sqlite_url)
    workers = start_workers(worker_env(queues=queues, var_dir=tmp_path, database_url=sqlite_url))
    producer = Producer(queues, sent.bodies)
    producer.start()
    in_hand: list[int] = []
    last_kill = time.monotonic()
    for _ in range(KILLS):  # SIGKILL mid-flow, then a fresh worker takes over
        _wait_for_progress(counter, rows=200)
        # A killed worker's batch stays in flight for the visibility timeout: once it is over,
        # whatever is in flight belongs to the one live worker.
        time.sleep(max(0.0, last_kill + VISIBILITY + 0.1 - time.monotonic()))
        with WriteLock(sqlite_url):  # the victim's store waits: it holds a batch it cannot store
            stored = counter.safe_count()
            in_hand.append(batch_in_hand(queues))
            workers.sigkill(workers.running()[0])
            assert counter.safe_count() == stored  # killed with its batch received, unstored
        last_kill = time.monotonic()
        workers.start()
    producer.finish()
    wait_for_drain(
        queues=queues, counter=counter, expected=len(sent.valid_ids), malformed=sent.malformed
    )
    workers.stop()

    result = outcome(
        scenario="sigkill_mid_batch", sent=sent, queues=queues, counter=counter,
        workers=workers, started=started,
        notes=f"{workers.killed} SIGKILLs, each with a batch in hand of {in_hand} messages",
    )  # fmt: skip
    # The fault happened: every victim died holding messages it had received, not deleted.
    assert workers.killed == KILLS
    assert len(in_hand) == KILLS and all(in_hand), in_hand
    assert_exact(result, sent, counter)


@pytest.mark.parametrize("count", [2, 4])
def test_it_stores_each_event_once_with_concurrent_workers(
    count, queues_factory, sqlite_url, tmp_path, start_workers
):
    started = time.monotonic()
    queues = queues_factory(visibility=3)
    sent = traffic(events=EVENTS, seed=SEED + count, scale=WINDOW_SCALE)
    counter = Counter(sqlite_url)
    env = worker_env(queues=queues, var_dir=tmp_path, database_url=sqlite_url)
    workers = start_workers(env, count)
    producer = Producer(queues, sent.bodies)
    producer.start()
    producer.finish()
    wait_for_drain(
        queues=queues, counter=counter, expected=len(sent.valid_ids), malformed=sent.malformed
    )
    workers.stop()

    result = outcome(
        scenario=f"concurrent_workers_{count}", sent=sent, queues=queues, counter=counter,
        workers=workers, started=started,
        notes=f"'database is locked' logged {workers.log_count('database is locked')} times",
    )  # fmt: skip
    assert len(workers.summaries) == count, workers.stderr()
    assert_exact(result, sent, counter)


def _wait_for_progress(counter: Counter, *, rows: int, timeout: float = 30) -> None:
    """Until `rows` more events are stored than now (so the kill lands mid-flow)."""
    target = max(counter.safe_count(), 0) + rows
    deadline = time.monotonic() + timeout
    while counter.safe_count() < target and time.monotonic() < deadline:
        time.sleep(0.05)

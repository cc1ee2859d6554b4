"""Envelopes that parse but that PostgreSQL refuses must not take their batch down with them.

Before the fix, one such event made its whole batch of ten fail as "store unavailable" on every
delivery, until SQS moved all ten messages (nine of them good) to the dead-letter queue.
"""

from __future__ import annotations

import json
import time

import pytest

from .harness import (
    Counter,
    Traffic,
    Workers,
    assert_exact,
    envelopes,
    manage,
    outcome,
    send,
    wait_for_drain,
    worker_env,
)

pytestmark = pytest.mark.slow


def _poison() -> list[str]:
    """Valid envelopes by the parser's rules, each with a value PostgreSQL cannot store."""
    base = envelopes(events=1, seed=3)[0]
    nul = {**base, "id": "poison-nul", "detail": {"name": "a\u0000b"}}
    long_source = {**base, "id": "poison-source", "source": "s" * 300}
    long_account = {**base, "id": "poison-account", "account": "1" * 13}
    return [json.dumps(envelope) for envelope in (nul, long_source, long_account)]


def test_it_quarantines_unstorable_events_and_keeps_their_batch(
    own_postgres, queues_factory, tmp_path, start_workers
):
    started = time.monotonic()
    queues = queues_factory(visibility=2)
    env = worker_env(queues=queues, var_dir=tmp_path, database_url=own_postgres.url)
    manage("migrate", "--noinput", env=env)
    good = [json.dumps(envelope) for envelope in envelopes(events=200, seed=71)]
    poison = _poison()
    bodies = good[:5] + poison + good[5:]  # in the same receive batch as good events
    sent = Traffic(
        bodies=bodies,
        valid_ids={json.loads(body)["id"] for body in good},
        duplicates=0,
        malformed=len(poison),
    )
    counter = Counter(own_postgres.url)
    workers: Workers = start_workers(env, 1)
    send(queues, bodies)
    wait_for_drain(
        queues=queues, counter=counter, expected=len(sent.valid_ids), malformed=len(poison)
    )
    workers.stop()

    result = outcome(
        scenario="unstorable_events_on_postgresql", sent=sent, queues=queues, counter=counter,
        workers=workers, started=started, notes="NUL character, 300-char source, 13-digit account",
    )  # fmt: skip
    assert workers.reported("store_failures") == 0
    assert_exact(result, sent, counter, malformed=poison)

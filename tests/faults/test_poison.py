"""Envelopes that parse but that a database refuses must not take their batch down with them.

Before the fix, one such event made its whole batch of ten fail as "store unavailable" on every
delivery, until SQS moved all ten messages (nine of them good) to the dead-letter queue; and a
few bodies (a lone surrogate, a year 9999 behind UTC) stopped the worker process altogether.
"""

from __future__ import annotations

import json
import random
import time

import pytest

from .harness import (
    ACCOUNT,
    Counter,
    DynamoCounter,
    Traffic,
    Workers,
    assert_exact,
    envelopes,
    malformed_bodies,
    manage,
    outcome,
    quarantine_reasons,
    send,
    table_in,
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


# --- every body that users found stopping or stalling the worker -------------------------------

GOOD_EVENTS = 200
SEED = 13
STATUS_EVENT = "Step Functions Execution Status Change"


def _variant(number: int, **changes) -> dict:
    """A good envelope of the seeded plan with a fresh id and `changes` applied."""
    envelope = {**envelopes(events=1, seed=SEED + number)[0], "id": f"poison-{number:02d}"}
    return {**envelope, **changes}


def _status(number: int, *, arn: str, status: str) -> dict:
    detail = {"executionArn": arn, "name": "nightly", "status": status, "startDate": 1}
    return _variant(number, source="aws.states", **{"detail-type": STATUS_EVENT}, detail=detail)


def _fn(fn: str) -> dict:
    return {"meta": {"fn": fn, "stateMachine": "Nightly", "job": "nightly-1"}}


STANDARD_ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:Nightly:nightly"
EXPRESS_ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:express:Nightly:nightly:" + "u" * 640
# (envelope, or a body as text; words its quarantine reason must hold)
POISON = [
    (_variant(1, time="9999-12-31T23:59:59-05:00"), "'time' is out of range"),
    (_variant(2, source="project\ud800"), "lone surrogate (\\ud800)"),
    (_variant(3, detail=_fn("getUser\ud800Fn")), "lone surrogate (\\ud800)"),
    (_variant(4, detail={"ratio": float("nan")}), "the number NaN"),
    (_variant(5, detail={"limits": [1, float("inf")]}), "the number Infinity"),
    (_variant(6, detail={"delta": float("-inf")}), "the number -Infinity"),
    (_status(7, arn=STANDARD_ARN, status="RUNNING_AND_THEN_SOME_MORE"), "status is longer than 20"),
    (_status(8, arn=EXPRESS_ARN, status="RUNNING"), "execution_arn is longer than 600"),
    (_variant(9, detail={"name": "a\u0000b"}), "NUL character"),
    (_variant(10, detail={"a\u0000": 1}), "NUL character"),
    ('{"id": "poison-11", "n": ' + "9" * 5000 + "}", "body is not JSON"),
]


def _poison_bodies() -> dict[str, str]:
    """{body: words its reason must hold}, the samples' malformed bodies included."""
    found = {body if isinstance(body, str) else json.dumps(body): words for body, words in POISON}
    found.update({body: "" for body in malformed_bodies()})
    return found


@pytest.fixture(params=["sqlite", "postgres", "dynamodb"])
def store_env(request, tmp_path, queues_factory):
    """(queues, worker environment, counter, ORM database url) of one store."""
    queues = queues_factory(visibility=2)
    if request.param == "postgres":
        url = request.getfixturevalue("own_postgres").url
        env = worker_env(queues=queues, var_dir=tmp_path, database_url=url)
        manage("migrate", "--noinput", env=env)
        return queues, env, Counter(url), url
    url = request.getfixturevalue("sqlite_url")
    if request.param == "sqlite":
        return (
            queues,
            worker_env(queues=queues, var_dir=tmp_path, database_url=url),
            Counter(url),
            url,
        )
    table = table_in(queues.endpoint, f"edobs-poison-{queues.url.rsplit('-', 1)[-1]}")
    env = worker_env(
        queues=queues, var_dir=tmp_path, database_url=url, EDOBS_STORE="dynamodb",
        EDOBS_TABLE_NAME=table,
    )  # fmt: skip
    counter = DynamoCounter(endpoint=queues.endpoint, table=table, database_url=url)
    return queues, env, counter, url


def test_it_survives_every_poison_body_and_loses_no_good_event(store_env, start_workers, request):
    started = time.monotonic()
    queues, env, counter, database_url = store_env
    store = request.node.callspec.params["store_env"]
    poison = _poison_bodies()
    good = [json.dumps(envelope) for envelope in envelopes(events=GOOD_EVENTS, seed=SEED)]
    bodies = list(good)
    rng = random.Random(SEED)
    for body in poison:  # among good events, so every batch that holds one holds both
        bodies.insert(rng.randrange(len(bodies) + 1), body)
    sent = Traffic(
        bodies=bodies, valid_ids={json.loads(body)["id"] for body in good}, duplicates=0,
        malformed=len(poison),
    )  # fmt: skip
    workers: Workers = start_workers(env, 1)  # ONE long-running process for all of it
    send(queues, bodies)
    wait_for_drain(queues=queues, counter=counter, expected=len(good), malformed=len(poison))

    alive = len(workers.running())
    workers.stop()  # SIGTERM
    reasons = quarantine_reasons(database_url)
    result = outcome(
        scenario=f"poison_bodies_on_{store}", sent=sent, queues=queues, counter=counter,
        workers=workers, started=started,
        notes=f"{len(POISON)} poison envelopes and {len(poison) - len(POISON)} malformed samples "
        f"among {len(good)} good events; received={workers.reported('received')} "
        f"duplicates={workers.reported('duplicates')}",
    )  # fmt: skip

    # The fault happened: every poison body was received, and quarantined for its own reason.
    assert sorted(reasons) == sorted(poison), workers.stderr()
    wrong = {
        body[:60]: reasons[body] for body, words in poison.items() if words not in reasons[body]
    }
    assert not wrong, wrong
    assert all(reasons.values())
    # The worker lived through it, and nothing was retried as if the store were down.
    assert alive == 1, workers.stderr()
    assert [proc.returncode for proc in workers.procs] == [0], workers.stderr()
    # At least: a batch that outlives the 2 s visibility (moto's DynamoDB is slow) comes again.
    assert workers.reported("received") >= len(bodies)
    assert workers.reported("quarantined") >= len(poison)
    assert (workers.reported("store_failures"), workers.reported("errors")) == (0, 0)
    assert workers.log_count("Traceback") == 0, workers.stderr()
    assert_exact(result, sent, counter, malformed=list(poison))

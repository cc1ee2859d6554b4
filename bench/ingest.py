"""Ingest throughput: the edobs worker beside a bare drain and a naive consumer, in one run.

    .venv/bin/python bench/ingest.py [--events 2000] [--json PATH]

moto's SQS receive slows down as the queue grows deeper (docs/FACTS.md), so a pre-filled queue
would measure moto. Each consumer is fed by a producer thread that keeps the queue shallow (it
sends 10 at a time while fewer than DEPTH messages are sent but not yet received), and the
worker's rate is reported as a ratio to the other two measured the same way in the same run:
- drain: receive 10, DeleteMessageBatch from a thread (events.ingest.worker.Deleter, as the worker
  deletes), nothing stored (the ceiling the queue allows);
- worker: events.ingest.worker.Worker storing into the ORM store (SQLite, a fresh temporary
  database);
- naive: the original design's consumer: receive 1, parse, two separately committed writes
  (the event, then the job's latest), delete 1.
All three get the same number of events, the same producer and the same queue depth, after
the same untimed warm-up. Their events are split over ROUNDS rounds, each consumer in turn per
round in every order (as bench/store.py alternates its pair), so none of them is always the
first or the last (the one a machine's drift falls on) and none runs cold.  All
three are measured again with RTT seconds added to every SQS call of the consumer (a real
queue is some milliseconds away), never to the producer's calls.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "samples" / "part1_jobs.jsonl"
DEPTH = 20  # sent but not yet received: the queue stays under DEPTH + 10 < 50 deep
RTT = 0.010
# Every consumer long-polls, as `consume_events` does: a receive of an empty queue waits in moto
# for the producer's next send instead of asking again at once. Asking again at once (a wait of
# 0) left the bare drain spinning on the GIL that the producer thread needed to feed it.
WAIT = 1
UNIT = "events/s"


class Progress:
    """What the consumer has taken off the queue; read by the producer to keep it shallow."""

    def __init__(self) -> None:
        self.consumed = 0
        self.max_depth = 0


class Producer(threading.Thread):
    def __init__(self, client, url: str, bodies: list[str], progress: Progress) -> None:
        super().__init__(daemon=True)
        self.client, self.url, self.bodies, self.progress = client, url, bodies, progress
        self.sent = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while self.sent < len(self.bodies) and not self.stop.is_set():
            in_queue = self.sent - self.progress.consumed
            self.progress.max_depth = max(self.progress.max_depth, in_queue)
            if in_queue >= DEPTH:
                time.sleep(0.0005)
                continue
            chunk = self.bodies[self.sent : self.sent + 10]
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
            self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            self.sent += len(chunk)


def setup_django(var_dir: Path) -> None:
    """A fresh SQLite database in var_dir (unless Django is set up already), migrated."""
    os.environ["EDOBS_VAR_DIR"] = str(var_dir)
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.setdefault("EDOBS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edobs_site.settings")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def make_bodies(count: int) -> list[str]:
    """`count` envelopes from the samples, each copy of the file with fresh event ids and jobs."""
    lines = [line for line in SAMPLES.read_text().splitlines() if line.strip()]
    ids = {json.loads(line)["id"] for line in lines}
    names = set(re.findall(r"execution:EventDrivenMachine:([0-9a-f-]{36})", SAMPLES.read_text()))
    pattern = re.compile("|".join(re.escape(value) for value in ids | names))
    bodies: list[str] = []
    while len(bodies) < count:
        fresh: dict[str, str] = {}

        def renew(match: re.Match, fresh: dict[str, str] = fresh) -> str:
            return fresh.setdefault(match.group(0), str(uuid.uuid4()))

        bodies.extend(pattern.sub(renew, line) for line in lines[: count - len(bodies)])
    return bodies


def sqs(rtt: float):
    """A client whose every call first waits `rtt` seconds (the consumer's network)."""
    import boto3

    client = boto3.client("sqs", region_name="us-east-1")
    if rtt:
        client.meta.events.register("before-call.sqs", lambda **_: time.sleep(rtt))
    return client


def drain(client, url: str, total: int, progress: Progress) -> None:
    """Receive 10, hand the DeleteMessageBatch to a thread (the worker's own Deleter, so the
    ceiling deletes exactly as the worker does), store nothing."""
    from events.ingest.worker import Deleter

    def delete(messages: list[dict]) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        client.delete_message_batch(QueueUrl=url, Entries=entries)

    deleter = Deleter(delete)
    while progress.consumed < total:
        try:
            messages = client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=WAIT
            ).get("Messages", [])
        except RuntimeError:  # moto's race, as in ingest() below
            continue
        if not messages:
            continue
        progress.consumed += len(messages)
        deleter.submit(messages)
    deleter.close()


def ingest(client, url: str, total: int, progress: Progress) -> None:
    from events.ingest.worker import Worker

    worker = Worker(client=client, url=url, wait_seconds=WAIT, progress_every=1e9)
    while worker.totals.stored < total:
        try:
            worker.poll(wait_seconds=WAIT)
        except RuntimeError:  # in-process moto: "changed size during iteration" when the
            continue  # delete thread and a receive meet (moto's race; a real queue has none)
        progress.consumed = worker.totals.received
    worker.close()
    assert worker.totals.store_failures == 0, worker.totals.summary()


def naive_consumer(path: Path) -> Callable[..., None]:
    """The original design's consumer, writing to its own SQLite file like edobs (WAL)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS event (id TEXT PRIMARY KEY, job TEXT, time TEXT, body TEXT)"
    )
    db.execute("CREATE TABLE IF NOT EXISTS latest (job TEXT PRIMARY KEY, time TEXT, body TEXT)")

    def consume(client, url: str, total: int, progress: Progress) -> None:
        from events.domain.envelope import parse_envelope

        while progress.consumed < total:
            messages = client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=WAIT
            ).get("Messages", [])
            if not messages:
                continue
            progress.consumed += 1
            message = messages[0]
            event = parse_envelope(message["Body"], default_account="123456789012")
            _naive_write(db, event, message["Body"])
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    return consume


def _naive_write(db: sqlite3.Connection, event, body: str) -> None:
    time_ = event.time.isoformat()
    with db:
        db.execute("BEGIN")
        db.execute(
            "INSERT OR IGNORE INTO event VALUES (?, ?, ?, ?)", (event.id, event.job, time_, body)
        )
    with db:
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO latest VALUES (?, ?, ?) ON CONFLICT(job) DO UPDATE SET "
            "time = excluded.time, body = excluded.body WHERE excluded.time >= latest.time",
            (event.job or "", time_, body),
        )


def measure(consumer: Callable[..., None], *, bodies: list[str], rtt: float) -> dict:
    """Events/s of `consumer` over `bodies`, fed by a producer keeping the queue shallow."""
    producer_client, client = sqs(0), sqs(rtt)
    url = producer_client.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    progress = Progress()
    producer = Producer(producer_client, url, bodies, progress)
    producer.start()
    while producer.sent < min(DEPTH, len(bodies)):
        time.sleep(0.001)
    started = time.perf_counter()
    try:
        consumer(client, url, len(bodies), progress)
    finally:
        producer.stop.set()
        producer.join()
    seconds = time.perf_counter() - started
    left = producer_client.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert left == "0", f"{left} messages left in the queue"
    return {"rate": len(bodies) / seconds, "seconds": seconds, "max_depth": progress.max_depth}


ROUNDS = 6  # each consumer's events are split over this many rounds, in a different order each


def run(events: int = 2_000) -> dict:
    """Measure all three consumers without and with RTT added per SQS call; bench entries."""
    from moto import mock_aws

    var_dir = Path(tempfile.mkdtemp(prefix="edobs-bench-ingest-"))
    setup_django(var_dir)
    results: dict[str, dict] = {}
    with mock_aws():
        # Untimed, every consumer alike: moto's backends, botocore's service model, the worker's
        # and the naive consumer's imports and first writes happen on first use; without this
        # the first consumer timed paid for them (the naive one, never warmed, paid its own).
        for consumer in consumers(var_dir / "warm-up").values():
            measure(consumer, bodies=make_bodies(100), rtt=0.0)
        for rtt, suffix in ((0.0, ""), (RTT, "_rtt10ms")):
            rates = alternated(consumers(var_dir / f"run{suffix}"), events, rtt)
            _print_rates(rates, rtt)
            results |= _entries(rates, suffix)
    return results


def consumers(var_dir: Path) -> dict[str, Callable[..., None]]:
    """The three consumers, the naive one with its own fresh SQLite file in `var_dir`."""
    var_dir.mkdir()
    return {"drain": drain, "ingest": ingest, "naive": naive_consumer(var_dir / "naive.sqlite3")}


def rounds_order(names: list[str], rounds: int) -> list[list[str]]:
    """Which consumer runs when in each round: every order of them in turn (6 for three), so
    over 6 rounds each consumer runs first, middle and last equally often (as bench/store.py
    flips which of its pair goes first) and a drift of the machine falls on all three alike."""
    orders = list(itertools.permutations(names))
    return [list(orders[n % len(orders)]) for n in range(rounds)]


def alternated(found: dict[str, Callable[..., None]], events: int, rtt: float) -> dict:
    """Every consumer gets `events` events in ROUNDS rounds (fewer if there are too few events),
    fresh bodies each round, in rounds_order(); its rate is all its events over all its time."""
    rounds = max(1, min(ROUNDS, events // 10))
    sizes = [events // rounds + (n < events % rounds) for n in range(rounds)]
    totals = {name: {"seconds": 0.0, "max_depth": 0} for name in found}
    for size, order in zip(sizes, rounds_order(list(found), rounds), strict=True):
        for name in order:
            got = measure(found[name], bodies=make_bodies(size), rtt=rtt)
            totals[name]["seconds"] += got["seconds"]
            totals[name]["max_depth"] = max(totals[name]["max_depth"], got["max_depth"])
    return {name: got | {"rate": events / got["seconds"]} for name, got in totals.items()}


def _entries(rates: dict, suffix: str) -> dict:
    from bench.common import figure, limit

    how = "in process moto" + (", +10 ms before every SQS call of the consumer" if suffix else "")
    drain_limit = limit(
        f"drain_events_per_s{suffix}", rates["drain"]["rate"], UNIT,
        f"receive 10 + DeleteMessageBatch in a thread, nothing stored; {how}; same events, "
        "producer and depth, same run",
    )  # fmt: skip
    naive_limit = limit(
        f"naive_events_per_s{suffix}", rates["naive"]["rate"], UNIT,
        f"receive 1, two committed SQLite writes, delete 1; {how}; same events, same run",
    )  # fmt: skip
    ingest_rate = rates["ingest"]["rate"]
    return {
        f"ingest_vs_drain{suffix}": figure(ingest_rate, UNIT, limit=drain_limit, target=0.5),
        f"ingest_vs_naive{suffix}": figure(
            ingest_rate, UNIT, limit=naive_limit, target=5 if suffix else None
        ),
    }


def _print_rates(rates: dict, rtt: float) -> None:
    print(f"\n+{rtt * 1000:.0f} ms per SQS call of the consumer")
    print(f"{'consumer':<8} {'events/s':>10} {'seconds':>9} {'max depth':>10}")
    for name, found in rates.items():
        print(f"{name:<8} {found['rate']:>10.1f} {found['seconds']:>9.1f} {found['max_depth']:>10}")
    print(
        f"worker/drain {rates['ingest']['rate'] / rates['drain']['rate']:.2f}  "
        f"worker/naive {rates['ingest']['rate'] / rates['naive']['rate']:.2f}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000, help="per consumer (all three)")
    parser.add_argument("--json", type=Path, help="also write the entries to this file")
    args = parser.parse_args()
    results = run(args.events)
    print()
    for name, entry in sorted(results.items()):
        target = "" if entry["target"] is None else f"(target {entry['target']})"
        print(f"{name:<24} {entry['value']:>10.2f} {entry['unit']:<9} ratio "
              f"{entry['ratio']:.2f} to {entry['limit']['name']} {target}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Worker scaling: 1, 2 and 4 `manage.py consume_events` processes on one queue.

    .venv/bin/python bench/workers.py [--events 3000] [--workers 1 2 4] [--rtt 0.010]

moto's server (its own process, on loopback) holds one SQS queue; a producer in this process
keeps it shallow (moto's receive slows as a queue grows deep, docs/FACTS.md) by sending while
fewer than 40 messages per worker are sent and not yet consumed.  Each worker is
`manage.py consume_events` started through this file's `--worker` mode, which only adds --rtt
seconds before every SQS call the worker makes (a real queue's round trip; the producer's calls
get none) and then runs the command unchanged.  All of them store into one SQLite database
(the default store).

Reported per N: events/s (stored, between 10% and 90% of the run, so start-up is left out),
scaling efficiency = rate / (N x the rate of one worker, measured first and again last), the CPU
moto's server used and the CPU the whole machine was busy. Two limits are measured in the same
run with the same concurrency: the queue's, N bare drainers (`--drainer`: the worker's receive
and threaded delete, storing nothing) on the same moto server; and the store's, N processes
calling `store.ingest()` in batches of 10 as fast as they can, no queue at all, as many events
as the N workers get and timed over the same 10% to 90% of them. Worker rate /
one of them near 1 names the limit. A third is the machine's: the cores that the efficiency
target's events/s would need at what each event cost the whole machine in CPU with N workers
(theirs, moto's, the producer's); over the machine's cores, the target cannot be met on it.
moto's server runs with bench/moto_server.py's fixes to its speed (`--moto-as-shipped` without
them). The producer counts what was stored (or, for drainers, deleted) on its own side rather
than polling the queue's attributes, which cost moto's server CPU that the consumers then
lacked.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import CPUS, constant, figure, limit, machine_cores, machine_cpu  # noqa: E402

DEPTH_PER_WORKER = 40
EFFICIENCY_TARGET = 0.8


def environment(var_dir: Path, endpoint: str, queue_url: str) -> dict:
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "edobs_site.settings", "EDOBS_VAR_DIR": str(var_dir),
        "EDOBS_LOG_LEVEL": "WARNING", "AWS_ENDPOINT_URL": endpoint, "EDOBS_QUEUE_URL": queue_url,
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(ROOT),
    }  # fmt: skip
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    return env


def start_moto(as_shipped: bool = False) -> tuple[subprocess.Popen, str]:
    """moto's server in its own process, from bench/moto_server.py (with its fixes to the
    speed of moto's SQS, unless `as_shipped`)."""
    from bench.fanout import wait_for_port
    from tests.services import free_port

    port = free_port()
    shipped = ["--as-shipped"] if as_shipped else []
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "moto_server.py"), *shipped, "-H", "127.0.0.1",
         "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for_port(port, proc)
    return proc, f"http://127.0.0.1:{port}"


def drained(counts: list[Path]) -> int:
    """Messages the drainers have deleted, from the totals each one keeps in its file."""
    return sum(int(path.read_bytes() or 0) for path in counts if path.exists())


def stored_count(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute("SELECT COUNT(*) FROM events_event").fetchone()[0]


def one_size(
    workers: int, events: int, rtt: float, var_dir: Path, endpoint: str, *, drain: bool = False,
    tag: str = "",
) -> dict:  # fmt: skip
    """N consume_events processes (or N bare drainers) on a fresh queue and a fresh database;
    events/s stored (or deleted)."""
    import boto3

    from bench.fanout import cpu_seconds
    from bench.ingest import make_bodies

    run_dir = var_dir / f"{'drainers' if drain else 'workers'}-{workers}{tag}"
    run_dir.mkdir()
    client = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")  # fmt: skip
    url = client.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    env = environment(run_dir, endpoint, url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    db = run_dir / "edobs.sqlite3"
    counts = [run_dir / f"drained-{n}" for n in range(workers)]
    procs = [
        subprocess.Popen([sys.executable, __file__, "--drainer" if drain else "--worker", str(rtt),
                          *([str(counts[n])] if drain else [])],
                         cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                         stderr=open(run_dir / f"w{n}.log", "w"))
        for n in range(workers)
    ]  # fmt: skip
    bodies = make_bodies(events)
    sent, marks = 0, {}
    depth = DEPTH_PER_WORKER * workers
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            # Counted on this side, not asked of moto: polling its queue attributes cost the
            # server CPU that the consumers then lacked.
            done = drained(counts) if drain else stored_count(db)
            while sent < events and sent - done < depth:
                chunk = bodies[sent : sent + 10]
                client.send_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)],
                )
                sent += len(chunk)
            now = time.monotonic()
            for mark in (0.1, 0.9):
                if mark not in marks and done >= mark * events:
                    marks[mark] = (now, done, cpu_seconds([MOTO_PID[0]]), machine_cpu())
            if 0.9 in marks:
                break
            time.sleep(0.02)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if 0.9 not in marks:
        raise TimeoutError(f"{workers} {'drainers' if drain else 'workers'} did not finish")
    (t1, n1, c1, m1), (t2, n2, c2, m2) = marks[0.1], marks[0.9]
    moto_cpu, moto_wall = c2 - c1, t2 - t1
    return {"rate": (n2 - n1) / (t2 - t1), "moto_cores": moto_cpu / moto_wall,
            "machine_cores": machine_cores(m1, m2)}  # fmt: skip


MOTO_PID: list[int] = []


def store_ceiling(processes: int, events: int, var_dir: Path) -> float:
    """events/s of `processes` processes each calling store.ingest() in batches of 10 into one
    fresh SQLite database, started together: the store's own write ceiling at that concurrency.
    Sized and timed as the workers are (one_size): the same number of events, counted between
    10% and 90% of them stored, so neither measure gains from what the other leaves out."""
    run_dir = var_dir / f"store-{processes}"
    run_dir.mkdir()
    env = environment(run_dir, "", "")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    start_at = time.monotonic() + 5  # after every writer has set Django up and built its events
    shares = [events // processes + (n < events % processes) for n in range(processes)]
    procs = [
        subprocess.Popen([sys.executable, __file__, "--store-writer", str(share), str(start_at)],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for share in shares
    ]  # fmt: skip
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    written = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    if min(batches[0][0] for batches in written) < start_at - 0.01:
        raise RuntimeError("a writer started late: raise the start delay")
    return middle_rate(sorted(tuple(batch) for batches in written for batch in batches[1:]))


def middle_rate(batches: list[tuple[float, int]]) -> float:
    """events/s between 10% and 90% of the events done, from (monotonic time, events) of every
    batch done, sorted by time, all writers together: the window one_size() times workers over."""
    total = sum(count for _, count in batches)
    done, marks = 0, {}
    for at, count in batches:
        done += count
        for mark in (0.1, 0.9):
            if mark not in marks and done >= mark * total:
                marks[mark] = (at, done)
    (t1, n1), (t2, n2) = marks[0.1], marks[0.9]
    if t2 <= t1:
        raise ValueError("too few batches to time between 10% and 90% of them")
    return (n2 - n1) / (t2 - t1)


# ---- the processes this file starts ------------------------------------------------------------


def worker_mode(rtt: float) -> None:
    """`manage.py consume_events --wait 1` with `rtt` seconds before every SQS call."""
    import botocore.client
    import django
    from django.core.management import call_command

    real = botocore.client.BaseClient._make_api_call

    def delayed(self, operation_name, api_params):
        if self.meta.service_model.service_name == "sqs":
            time.sleep(rtt)
        return real(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = delayed
    django.setup()
    call_command("consume_events", wait=1)


def drainer_mode(rtt: float, count_file: str) -> None:
    """What the worker does with the queue and nothing else: receive 10 (long poll of 1 s, as
    `consume_events --wait 1`), hand the DeleteMessageBatch to the worker's own Deleter thread,
    `rtt` seconds before every SQS call. N of these measure what the queue gives N workers.
    Its running total of deleted messages is kept in `count_file` for the producer."""
    import boto3
    import django

    django.setup()
    from events.ingest.worker import Deleter

    client = boto3.client("sqs")
    client.meta.events.register("before-call.sqs", lambda **_: time.sleep(rtt))
    url = os.environ["EDOBS_QUEUE_URL"]
    total = [0]
    counter = os.open(count_file, os.O_WRONLY | os.O_CREAT)

    def delete(messages: list[dict]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                   for i, m in enumerate(messages)]  # fmt: skip
        client.delete_message_batch(QueueUrl=url, Entries=entries)
        total[0] += len(entries)
        os.pwrite(counter, b"%12d" % total[0], 0)

    deleter = Deleter(delete)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        messages = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if messages:
            deleter.submit(messages)


def store_writer_mode(count: int, start_at: float) -> None:
    import django

    django.setup()
    from bench.ingest import make_bodies
    from events.domain.envelope import parse_envelope
    from events.stores import get_store

    store = get_store()
    events = [parse_envelope(body, default_account="123456789012") for body in make_bodies(count)]
    time.sleep(max(0.0, start_at - time.monotonic()))
    done = [(time.monotonic(), 0)]  # when it started, then (when, how many) for every batch
    for start in range(0, len(events), 10):
        batch = events[start : start + 10]
        store.ingest(batch)
        done.append((time.monotonic(), len(batch)))
    print(json.dumps(done))


# ---- report ------------------------------------------------------------------------------------


def run(
    events: int = 3000, workers: tuple[int, ...] = (1, 2, 4), rtt: float = 0.010,
    moto_as_shipped: bool = False,
) -> dict:  # fmt: skip
    var_dir = Path(tempfile.mkdtemp(prefix="edobs-bench-workers-"))
    moto, endpoint = start_moto(moto_as_shipped)
    MOTO_PID[:] = [moto.pid]
    found: dict[int, dict] = {}
    try:
        for count in workers:
            size = events * max(1, count // 2)
            found[count] = one_size(count, size, rtt, var_dir, endpoint) | {"size": size}
            found[count]["queue"] = one_size(count, size, rtt, var_dir, endpoint, drain=True)
            found[count]["store"] = store_ceiling(count, size, var_dir)
            print(f"{count} workers: {found[count]['rate']:.0f} events/s, moto "
                  f"{found[count]['moto_cores']:.2f} cores, the machine "
                  f"{found[count]['machine_cores']:.2f} of {CPUS} cores busy; "
                  f"{count} bare drainers {found[count]['queue']['rate']:.0f} events/s; "
                  f"store ceiling with {count} writers "
                  f"{found[count]['store']:.0f} events/s", flush=True)  # fmt: skip
        # The fewest workers once more at the end: the baseline is the mean of both runs, so a
        # drift of the machine during the bench moves it as it moves the others.
        first = workers[0]
        again = one_size(first, events * max(1, first // 2), rtt, var_dir, endpoint, tag="-again")
        print(f"{first} workers again: {again['rate']:.0f} events/s", flush=True)
    finally:
        moto.terminate()
        moto.wait(10)
    one = (found[first]["rate"] + again["rate"]) / 2 / first
    results = {}
    for count, got in found.items():
        store = limit(
            f"store_ceiling_{count}_writers", got["store"], "events/s",
            f"{count} processes calling store.ingest() in batches of 10 into one fresh SQLite "
            f"database, no queue, the workers' {got['size']:,} events, counted between 10% and "
            "90% of them stored as the workers are, same run",
        )  # fmt: skip
        results[f"workers_{count}_events_per_s"] = figure(got["rate"], "events/s", limit=store)
        results[f"workers_{count}_vs_queue"] = figure(
            got["rate"], "events/s",
            limit=limit(f"queue_{count}_drainers", got["queue"]["rate"], "events/s",
                        f"{count} processes receiving 10 and deleting in a thread as the worker "
                        f"does, storing nothing, same moto server, +{rtt * 1000:.0f} ms per SQS "
                        "call: what the queue gives that many workers"),
        )  # fmt: skip
        # What one event cost the whole machine in CPU with N workers (theirs, moto's, the
        # producer's), times the events/s the target asks for: the cores the target needs.
        needed = EFFICIENCY_TARGET * count * one * got["machine_cores"] / got["rate"]
        results[f"workers_{count}_cores_for_target"] = figure(
            needed, "cores", higher_is_better=False,
            limit=constant("machine_cores", CPUS, "cores",
                        f"every core of this machine; the value is {EFFICIENCY_TARGET} x {count} x "
                        "one worker's events/s x the core-seconds an event cost the machine with "
                        f"{count} workers, same run: over 1, the target cannot be met here"),
        )  # fmt: skip
        results[f"workers_{count}_efficiency"] = figure(
            got["rate"], "events/s", target=EFFICIENCY_TARGET, ratio=got["rate"] / (count * one),
            limit=limit(f"{count}_x_one_worker", count * one, "events/s",
                        f"{count} x the rate of one worker (the mean of its runs first and last), "
                        f"same run, +{rtt * 1000:.0f} ms per SQS call"),
        )  # fmt: skip
        results[f"workers_{count}_moto_cores"] = figure(
            got["moto_cores"], "cores", higher_is_better=False,
            limit=constant("one_core", 1.0, "cores", "moto's server is one Python process"),
        )  # fmt: skip
        results[f"workers_{count}_machine_cores"] = figure(
            got["machine_cores"], "cores", higher_is_better=False,
            limit=constant("machine_cores", CPUS, "cores",
                        "every core of this machine (/proc/stat busy time: workers, moto, "
                        "producer and anything else), same interval"),
        )  # fmt: skip
    return results


def main() -> int:
    if sys.argv[1:2] == ["--worker"]:
        worker_mode(float(sys.argv[2]))
        return 0
    if sys.argv[1:2] == ["--drainer"]:
        drainer_mode(float(sys.argv[2]), sys.argv[3])
        return 0
    if sys.argv[1:2] == ["--store-writer"]:
        store_writer_mode(int(sys.argv[2]), float(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="per pair of workers")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rtt", type=float, default=0.010)
    parser.add_argument("--moto-as-shipped", action="store_true",
                        help="moto without bench/moto_server.py's fix to its receive")  # fmt: skip
    args = parser.parse_args()
    results = run(args.events, tuple(args.workers), args.rtt, args.moto_as_shipped)
    for name, entry in results.items():
        print(f"{name:<32} {entry['value']:>10} {entry['unit']:<9} ratio {entry['ratio']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

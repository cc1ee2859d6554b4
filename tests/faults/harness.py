"""Shared machinery of the fault-injection suite: moto's server, a queue with its DLQ, seeded
traffic, a shallow-queue producer, real `consume_events` processes, and the final counts.

Everything runs on 127.0.0.1; every wait is bounded; every process started here is killed in
`finally` blocks by the fixtures of tests/faults/conftest.py.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import boto3
from botocore.config import Config

from infra.instrument import event_detail
from infra.provision import MAX_RECEIVE_COUNT
from infra.table import ensure_table
from infra.traffic import plan_jobs

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "samples"
RESULTS = ROOT / "bench" / "results" / "reliability.json"
ACCOUNT = "123456789012"
MAX_IN_FLIGHT = 60  # moto's receive slows down as the queue grows deeper (FACTS.md)
DRAIN_SECONDS = 120.0  # a bound for one condition to come true, not for a whole run
# Waits for the traffic to flow through go on as long as it moves: they give up only after this
# long without progress.  It outlasts the worker's longest back-off (MAX_BACKOFF_SECONDS) plus
# a redelivery after the visibility timeout, so a loaded machine is slow, never "stuck".
STALL_SECONDS = 60.0


# --- the queue ---------------------------------------------------------------------------------


@dataclass
class Queues:
    endpoint: str
    url: str
    dlq_url: str

    def client(self):
        return boto3.client("sqs", region_name="us-east-1", endpoint_url=self.endpoint)

    def depth(self, url: str | None = None) -> tuple[int, int]:
        """(visible, in flight) of the queue, or of `url`."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attrs = self.client().get_queue_attributes(QueueUrl=url or self.url, AttributeNames=names)
        return tuple(int(attrs["Attributes"][name]) for name in names)  # type: ignore[return-value]


def make_queues(endpoint: str, *, name: str, visibility: int) -> Queues:
    """A queue with a redrive policy to its DLQ after MAX_RECEIVE_COUNT, as provision does."""
    client = boto3.client("sqs", region_name="us-east-1", endpoint_url=endpoint)
    dlq_url = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    attributes = {"VisibilityTimeout": str(visibility), "RedrivePolicy": json.dumps(redrive)}
    url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return Queues(endpoint=endpoint, url=url, dlq_url=dlq_url)


# --- the traffic -------------------------------------------------------------------------------


@dataclass
class Traffic:
    """What a scenario sends: bodies in sending order, and what each kind should become."""

    bodies: list[str]
    valid_ids: set[str]
    duplicates: int
    malformed: int


def envelopes(*, events: int, seed: int) -> list[dict]:
    """At least `events` envelopes of the simulator's seeded plan, whole jobs, fresh ids."""
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    jobs = max(1, events // 46)
    while True:
        plan = plan_jobs(jobs=jobs, seed=seed, fail_rate=0.1, start=start, concurrency=4)
        if len(plan) >= events:
            break
        jobs += max(1, (events - len(plan)) // 40)
    sent: dict[int, dict[str, dict]] = defaultdict(dict)
    out = []
    for event in plan:
        detail = event.detail
        if event.fn:
            incoming = sent[event.job][event.trigger]
            detail = event_detail(
                incoming, event.detail_type, event.detail, source=event.source, fn=event.fn
            )
        envelope = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": event.detail_type,
            "source": event.source,
            "account": ACCOUNT,
            "time": event.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1",
            "resources": list(event.resources),
            "detail": detail,
        }
        sent[event.job][event.key] = envelope
        out.append(envelope)
    return out


def malformed_bodies() -> list[str]:
    bodies = json.loads((SAMPLES / "malformed_bodies.json").read_text())["bodies"]
    return [body if body.strip() else " " for body in bodies]  # SQS refuses an empty body


# The scenarios' sizes are multiplied by this: `make test` runs them at half the size that
# docs/RELIABILITY.md's table was measured at (EDOBS_FAULT_SCALE=1) to keep CI in its budget,
SCALE = float(os.environ.get("EDOBS_FAULT_SCALE", "0.5"))
# and at 0.3 the scenarios whose fault is a time window (an outage, a held lock, throttling) or a
# race of workers: a few hundred events cover those, while the kills need traffic still
# flowing at the fourth. EDOBS_FAULT_SCALE sets both.
WINDOW_SCALE = float(os.environ.get("EDOBS_FAULT_SCALE", "0.3"))


def traffic(
    *, events: int, seed: int, duplicate_rate: float = 0.1, scale: float = SCALE
) -> Traffic:
    """Seeded valid envelopes (`events` × `scale`, EDOBS_FAULT_SCALE), `duplicate_rate` of them
    sent twice, and every malformed sample.

    Copies and malformed bodies are slotted in at seeded random places after their original.
    """
    events = max(50, round(events * scale))
    rng = random.Random(seed)
    valid = [json.dumps(envelope) for envelope in envelopes(events=events, seed=seed)]
    bodies = list(valid)
    copies = rng.sample(range(len(valid)), int(len(valid) * duplicate_rate))
    for index in copies:
        bodies.insert(rng.randrange(index + 1, len(bodies) + 1), valid[index])
    bad = malformed_bodies()
    for body in bad:
        bodies.insert(rng.randrange(len(bodies) + 1), body)
    ids = {json.loads(body)["id"] for body in valid}
    return Traffic(bodies=bodies, valid_ids=ids, duplicates=len(copies), malformed=len(bad))


class Producer(threading.Thread):
    """Streams bodies into the queue in batches of 10, keeping it under MAX_IN_FLIGHT deep."""

    def __init__(self, queues: Queues, bodies: list[str]) -> None:
        super().__init__(daemon=True, name="fault-producer")
        self.queues, self.bodies = queues, bodies
        self.sent = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        client = self.queues.client()
        try:
            for start in range(0, len(self.bodies), 10):
                self._wait_until_shallow()
                if self.stop.is_set():
                    return
                chunk = self.bodies[start : start + 10]
                entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk)]
                response = client.send_message_batch(QueueUrl=self.queues.url, Entries=entries)
                assert not response.get("Failed"), response["Failed"]
                self.sent += len(chunk)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def _wait_until_shallow(self) -> None:
        while not self.stop.is_set() and sum(self.queues.depth()) >= MAX_IN_FLIGHT:
            time.sleep(0.05)

    def finish(self, stall: float = STALL_SECONDS) -> None:
        """Wait while it sends; give up when it has sent nothing for `stall` seconds."""
        last, moved = -1, time.monotonic()
        while self.is_alive() and time.monotonic() - moved < stall:
            if self.sent != last:
                last, moved = self.sent, time.monotonic()
            self.join(0.5)
        if self.is_alive():
            self.stop.set()
            self.join(5)
            raise AssertionError(f"producer stuck for {stall:.0f} s: sent {self.sent}")
        if self.error:
            raise self.error


# --- the workers -------------------------------------------------------------------------------


def worker_env(*, queues: Queues, var_dir: Path, database_url: str, **extra: str) -> dict:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": queues.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "EDOBS_QUEUE_URL": queues.url,
        "EDOBS_VAR_DIR": str(var_dir),
        "DATABASE_URL": database_url,
        "EDOBS_STORE": "orm",
        "EDOBS_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "edobs_site.settings",
        **extra,
    }
    env.pop("REDIS_URL", None)
    env.update(extra)
    return env


def manage(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=timeout, check=True,
    )  # fmt: skip


@dataclass
class Workers:
    """Real `manage.py consume_events --wait 1` processes; logs go to files under `logs`."""

    env: dict
    logs: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)
    killed: int = 0

    def start(self, count: int = 1) -> None:
        for _ in range(count):
            number = len(self.procs)
            out = open(self.logs / f"worker-{number}.out", "w")  # noqa: SIM115
            err = open(self.logs / f"worker-{number}.err", "w")  # noqa: SIM115
            proc = subprocess.Popen(
                [sys.executable, "manage.py", "consume_events", "--wait", "1"],
                cwd=ROOT, env=self.env, stdout=out, stderr=err,
            )  # fmt: skip
            out.close()
            err.close()
            self.procs.append(proc)

    def running(self) -> list[subprocess.Popen]:
        return [proc for proc in self.procs if proc.poll() is None]

    def sigkill(self, proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.killed += 1

    def stop(self) -> None:
        """SIGTERM every live worker (it finishes the batch in hand), SIGKILL what lingers."""
        live = self.running()
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        for proc in live:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for number, proc in enumerate(self.procs):
            if proc in live and proc.returncode == 0:
                self.summaries.append((self.logs / f"worker-{number}.out").read_text())

    def kill_all(self) -> None:
        for proc in self.running():
            proc.kill()
            proc.wait(10)

    def reported(self, name: str) -> int:
        """Sum of `name=N` over the summaries of the workers that stopped cleanly."""
        total = 0
        for summary in self.summaries:
            for part in summary.split():
                if part.startswith(f"{name}="):
                    total += int(part.split("=", 1)[1])
        return total

    def log_count(self, text: str) -> int:
        """How many times `text` occurs in all the workers' logs."""
        return sum(p.read_text().count(text) for p in self.logs.glob("worker-*.err"))

    def stderr(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.logs.glob("worker-*.err")))


# --- the database ------------------------------------------------------------------------------


class Counter:
    """Reads the counts straight from the database the workers write."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url

    def _rows(self, sql: str) -> list[tuple]:
        if self.url.startswith("sqlite:///"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30) as conn:
                return conn.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(self.url, connect_timeout=3) as conn:
            return conn.execute(sql).fetchall()

    def stored_ids(self) -> list[str]:
        return [row[0] for row in self._rows("SELECT event_id FROM events_event")]

    def job_event_ids(self, job: str) -> list[str]:
        """The stored event ids of one job (job ids here come from seeded traffic)."""
        quoted = job.replace("'", "''")
        return [row[0] for row in self._rows(
            f"SELECT event_id FROM events_event WHERE job_id = '{quoted}'"
        )]  # fmt: skip

    def quarantined(self) -> list[tuple[str, str]]:
        return self._rows("SELECT message_id, body FROM events_rejectedmessage")

    def safe_count(self) -> int:
        try:
            return self._rows("SELECT count(*) FROM events_event")[0][0]
        except Exception:  # the store may be down on purpose
            return -1


def wait_for_drain(*, queues: Queues, counter: Counter, expected: int, malformed: int) -> None:
    """Until every event is stored, every malformed body quarantined and the queue is empty;
    or until nothing has moved for STALL_SECONDS: the outcome's counts then say what is
    missing.  Moving means rows stored or messages sent or deleted (not a message going in
    and out of flight, which a worker failing on every batch would do forever)."""
    last, moved = None, time.monotonic()
    while time.monotonic() - moved < STALL_SECONDS:
        stored, depth = counter.safe_count(), queues.depth()
        if (stored, sum(depth)) != last:
            last, moved = (stored, sum(depth)), time.monotonic()
        if stored >= expected and depth == (0, 0):
            try:
                if len({m for m, _ in counter.quarantined()}) >= malformed:
                    return
            except Exception:
                pass
        time.sleep(0.3)


class WriteLock:
    """SQLite's write lock, held by another connection: every worker's store waits meanwhile.

    A real way to make a store slow (no patching): the workers' connections wait up to their
    busy timeout (worker_env(..., DATABASE_BUSY_TIMEOUT=...)) and go on once it is released.
    """

    def __init__(self, database_url: str) -> None:
        self.path = database_url.removeprefix("sqlite:///")
        self.conn: sqlite3.Connection | None = None

    def __enter__(self) -> WriteLock:
        self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc) -> None:
        assert self.conn is not None
        self.conn.rollback()
        self.conn.close()
        self.conn = None


def batch_in_hand(queues: Queues, *, timeout: float = DRAIN_SECONDS) -> int:
    """How many messages are in flight once two readings 0.1 s apart agree (and are not 0)."""
    deadline = time.monotonic() + timeout
    last = 0
    while time.monotonic() < deadline:
        in_flight = queues.depth()[1]
        if in_flight and in_flight == last:
            return in_flight
        last = in_flight
        time.sleep(0.1)
    raise AssertionError(f"no worker took a batch: (visible, in flight) = {queues.depth()}")


# --- the report --------------------------------------------------------------------------------


@dataclass
class Outcome:
    scenario: str
    events_sent: int  # valid, unique
    duplicate_copies_sent: int
    malformed_sent: int
    stored: int
    stored_twice: int
    duplicates_dropped: int  # valid deliveries that made no new row, as the workers reported
    quarantined: int  # RejectedMessage rows
    lost: int
    queue_left: int
    dlq_left: int
    elapsed_seconds: float
    notes: str = ""


def outcome(
    *,
    scenario: str,
    sent: Traffic,
    queues: Queues,
    counter: Counter,
    workers: Workers,
    started: float,
    notes: str = "",
) -> Outcome:
    ids = counter.stored_ids()
    result = Outcome(
        scenario=scenario,
        events_sent=len(sent.valid_ids),
        duplicate_copies_sent=sent.duplicates,
        malformed_sent=sent.malformed,
        stored=len(set(ids)),
        stored_twice=len(ids) - len(set(ids)),
        duplicates_dropped=workers.reported("duplicates"),
        quarantined=len(counter.quarantined()),
        lost=len(sent.valid_ids - set(ids)),
        queue_left=sum(queues.depth()),
        dlq_left=sum(queues.depth(queues.dlq_url)),
        elapsed_seconds=round(time.monotonic() - started, 1),
        notes=notes,
    )
    record(result)
    return result


def record(result: Outcome) -> None:
    """Merge this scenario's counts into bench/results/reliability.json for the docs."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        data = {}
    data[result.scenario] = asdict(result)
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    logger.warning("fault scenario %s: %s", result.scenario, asdict(result))


def assert_exact(
    result: Outcome, sent: Traffic, counter: Counter, *, malformed: list[str] | None = None
) -> None:
    """The contract: every valid event once, every malformed body quarantined once, no leftovers."""
    assert result.lost == 0, result
    assert result.stored_twice == 0, result
    assert result.stored == len(sent.valid_ids), result
    bad = sorted(body for _, body in counter.quarantined())
    assert bad == sorted(malformed_bodies() if malformed is None else malformed), result
    assert (result.queue_left, result.dlq_left) == (0, 0), result


def send(queues: Queues, bodies: list[str]) -> None:
    """Stream `bodies` into the queue (kept shallow) and return when all are sent."""
    producer = Producer(queues, bodies)
    producer.start()
    producer.finish()


def wait_until(check, *, timeout: float = DRAIN_SECONDS, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


def thirds(bodies: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Before, during and after a fault."""
    a, b = len(bodies) // 3, 2 * len(bodies) // 3
    return bodies[:a], bodies[a:b], bodies[b:]


# --- the DynamoDB store ------------------------------------------------------------------------

REGION = "us-east-1"
# As events/aws.py configures the workers' clients: botocore retries throttling 4 more times.
RETRIES = Config(retries={"max_attempts": 5, "mode": "standard"})


def dynamodb(endpoint: str):
    return boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint, config=RETRIES)


def scan(client, table: str, **kwargs) -> list[dict]:
    """Every item of the table (page by page), straight from moto."""
    items: list[dict] = []
    request = {"TableName": table, **kwargs}
    while True:
        response = client.scan(**request)
        items += response["Items"]
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


class DynamoCounter:
    """harness.Counter's interface over the DynamoDB table (quarantine rows stay in SQLite).

    DynamoStore writes one event item (`pk=EVENT#...`, its `id` attribute) and one marker
    (`pk=ID#<id>`, `ref` = the event item's sort key) per stored event; an event stored twice
    would be two event items with the same id (their sort keys carry the arrival time).
    """

    def __init__(self, *, endpoint: str, table: str, database_url: str) -> None:
        self.client = dynamodb(endpoint)
        self.table = table
        self.database = Counter(database_url)

    def _items(self) -> list[dict]:
        return scan(self.client, self.table, ProjectionExpression="pk, sk, id, #ref",
                    ExpressionAttributeNames={"#ref": "ref"})  # fmt: skip

    def stored_ids(self) -> list[str]:
        return [i["id"]["S"] for i in self._items() if i["pk"]["S"].startswith("EVENT#")]

    def orphans(self) -> tuple[list[str], list[str]]:
        """(markers without their event item, event items without their marker)."""
        items = self._items()
        events = {i["sk"]["S"] for i in items if i["pk"]["S"].startswith("EVENT#")}
        markers = {i["pk"]["S"].removeprefix("ID#"): i["ref"]["S"] for i in items
                   if i["pk"]["S"].startswith("ID#")}  # fmt: skip
        lonely_markers = [event for event, ref in markers.items() if ref not in events]
        marked = set(markers.values())
        lonely_events = [sk for sk in events if sk not in marked]
        return lonely_markers, lonely_events

    def quarantined(self) -> list[tuple[str, str]]:
        return self.database.quarantined()

    def safe_count(self) -> int:
        try:
            return len(self.stored_ids())
        except Exception:
            return -1


def table_in(moto_endpoint: str, name: str) -> str:
    """The project's own table definition, created in moto directly (not through the proxy)."""
    ensure_table(dynamodb(moto_endpoint), name)
    return name


def quarantine_reasons(database_url: str) -> dict[str, str]:
    """{body: reason} of the quarantined messages (RejectedMessage rows are in the ORM database
    whatever the store)."""
    return dict(Counter(database_url)._rows("SELECT body, reason FROM events_rejectedmessage"))

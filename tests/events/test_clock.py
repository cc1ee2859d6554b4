"""Time to the millisecond (DESIGN section 9): each event's best clock, from the kit's
`meta.emittedAt`, Step Functions' dates, SQS's SentTimestamp or the envelope, in that order."""

from __future__ import annotations

import json
import math
import time
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from events.domain.clock import best_clock, ms
from events.ingest.worker import Worker
from events.models import Event
from infra.instrument import event_detail

ACCOUNT = "123456789012"
MACHINE = "Clocked"
ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:{MACHINE}:job-ms"
JOB = f"{ACCOUNT}:us-east-1:{MACHINE}:job-ms"
T = datetime(2026, 11, 20, 9, 0, 17, tzinfo=UTC)  # an envelope's whole second
T_MS = ms(T)


def at_of(detail: dict, *, source: str = "project", delivered=None, replayed=False):
    return best_clock(
        time=T, detail=detail, source=source, delivered_at=delivered, replayed=replayed
    )


def status_detail(status: str, *, start: object, stop: object = None) -> dict:
    return {"executionArn": ARN, "status": status, "startDate": start, "stopDate": stop}


# --- the order of the clocks (pure) -------------------------------------------------------------


def test_the_producer_clock_wins_over_every_other():
    detail = {**status_detail("SUCCEEDED", start=T_MS, stop=T_MS + 300)}
    detail["meta"] = {"emittedAt": T_MS + 350}

    at, source = at_of(detail, source="aws.states", delivered=T_MS + 400)

    assert (ms(at), source) == (T_MS + 350, "producer")


@pytest.mark.parametrize(
    ("status", "expected"),
    [("RUNNING", T_MS - 40), ("SUCCEEDED", T_MS + 300), ("FAILED", T_MS + 300)],
)
def test_a_status_event_uses_its_start_or_stop_date(status, expected):
    detail = status_detail(status, start=T_MS - 40, stop=T_MS + 300)

    at, source = at_of(detail, source="aws.states", delivered=T_MS + 400)

    assert (ms(at), source) == (expected, "stepfunctions")


def test_delivery_comes_before_the_envelope_and_the_envelope_last():
    assert at_of({}, delivered=T_MS + 623) == (T + timedelta(milliseconds=623), "delivery")
    assert at_of({}) == (T, "envelope")


def test_only_step_functions_own_status_events_give_the_stepfunctions_clock():
    detail = status_detail("SUCCEEDED", start=T_MS, stop=T_MS + 300)

    assert at_of(detail, source="project", delivered=T_MS + 400)[1] == "delivery"


HOSTILE = [
    "1795165217350",  # a string is not a number
    True,
    float("nan"),
    math.inf,
    None,
    {"ms": 1},
    253402300799000,  # 9999-12-31: a real instant, absurdly far from the envelope
    -T_MS,
    10**30,  # past any datetime
    T_MS + 2 * 86_400_000,  # two days off: a broken clock
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_producer_clock_falls_back_to_the_next_one(value):
    assert at_of({"meta": {"emittedAt": value}}, delivered=T_MS + 5)[1] == "delivery"
    detail = {**status_detail("RUNNING", start=T_MS - 1), "meta": {"emittedAt": value}}
    assert at_of(detail, source="aws.states")[1] == "stepfunctions"


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_status_date_or_delivery_falls_back(value):
    assert at_of(status_detail("RUNNING", start=value), source="aws.states")[1] == "envelope"
    assert at_of({}, delivered=value) == (T, "envelope")


def test_a_late_or_replayed_delivery_is_not_when_the_event_happened():
    assert at_of({}, delivered=T_MS + 3_600_000) == (T, "envelope")  # retried for an hour
    assert at_of({}, delivered=T_MS + 200, replayed=True) == (T, "envelope")


# --- through SQS (moto's server) and the worker -------------------------------------------------


@pytest.fixture
def queue(moto_endpoint, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    client = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_endpoint)
    url = client.create_queue(QueueName="edobs-clock")["QueueUrl"]
    return client, url


def envelope(detail_type: str, detail: dict, *, at: float, source: str = "project", **extra):
    """What EventBridge delivers: `time` is the whole second of the moment `at` (epoch s)."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
        "account": ACCOUNT, "region": "us-east-1", "resources": [], "detail": detail,
        "time": datetime.fromtimestamp(math.floor(at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **extra,
    }  # fmt: skip


def kit(incoming: dict, detail_type: str, fn: str, at: float, **payload) -> dict:
    """A Lambda's event, built by the kit with a controlled clock."""
    detail = event_detail(incoming, detail_type, payload, source="project", fn=fn, clock=lambda: at)
    return envelope(detail_type, detail, at=at)


def status(name: str, *, started: float, stopped: float | None = None) -> dict:
    detail = {
        "executionArn": ARN, "name": "job-ms", "status": name,
        "startDate": round(started * 1000),
        "stopDate": round(stopped * 1000) if stopped else None,
    }  # fmt: skip
    return envelope(
        "Step Functions Execution Status Change", detail, at=stopped or started,
        source="aws.states",
    )  # fmt: skip


def send_and_consume(client, url: str, envelopes: list[dict]) -> None:
    entries = [{"Id": str(i), "MessageBody": json.dumps(e)} for i, e in enumerate(envelopes)]
    client.send_message_batch(QueueUrl=url, Entries=entries)
    Worker(client=client, url=url, wait_seconds=0).run(once=True)


def stored(envelope_: dict) -> Event:
    return Event.objects.get(event_id=envelope_["id"])


@pytest.mark.django_db(transaction=True)
def test_spans_last_what_the_producers_clocks_say(queue, client, superuser):
    sqs, url = queue
    t0 = time.time()
    running = status("RUNNING", started=t0)
    get_users = envelope("getUsers", {"execution": ARN, "stateName": "GetMultiple"}, at=t0)
    send_and_consume(sqs, url, [running, get_users])  # SentTimestamp: just after t0
    done = kit(get_users, "done", "getMultipleFn", t0 + 0.137, names=["Ada"])
    cookies = kit(done, "getUserCookies", "processSingleFn", t0 + 0.412, name="Ada")
    processed = kit(cookies, "processed", "postProcessSingleFn", t0 + 0.463, name="Ada")
    hostile = kit(cookies, "async.done", "sideEffectFn", t0 + 0.5)
    hostile["detail"]["meta"]["emittedAt"] = "0.5 s later"
    succeeded = status("SUCCEEDED", started=t0, stopped=t0 + 0.530)
    send_and_consume(sqs, url, [done, cookies, processed, hostile, succeeded])

    sources = {e["detail-type"]: stored(e).at_source for e in (get_users, done, hostile)}
    assert sources == {"getUsers": "delivery", "done": "producer", "async.done": "delivery"}
    assert stored(running).at_source == stored(succeeded).at_source == "stepfunctions"
    delivered = stored(get_users).at
    assert timedelta(0) <= delivered - datetime.fromtimestamp(t0, UTC) < timedelta(seconds=2)

    client.force_login(superuser)
    timeline = client.get(f"/api/jobs/{JOB}/timeline").json()
    spans = {span["fn"]: span for span in timeline["spans"]}
    expected = {
        "getMultipleFn": round((t0 + 0.137) * 1000) - ms(delivered),
        "processSingleFn": 275,
        "postProcessSingleFn": 51,
    }
    for fn, duration in expected.items():
        assert abs(spans[fn]["duration_ms"] - duration) <= 1, fn
        assert spans[fn]["approx"] is False and spans[fn]["paired_by"] == "id"
    assert timeline["execution"]["start"] == iso(t0)
    assert timeline["execution"]["stop"] == iso(t0 + 0.530)

    events = client.get(f"/api/jobs/{JOB}/events").json()["results"]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    by_type = {e["detail_type"]: e for e in events}
    assert by_type["getUserCookies"]["at"] == iso(t0 + 0.412)
    assert by_type["getUserCookies"]["at_source"] == "producer"

    graph = client.get("/api/architecture", {"since": "2000-01-01T00:00:00Z"}).json()
    edge = next(e for e in graph["edges"] if e["source"] == "fn:processSingleFn")
    # the ORM store's rollups keep latencies in a DDSketch: within 1% of the exact value
    assert abs(edge["p50_ms"] - 275) <= 275 * 0.01


def iso(epoch_seconds: float) -> str:
    moment = datetime.fromtimestamp(round(epoch_seconds * 1000) / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.django_db(transaction=True)
def test_a_late_or_replayed_delivery_keeps_the_envelope_time(queue):
    sqs, url = queue
    hour_ago = time.time() - 3600
    late = envelope("start", {}, at=hour_ago)  # EventBridge retried it for an hour
    replayed = envelope("start", {}, at=time.time(), **{"replay-name": "r1"})

    send_and_consume(sqs, url, [late, replayed])

    for envelope_ in (late, replayed):
        row = stored(envelope_)
        assert (row.at, row.at_source) == (row.time, "envelope")

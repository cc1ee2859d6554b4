"""The demo traffic: a seeded plan of the DESIGN section 7 workflow, and the sender."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from infra.traffic import (
    MAP_CONCURRENCY,
    STATUS_SOURCE,
    TrafficError,
    iter_jobs,
    plan_jobs,
)
from infra.traffic_send import run_traffic

REGION = "us-east-1"
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def recorded_batches(client) -> list[list[dict]]:
    """Every Entries list the (real, moto-backed) client is asked to put, as it was given."""
    batches: list[list[dict]] = []
    client.meta.events.register(
        "provide-client-params.events.PutEvents",
        lambda params, **_: batches.append(params["Entries"]),
    )
    return batches


def refuse_on_the_way(client, refuse, *, code: str, message: str) -> list[dict]:
    """AWS refusals moto does not make, on a real moto-backed client: the entries `refuse`
    picks get AWS's per-entry error (code, message) and are not forwarded; the others are put
    on moto's bus by a plain client and moto's own answer is relayed.  Nothing is invented:
    work is only withheld, and said so the way PutEvents says so.  Returns what was withheld.
    """
    upstream = boto3.client("events", region_name=client.meta.region_name)
    withheld: list[dict] = []

    def keep_entries(params, context, **_):
        context["edobs_entries"] = params["Entries"]

    def answer(context, **_):
        entries = context["edobs_entries"]
        passed = [entry for entry in entries if not refuse(entry)]
        answers = iter(upstream.put_events(Entries=passed)["Entries"] if passed else [])
        results = []
        for entry in entries:
            if refuse(entry):
                withheld.append(entry)
                results.append({"ErrorCode": code, "ErrorMessage": message})
            else:
                results.append(next(answers))
        failed = sum("ErrorCode" in result for result in results)
        return AWSResponse("", 200, {}, None), {"FailedEntryCount": failed, "Entries": results}

    client.meta.events.register("before-parameter-build.events.PutEvents", keep_entries)
    client.meta.events.register("before-call.events.PutEvents", answer)
    return withheld


def shape(entry: dict) -> tuple:
    """What must repeat with the same seed: source, detail-type, the user names involved."""
    detail = json.loads(entry["Detail"])
    return (
        entry["Source"],
        entry["DetailType"],
        detail.get("name"),
        tuple(detail.get("names", ())),
    )


def job_of(detail: dict) -> str | None:
    return detail.get("execution") or detail.get("executionArn")


@pytest.fixture
def aws(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def bus(aws):
    """A rule on the demo's sources delivering to a queue; yields (events client, drain)."""
    sqs, events = (
        boto3.client("sqs", region_name=REGION),
        boto3.client("events", region_name=REGION),
    )
    url = sqs.create_queue(QueueName="edobs-traffic")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    pattern = {"source": ["project", STATUS_SOURCE]}
    events.put_rule(Name="demo", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="demo", Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}])

    def drain() -> list[dict]:
        bodies: list[dict] = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            bodies += [json.loads(message["Body"]) for message in messages]
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        return bodies

    return events, drain


# --- through EventBridge and SQS (moto) --------------------------------------------------------


def test_it_delivers_4n_plus_4_events_per_job_plus_status_events(bus):
    events, drain = bus

    stats = run_traffic(client=events, jobs=3, concurrency=2, fail_rate=0.0, speed=0, seed=1)
    delivered = drain()

    assert stats.events_sent == len(delivered)
    assert (stats.jobs_started, stats.jobs_done, stats.jobs_failed) == (3, 3, 0)
    by_job: dict[str | None, list[dict]] = defaultdict(list)
    for event in delivered:
        by_job[job_of(event["detail"])].append(event)
    starts = by_job.pop(None)
    assert [e["detail-type"] for e in starts] == ["start"] * 3
    assert len(by_job) == 3
    for job_events in by_job.values():
        status = [e for e in job_events if e["source"] == STATUS_SOURCE]
        work = [e for e in job_events if e["source"] != STATUS_SOURCE]
        [names] = [e["detail"]["names"] for e in work if _fn(e) == "getMultipleFn"]
        assert len(work) == 4 * len(names) + 4
        assert sorted(e["detail"]["status"] for e in status) == ["RUNNING", "SUCCEEDED"]
    assert len(delivered) == sum(4 * n + 4 + 1 + 2 for n in _names_per_job(delivered))


def _fn(event: dict) -> str | None:
    return event["detail"].get("meta", {}).get("fn")


def _names_per_job(delivered: list[dict]) -> list[int]:
    return [len(e["detail"]["names"]) for e in delivered if _fn(e) == "getMultipleFn"]


def test_every_lambda_event_names_the_delivered_event_that_triggered_it(bus):
    events, drain = bus

    run_traffic(client=events, jobs=3, concurrency=3, fail_rate=0.0, speed=0, seed=1)
    delivered = drain()

    by_id = {event["id"]: event for event in delivered}
    lambda_events = [event for event in delivered if "meta" in event["detail"]]
    assert len(lambda_events) == sum(2 + 3 * n for n in _names_per_job(delivered))
    for event in lambda_events:
        meta = event["detail"]["meta"]
        trigger = by_id[meta["incoming"]["id"]]
        assert trigger["detail-type"] == meta["incoming"]["detailType"]
        assert trigger["source"] == meta["incoming"]["source"] == "project"
        assert job_of(trigger["detail"]) == job_of(event["detail"])
        assert trigger["detail"]["TaskToken"] == event["detail"]["TaskToken"]
        assert meta["outgoing"] == {"source": event["source"], "detailType": event["detail-type"]}
        assert meta["stateMachine"] == "EventDrivenMachine"
        assert event["time"] >= trigger["time"]


def test_the_same_seed_gives_the_same_traffic(bus):
    events, drain = bus
    batches = recorded_batches(events)
    runs = []
    for seed in (7, 7, 8):
        batches.clear()
        run_traffic(client=events, jobs=3, concurrency=2, speed=0, seed=seed, fail_rate=0.3)
        runs.append(([shape(e) for batch in batches for e in batch], drain()))

    (first_sent, first_delivered), (second_sent, second_delivered), (other_sent, _) = runs
    assert first_sent == second_sent
    assert Counter(_delivered_shape(e) for e in first_delivered) == Counter(
        _delivered_shape(e) for e in second_delivered
    )
    assert other_sent != first_sent


def _delivered_shape(event: dict) -> tuple:
    detail = event["detail"]
    return (event["detail-type"], job_of(detail), detail.get("name"), detail.get("status"))


def test_it_sends_batches_of_at_most_ten_with_no_event_beside_its_trigger(bus):
    events, drain = bus
    batches = recorded_batches(events)

    stats = run_traffic(client=events, jobs=4, concurrency=2, speed=0, seed=3)

    sizes = [len(batch) for batch in batches]
    assert max(sizes) == 10 and all(1 <= size <= 10 for size in sizes)
    assert stats.events_sent == sum(sizes) == len(drain())
    for batch in batches:
        details = [json.loads(entry["Detail"]) for entry in batch]
        in_batch = {
            (d.get("TaskToken"), e["DetailType"]) for d, e in zip(details, batch, strict=True)
        }
        for detail in details:
            if "meta" in detail:  # a Lambda event: its trigger has its token and incoming type
                trigger = (detail["TaskToken"], detail["meta"]["incoming"]["detailType"])
                assert trigger not in in_batch


def test_it_reports_progress_after_every_batch(bus):
    events, drain = bus
    batches, calls = recorded_batches(events), []

    stats = run_traffic(
        client=events, jobs=2, speed=0, seed=1, on_progress=lambda *a: calls.append(a)
    )

    assert len(calls) >= len(batches) > 0
    assert calls[-1] == (stats.events_sent, 2)
    assert [sent for sent, _ in calls] == sorted(sent for sent, _ in calls)
    assert stats.events_sent == len(drain())


def test_jobs_zero_runs_until_stopped(bus):
    events, drain = bus
    stop = threading.Event()

    def progress(sent: int, done: int) -> None:
        if done >= 2:
            stop.set()

    options = {"jobs": 0, "concurrency": 2, "speed": 0, "seed": 2}
    thread = threading.Thread(
        target=run_traffic,
        kwargs={"client": events, "on_progress": progress, "stop_event": stop, **options},
    )
    thread.start()
    thread.join(timeout=60)

    assert not thread.is_alive()
    assert stop.is_set()
    delivered = drain()
    finished = {
        e["detail"]["executionArn"]
        for e in delivered
        if e["source"] == STATUS_SOURCE and e["detail"]["status"] != "RUNNING"
    }
    assert len(finished) >= 2


def test_a_stop_request_interrupts_the_waiting(bus):
    events, drain = bus
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()

    began = time.monotonic()
    stats = run_traffic(client=events, jobs=1, speed=10, seed=1, stop_event=stop)

    assert time.monotonic() - began < 5
    assert 0 < stats.events_sent < len(plan_jobs(jobs=1, seed=1, fail_rate=0, start=START))
    assert len(drain()) == stats.events_sent


def test_speed_scales_the_real_waiting(bus):
    events, drain = bus
    [plan] = list(iter_jobs(seed=4, fail_rate=0.0, start=START, jobs=1))
    span = plan.events[-1].offset

    began = time.monotonic()
    run_traffic(client=events, jobs=1, speed=span / 0.5, seed=4)
    elapsed = time.monotonic() - began

    assert 0.4 < elapsed < 3
    assert len(drain()) == len(plan.events)


def test_envelope_times_follow_the_simulated_clock(bus):
    events, drain = bus
    batches = recorded_batches(events)

    run_traffic(client=events, jobs=2, speed=0, seed=5, start=START)

    planned = plan_jobs(jobs=2, seed=5, fail_rate=0.0, start=START)
    sent = [entry for batch in batches for entry in batch]
    assert [entry["Time"] for entry in sent] == [event.time for event in planned]
    assert sent[0]["Time"] == START  # the first job starts at once
    delivered = Counter(event["time"] for event in drain())
    assert delivered == Counter(e.time.strftime("%Y-%m-%dT%H:%M:%SZ") for e in planned)


def test_status_events_can_be_left_out(bus):
    events, drain = bus

    stats = run_traffic(client=events, jobs=3, speed=0, seed=1, status_events=False)

    delivered = drain()
    assert len(delivered) == stats.events_sent > 0
    assert STATUS_SOURCE not in {event["source"] for event in delivered}
    assert stats.jobs_done == 3


def test_refused_status_events_are_counted_not_fatal(bus):
    events, drain = bus
    # On AWS only Step Functions may put aws.* sources; moto accepts them.
    withheld = refuse_on_the_way(
        events, lambda entry: entry["Source"] == STATUS_SOURCE,
        code="NotAuthorizedForSourceException", message="Not authorized for the source.",
    )  # fmt: skip

    stats = run_traffic(client=events, jobs=2, speed=0, seed=1)

    delivered = drain()
    assert len(withheld) == stats.status_rejected == 4
    assert stats.jobs_done == 2
    assert stats.events_sent == len(delivered) > 0
    assert STATUS_SOURCE not in {event["source"] for event in delivered}


# --- the plan (pure) ---------------------------------------------------------------------------


def _jobs(**overrides) -> list:
    arguments = {"seed": 11, "fail_rate": 0.0, "start": START, "jobs": 8} | overrides
    return list(iter_jobs(**arguments))


def test_a_job_follows_the_workflow_in_order():
    for plan in _jobs():
        kinds = [(e.source, e.detail_type, e.fn) for e in plan.events]
        n = len(plan.names)
        assert kinds[:4] == [
            ("project", "start", None),
            (STATUS_SOURCE, "Step Functions Execution Status Change", None),
            ("project", "getUsers", None),
            ("project", "done", "getMultipleFn"),
        ]
        assert kinds.count(("project", "getUserProfile", None)) == n
        expected = {
            "getMultipleFn": 1,
            "processSingleFn": n,
            "postProcessSingleFn": n,
            "sideEffectFn": n,
            "postProcessAllFn": 1,
        }
        assert Counter(e.fn for e in plan.events if e.fn) == +Counter(expected)
        report = next(e for e in plan.events if e.detail_type == "generateReport")
        single_done = [e.offset for e in plan.events if e.fn == "postProcessSingleFn"]
        assert all(offset < report.offset for offset in single_done)
        [succeeded] = [e for e in plan.events if e.terminal]
        assert succeeded.detail["status"] == "SUCCEEDED" and succeeded.offset == plan.end


def test_at_most_two_names_are_processed_at_a_time():
    for plan in _jobs():
        changes = []
        for event in plan.events:
            if event.detail_type == "getUserProfile":
                changes.append((event.offset, 1))
            if event.fn == "postProcessSingleFn":
                changes.append((event.offset, -1))
        running = peak = 0
        for _, change in sorted(changes):
            running += change
            peak = max(peak, running)
        assert peak <= MAP_CONCURRENCY


def test_every_lambda_event_comes_after_its_trigger():
    for plan in _jobs(fail_rate=0.5):
        by_key = {event.key: event for event in plan.events}
        for event in plan.events:
            if event.fn:
                assert by_key[event.trigger].offset < event.offset
                assert by_key[event.trigger].fn != "sideEffectFn"


def test_failing_jobs_stop_with_a_failed_status_and_a_cause():
    plans = _jobs(fail_rate=1.0, jobs=12)

    for plan in plans:
        [terminal] = [e for e in plan.events if e.terminal]
        assert plan.failed and terminal.detail["status"] == "FAILED"
        assert terminal.detail["error"] and terminal.detail["cause"].startswith("The state ")
        assert terminal.detail["stopDate"] > terminal.detail["startDate"]
        work = [e for e in plan.events if e.source != STATUS_SOURCE and e.detail_type != "start"]
        assert len(work) < 4 * len(plan.names) + 4
        put_after = [e for e in plan.events if e.offset > terminal.offset and not e.fn]
        assert put_after == []  # the state machine puts nothing once it failed
    assert {p.events[-1].detail_type for p in plans} >= {"Step Functions Execution Status Change"}
    causes = {e.detail["cause"] for plan in plans for e in plan.events if e.terminal}
    assert len(causes) > 1


def test_the_fail_rate_is_roughly_respected():
    failed = sum(plan.failed for plan in _jobs(fail_rate=0.25, jobs=200))

    assert 25 <= failed <= 75


def test_concurrency_bounds_the_jobs_running_at_once():
    for concurrency in (1, 3):
        plans = _jobs(concurrency=concurrency, jobs=12)
        starts = [plan.start for plan in plans]
        assert starts == sorted(starts)
        for plan in plans:
            running = [p for p in plans if p.start <= plan.start < p.end]
            assert len(running) <= concurrency
    assert any(b.start < a.end for a, b in zip(plans, plans[1:], strict=False))


def _content(event) -> tuple:
    """An event without its absolute times."""
    timeless = {k: v for k, v in event.detail.items() if k not in ("startDate", "stopDate")}
    return (event.key, event.source, event.detail_type, event.fn, event.trigger, timeless)


def test_a_job_depends_only_on_the_seed_and_its_index():
    alone = _jobs(concurrency=1, jobs=4)
    together = _jobs(concurrency=4, jobs=4)

    for a, b in zip(alone, together, strict=True):
        assert (a.name, a.names, a.failed) == (b.name, b.names, b.failed)
        assert [_content(e) for e in a.events] == [_content(e) for e in b.events]
    assert _jobs(seed=12)[0].name != alone[0].name


def test_plan_jobs_is_in_sending_order():
    events = plan_jobs(jobs=5, seed=3, fail_rate=0.2, start=START, concurrency=3)

    assert [e.sort_key for e in events] == sorted(e.sort_key for e in events)
    assert all(e.time == START + timedelta(seconds=e.offset) for e in events)
    assert {e.job for e in events} == set(range(5))


def test_it_gives_up_with_a_clear_error_when_eventbridge_keeps_refusing(bus, monkeypatch):
    events, drain = bus
    monkeypatch.setattr("infra.traffic_send.time.sleep", lambda seconds: None)
    withheld = refuse_on_the_way(
        events, lambda entry: True, code="ThrottlingException", message="slow down"
    )

    with pytest.raises(TrafficError, match="3 times, last with ThrottlingException: slow down"):
        run_traffic(client=events, jobs=1, speed=0, seed=1, status_events=False)

    assert len(withheld) >= 3
    assert drain() == []


def test_lambdas_work_for_tens_to_hundreds_of_milliseconds():
    for plan in _jobs(jobs=6):
        by_key = {event.key: event for event in plan.events}
        work = [e.offset - by_key[e.trigger].offset for e in plan.events if e.fn]
        assert work and all(0.01 <= seconds < 1.0 for seconds in work)
        assert any(seconds != round(seconds, 1) for seconds in work)  # not whole tenths


def test_the_kit_stamps_each_lambda_event_with_the_simulated_clock(bus):
    events, drain = bus
    batches = recorded_batches(events)

    run_traffic(client=events, jobs=2, speed=0, seed=5, start=START)

    stamped = [
        (entry["Time"], json.loads(entry["Detail"])["meta"]["emittedAt"])
        for batch in batches
        for entry in batch
        if "meta" in json.loads(entry["Detail"])
    ]
    delivered = [e["detail"]["meta"]["emittedAt"] for e in drain() if "meta" in e["detail"]]
    assert sorted(delivered) == sorted(emitted for _, emitted in stamped)
    assert stamped
    for moment, emitted in stamped:
        assert emitted == round(moment.timestamp() * 1000)
    assert any(emitted % 1000 for _, emitted in stamped)  # milliseconds, not whole seconds

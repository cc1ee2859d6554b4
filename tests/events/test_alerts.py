"""Alerts against a real HTTP receiver (http.server on a free loopback port, in a thread).

Jobs are stored through the ORM store as the worker stores them (Step Functions status events
of several accounts, failures mid-flight); rules are evaluated and delivered by the same code
`manage.py run_alerts` runs.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import override_settings

from events.alerts import deliver, evaluate
from events.alerts.runner import AlertRunner
from events.domain.alert_payload import mrkdwn
from events.domain.envelope import parse_envelope
from events.models import AlertDelivery, AlertFiring, AlertRule, Team, TeamAccount
from events.stores import get_store, reset_stores
from tests.prom import own, value
from tests.services import free_port

from .conftest import settled

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT_A, ACCOUNT_B = "111111111111", "222222222222"
FAST = {
    "EDOBS_ALERT_INTERVAL_SECONDS": 0.2, "EDOBS_ALERT_BACKOFF_SECONDS": 0.2,
    "EDOBS_ALERT_BACKOFF_MAX_SECONDS": 5, "EDOBS_ALERT_TIMEOUT_SECONDS": 2,
    "EDOBS_ALERT_MAX_ATTEMPTS": 3, "EDOBS_ALERT_SITE_URL": "https://edobs.example.com",
    "EDOBS_STORE": "orm", "EDOBS_WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8"],
    # One post per evaluation that finds jobs (grouping: tests/events/test_alert_groups.py).
    "EDOBS_ALERT_GROUP_SECONDS": 0,
}  # fmt: skip
WATCHING = timedelta(hours=2)


class Receiver:
    """A webhook: answers each POST with the next of `answers` (the last one repeats) and
    records what it got and when."""

    def __init__(self, answers: list[int] | None = None):
        self.answers = list(answers or [200])
        self.got: list[tuple[float, dict, dict]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.arrived:
                    status = receiver.answers[min(len(receiver.got), len(receiver.answers) - 1)]
                    receiver.got.append((time.monotonic(), json.loads(body), dict(self.headers)))
                    receiver.arrived.notify_all()
                answer = f"answer {len(receiver.got)}: {status}".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?x=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 20) -> list[dict]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.got) >= count, timeout), self.got
        return [body for _, body, _ in self.got]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(answers=None) -> Receiver:
        made.append(Receiver(answers))
        return made[-1]

    yield make
    for one in made:
        one.close()


@pytest.fixture(autouse=True)
def fast_alerts():
    with override_settings(**FAST):
        reset_stores()
        yield
    reset_stores()


@pytest.fixture
def runner():
    """The alerts loop in a thread, stopped (and joined) at the end."""
    stop = threading.Event()
    loops: list[threading.Thread] = []

    def start() -> AlertRunner:
        loop = AlertRunner(stop)
        loops.append(threading.Thread(target=loop.run, daemon=True))
        loops[-1].start()
        return loop

    yield start
    stop.set()
    for thread in loops:
        thread.join(timeout=20)
        assert not thread.is_alive()


def status_event(
    job: str, status: str, *, start: datetime, stop: datetime | None = None,
    machine: str = "OrderFlow", account: str = ACCOUNT_A, error: str | None = None,
    cause: str | None = None,
) -> dict:  # fmt: skip
    arn = f"arn:aws:states:us-east-1:{account}:execution:{machine}:{job}"
    at = stop or start
    detail = {
        "executionArn": arn, "name": job, "status": status,
        "stateMachineArn": f"arn:aws:states:us-east-1:{account}:stateMachine:{machine}",
        "startDate": int(start.timestamp() * 1000),
        "stopDate": int(stop.timestamp() * 1000) if stop else None,
    }  # fmt: skip
    if error:
        detail.update(error=error, cause=cause)
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type":
        "Step Functions Execution Status Change", "source": "aws.states", "account": account,
        "time": at.isoformat().replace("+00:00", "Z"), "region": "us-east-1",
        "resources": [arn], "detail": detail,
    }  # fmt: skip


def ingest(*envelopes: dict) -> None:
    events = [parse_envelope(e, default_account=ACCOUNT_A) for e in envelopes]
    get_store().ingest(events)


def run_job(job: str, status: str, *, ago: float, ran: float = 0.4, **kwargs) -> list[dict]:
    """A job's RUNNING and final status events: started `ago` seconds ago, ran `ran` s."""
    start = datetime.now(UTC) - timedelta(seconds=ago)
    stop = start + timedelta(seconds=ran)
    pair = [status_event(job, "RUNNING", start=start, **kwargs)]
    if status != "RUNNING":
        final = dict(kwargs)
        if status == "FAILED":
            final.setdefault("error", "Payment.Declined")
            final.setdefault("cause", "card <declined> & retried")
        pair.append(status_event(job, status, start=start, stop=stop, **final))
    ingest(*pair)
    return pair


def rule(receiver_url: str, *, watching: timedelta | None = WATCHING, **fields) -> AlertRule:
    """A rule saved as the admin saves it; it watches since `watching` ago (None: from now), so
    the jobs these tests made a moment before it are its to fire for (no backfill:
    tests/events/test_alert_groups.py)."""
    fields.setdefault("name", "orders failing")
    fields.setdefault("kind", AlertRule.FAILED)
    made = AlertRule(webhook_url=receiver_url, **fields)
    made.full_clean()
    made.save()
    if watching is not None and made.enabled:
        made.enabled_at = datetime.now(UTC) - watching
        AlertRule.objects.filter(pk=made.pk).update(enabled_at=made.enabled_at)
    return made


def job_id(job: str, machine: str = "OrderFlow", account: str = ACCOUNT_A) -> str:
    return f"{account}:us-east-1:{machine}:{job}"


def delivered(firing_of, seconds: float = 15) -> AlertFiring:
    """The firing once it is no longer pending (the loop records an answer after the webhook got
    it), read while the loop may still be writing."""
    firing = settled(firing_of)
    deadline = time.monotonic() + seconds
    while firing.state == "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
        settled(firing.refresh_from_db)
    return firing


# ---- failed ------------------------------------------------------------------------------------


def test_it_posts_a_failed_job_once_in_slack_shape(receiver, runner):
    hook = receiver()
    rule(hook.url, name="orders <b>&")
    first = run_job("order-1", "FAILED", ago=30, machine="OrderFlow")
    run_job("order-2", "SUCCEEDED", ago=20)

    loop = runner()
    [body] = hook.wait_for(1)

    link = f"<https://edobs.example.com/jobs/{job_id('order-1').replace(':', '%3A')}/|order-1>"
    assert set(body) == {"text", "blocks"}
    assert body["blocks"][0]["type"] == "section"
    section = body["blocks"][0]["text"]
    assert section["type"] == "mrkdwn"
    assert section["text"].startswith(f"{link} of *OrderFlow* ended FAILED")
    assert "Payment.Declined" in section["text"]
    assert "card &lt;declined&gt; &amp; retried" in section["text"]
    context = body["blocks"][1]["elements"][0]["text"]
    assert f"account {ACCOUNT_A}" in context and "rule orders &lt;b&gt;&amp;" in context
    assert "<b>" not in json.dumps(body)
    assert hook.got[0][2]["Content-Type"] == "application/json"
    # Re-evaluation and the same events delivered again do not post it again: evaluated once
    # more here, after them; and once its one attempt is recorded nothing is pending or in
    # flight, so nothing can post it later (no fixed wait that a slow loop could outlast).
    ingest(*first)
    settled(lambda: call_command("run_alerts", "--once"))
    firing = delivered(AlertFiring.objects.get)
    assert (firing.key, firing.state, firing.attempts) == (job_id("order-1"), "delivered", 1)
    assert settled(deliver.next_due) is None
    assert len(hook.got) == 1
    delivery = settled(AlertDelivery.objects.get)
    assert (delivery.status, delivery.response) == (200, "answer 1: 200")
    assert delivery.next_retry_at is None
    assert loop.totals.fired == 1


def test_a_rule_for_one_state_machine_ignores_the_others_and_json_has_the_summary(receiver):
    hook = receiver()
    rule(hook.url, state_machine="Billing", format=AlertRule.JSON)
    run_job("order-1", "FAILED", ago=30, machine="OrderFlow")
    run_job("bill-1", "FAILED", ago=25, machine="Billing", error="Billing.Timeout")

    call_command("run_alerts", "--once")

    [body] = hook.wait_for(1)
    assert body["kind"] == "failed" and body["reason"] == "FAILED: Billing.Timeout"
    assert body["job"]["id"] == job_id("bill-1", "Billing")
    assert body["job"]["state_machine"] == "Billing" and body["job"]["account"] == ACCOUNT_A
    assert body["url"].startswith("https://edobs.example.com/jobs/")
    fired = AlertFiring.objects.values_list("job_id", flat=True)
    assert list(fired) == [job_id("bill-1", "Billing")]


def test_a_teams_rule_never_sees_another_teams_jobs(receiver):
    hook = receiver()
    team_a = Team.objects.create(name="a")
    TeamAccount.objects.create(team=team_a, account=ACCOUNT_A)
    rule(hook.url, team=team_a, format=AlertRule.JSON)
    run_job("theirs", "FAILED", ago=30, account=ACCOUNT_B)
    run_job("ours", "FAILED", ago=20, account=ACCOUNT_A)
    Team.objects.create(name="b").accounts.create(account=ACCOUNT_B)

    call_command("run_alerts", "--once")

    assert [body["job"]["id"] for body in hook.wait_for(1)] == [job_id("ours")]
    assert ACCOUNT_B not in json.dumps([body for _, body, _ in hook.got])
    assert list(AlertFiring.objects.values_list("account", flat=True)) == [ACCOUNT_A]


# ---- stuck and failure rate --------------------------------------------------------------------


def test_a_stuck_rule_fires_for_a_stuck_job_with_its_reason(receiver):
    hook = receiver()
    rule(hook.url, kind=AlertRule.STUCK, format=AlertRule.JSON)
    for n in range(6):  # the state machine's normal: about a second
        run_job(f"ok-{n}", "SUCCEEDED", ago=600 + n, ran=1 + n / 10)
    run_job("slow", "RUNNING", ago=120)  # 2 minutes: far past twice the p99
    run_job("young", "RUNNING", ago=1)

    call_command("run_alerts", "--once")

    [body] = hook.wait_for(1)
    assert body["kind"] == "stuck" and body["job"]["id"] == job_id("slow")
    assert body["job"]["stuck"] is True
    assert body["reason"] == body["job"]["stuck_reason"]
    assert body["reason"].startswith("running 2 min,") and "the p99 of 1.5 s" in body["reason"]
    call_command("run_alerts", "--once")
    assert len(hook.got) == 1


def test_a_failure_rate_rule_fires_once_per_window(receiver):
    hook = receiver()
    rule(hook.url, kind=AlertRule.FAILURE_RATE, threshold_percent=40, window_minutes=30,
         min_jobs=4, name="rate")  # fmt: skip
    run_job("f-old", "FAILED", ago=3600)  # outside the window
    for n in range(3):
        run_job(f"ok-{n}", "SUCCEEDED", ago=300 + n)
    run_job("f-1", "FAILED", ago=200, account=ACCOUNT_B)

    call_command("run_alerts", "--once")  # 1 of 4 failed: 25%
    assert hook.got == []
    run_job("f-2", "FAILED", ago=100, error="Inventory.Empty")
    call_command("run_alerts", "--once")  # 2 of 5: 40%
    call_command("run_alerts", "--once")

    [body] = hook.wait_for(1)
    text = body["blocks"][0]["text"]["text"]
    assert text.startswith("*every state machine*: 2 of 5 jobs failed (40%, threshold 40%)")
    assert "Payment.Declined ×1" in text and "Inventory.Empty ×1" in text
    assert f"accounts {ACCOUNT_A}, {ACCOUNT_B}" in body["blocks"][1]["elements"][0]["text"]
    assert AlertFiring.objects.get().key.startswith("window:")
    assert len(hook.got) == 1


# ---- delivery ----------------------------------------------------------------------------------


def outcomes(tmp_path, name: str) -> dict[str, float]:
    """This process's edobs_alert_deliveries_total by outcome (events.metrics)."""
    samples = own(tmp_path / name)
    return {
        outcome: value(samples, "edobs_alert_deliveries_total", outcome=outcome)
        for outcome in ("delivered", "retry", "gave_up")
    }


def test_it_retries_with_growing_gaps_until_the_webhook_takes_it(receiver, runner, tmp_path):
    before = outcomes(tmp_path, "before")
    hook = receiver([500, 500, 200])
    rule(hook.url)
    run_job("order-1", "FAILED", ago=10)

    runner()
    hook.wait_for(3)
    firing = delivered(AlertFiring.objects.get, seconds=10)

    deliveries = settled(lambda: list(AlertDelivery.objects.order_by("attempt")))
    assert [(d.attempt, d.status) for d in deliveries] == [(1, 500), (2, 500), (3, 200)]
    assert [d.response for d in deliveries] == ["answer 1: 500", "answer 2: 500", "answer 3: 200"]
    assert (firing.state, firing.attempts, firing.next_attempt_at) == ("delivered", 3, None)
    waits = [(d.next_retry_at - d.at).total_seconds() for d in deliveries[:2]]
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(deliveries, deliveries[1:], strict=False)]
    assert 0.2 <= waits[0] < waits[1] and waits[1] >= 0.4, waits
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[1] > gaps[0], gaps
    arrivals = [at for at, _, _ in hook.got]
    assert arrivals[2] - arrivals[1] > arrivals[1] - arrivals[0]
    assert deliveries[2].next_retry_at is None
    after = outcomes(tmp_path, "after")
    assert {k: after[k] - before[k] for k in after} == {"delivered": 1, "retry": 2, "gave_up": 0}


def test_a_webhook_that_is_down_is_retried_up_to_the_limit_every_error_recorded(runner, tmp_path):
    before = outcomes(tmp_path, "before")
    url = f"http://127.0.0.1:{free_port()}/down"
    rule(url)
    run_job("order-1", "FAILED", ago=10)

    runner()
    deadline = time.monotonic() + 15
    done = AlertFiring.objects.exclude(state="pending")
    while not settled(done.exists) and time.monotonic() < deadline:
        time.sleep(0.05)

    firing = settled(AlertFiring.objects.get)
    assert (firing.state, firing.attempts) == ("gave_up", 3)
    deliveries = settled(lambda: list(AlertDelivery.objects.order_by("attempt")))
    assert [d.attempt for d in deliveries] == [1, 2, 3]
    assert all(d.status is None and "refused" in d.error.lower() for d in deliveries)
    assert [d.next_retry_at is None for d in deliveries] == [False, False, True]
    # Given up: nothing pending or in flight is left to attempt, and one more round of
    # evaluation and delivery, here, makes no fourth attempt (rather than 1 s of none).
    assert deliver.next_due() is None
    call_command("run_alerts", "--once")
    assert AlertDelivery.objects.count() == 3
    after = outcomes(tmp_path, "after")
    assert {k: after[k] - before[k] for k in after} == {"delivered": 0, "retry": 2, "gave_up": 1}


def test_a_slow_webhook_does_not_hold_up_evaluation_or_other_webhooks(receiver, runner):
    slow = receiver()
    fast = receiver()
    slow_handler = slow.server.RequestHandlerClass.do_POST

    def stall(handler):
        time.sleep(1.5)
        slow_handler(handler)

    slow.server.RequestHandlerClass.do_POST = stall
    rule(slow.url, name="slow")
    rule(fast.url, name="fast")
    run_job("order-1", "FAILED", ago=10)

    started = time.monotonic()
    runner()
    fast.wait_for(1)
    assert time.monotonic() - started < 1.5
    run_job("order-2", "FAILED", ago=5)
    fast.wait_for(2)
    assert time.monotonic() - started < 1.5
    slow.wait_for(2)


# ---- rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "javascript:alert(1)", "file:///etc/x"])
def test_a_webhook_must_be_http_or_https(url):
    with pytest.raises(ValidationError) as refused:
        rule(url)
    assert "webhook_url" in refused.value.message_dict


def test_slack_text_escapes_its_control_characters():
    assert mrkdwn("<!channel> & <https://x|y>") == "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"


def test_a_rule_that_fails_to_evaluate_leaves_the_others_running(receiver):
    hook = receiver()
    broken = rule(hook.url, name="broken")
    AlertRule.objects.filter(pk=broken.pk).update(kind="nonsense")
    rule(hook.url, name="fine")
    run_job("order-1", "FAILED", ago=10)

    assert evaluate.evaluate_rules(now=datetime.now(UTC)) == 1


def test_it_evaluates_the_dynamodb_store_through_the_same_selectors(receiver):
    """DynamoDB on moto: the rules read through the store protocol only, so they work there too
    (the alert tables stay in the ORM database)."""
    import boto3
    from moto import mock_aws

    from infra.table import ensure_table

    hook = receiver()
    rule(hook.url, format=AlertRule.JSON)
    with mock_aws(), override_settings(EDOBS_STORE="dynamodb", EDOBS_TABLE_NAME="edobs-alerts"):
        ensure_table(boto3.client("dynamodb", region_name="us-east-1"), "edobs-alerts")
        reset_stores()
        run_job("order-1", "FAILED", ago=30)
        run_job("order-2", "SUCCEEDED", ago=20)
        call_command("run_alerts", "--once")
        call_command("run_alerts", "--once")
    reset_stores()

    assert [body["job"]["id"] for body in hook.wait_for(1)] == [job_id("order-1")]
    assert len(hook.got) == 1


@pytest.mark.parametrize(
    ("name", "value", "check_id"),
    [
        ("EDOBS_ALERT_INTERVAL_SECONDS", 0, "events.E016"),
        ("EDOBS_ALERT_MAX_ATTEMPTS", 0, "events.E017"),
        ("EDOBS_ALERT_BACKOFF_SECONDS", 600, "events.E018"),
        ("EDOBS_ALERT_SITE_URL", "javascript:alert(1)", "events.E019"),
        ("EDOBS_ALERT_GROUP_SECONDS", -1, "events.E060"),
    ],
)
def test_the_checks_name_a_bad_alert_setting(name, value, check_id):
    from events.checks import check_alerts

    assert check_alerts(None) == []
    with override_settings(**{name: value}):
        assert [error.id for error in check_alerts(None)] == [check_id]

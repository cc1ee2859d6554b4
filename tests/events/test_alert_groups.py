"""No backfill and grouping (issue 27), evaluated and delivered by the code `manage.py
run_alerts` runs, posting to a real HTTP receiver on loopback (EDOBS_WEBHOOK_ALLOWED_NETWORKS
127.0.0.0/8). Jobs are Step Functions status events stored through the ORM store.

The group window is 300 s as in production; the loop's clock is passed in (`now`), so a window
ends without anyone waiting for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings

from events.alerts import deliver, evaluate
from events.models import AlertFiring, AlertRule, Team
from events.read.alerts import failing_webhooks
from events.stores import reset_stores
from tests.events.test_alerts import FAST, Receiver, ingest, job_id, rule, status_event
from tests.services import free_port

pytestmark = pytest.mark.django_db(transaction=True)
WINDOW = 300


@pytest.fixture(autouse=True)
def grouped_alerts():
    with override_settings(**{**FAST, "EDOBS_ALERT_GROUP_SECONDS": WINDOW}):
        reset_stores()
        yield
    reset_stores()


@pytest.fixture
def hook():
    receiver = Receiver()
    yield receiver
    receiver.close()


def failed(names: list[str], *, ended: datetime, machine: str = "OrderFlow") -> None:
    """Jobs that ran 2 s and ended FAILED at `ended`, as Step Functions reports them."""
    events = []
    for name in names:
        start = ended - timedelta(seconds=2)
        events.append(status_event(name, "RUNNING", start=start, machine=machine))
        events.append(status_event(name, "FAILED", start=start, stop=ended, machine=machine,
                                   error="Payment.Declined", cause="card declined"))  # fmt: skip
    for at in range(0, len(events), 100):
        ingest(*events[at : at + 100])


def post_due(now: datetime) -> int:
    """One delivery round at `now`, as the loop's delivery thread makes it; returns attempts."""
    made = 0
    for firing_id in deliver.due(now=now):
        if firing := deliver.claim(firing_id, now=now):
            deliver.attempt(firing)
            made += 1
    return made


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


# ---- no backfill -------------------------------------------------------------------------------


def test_it_never_fires_for_jobs_that_ended_before_the_rule_was_created(hook):
    failed([f"old-{n}" for n in range(7)], ended=datetime.now(UTC) - timedelta(seconds=3))
    made = rule(hook.url, watching=None, format=AlertRule.JSON)

    assert evaluate.evaluate_rules(now=later(0)) == 0
    assert evaluate.evaluate_rules(now=later(WINDOW + 1)) == 0
    assert AlertFiring.objects.count() == 0

    failed(["new-1"], ended=made.enabled_at + timedelta(milliseconds=500))
    assert evaluate.evaluate_rules(now=later(1)) == 1
    assert post_due(later(WINDOW + 2)) == 1
    [body] = hook.wait_for(1)
    assert body["job"]["id"] == job_id("new-1") and body["kind"] == "failed"


def test_enabling_a_rule_again_skips_the_jobs_that_ended_while_it_was_off(hook):
    made = rule(hook.url, watching=None, format=AlertRule.JSON)
    made.enabled = False
    made.save(update_fields=["enabled"])
    assert AlertRule.objects.get().enabled_at is None
    failed(["while-off"], ended=datetime.now(UTC))

    made.enabled = True
    made.save(update_fields=["enabled"])
    enabled_at = AlertRule.objects.get().enabled_at
    assert enabled_at is not None and enabled_at > made.created_at
    assert evaluate.evaluate_rules(now=later(1)) == 0

    failed(["after"], ended=enabled_at + timedelta(milliseconds=200))
    assert evaluate.evaluate_rules(now=later(1)) == 1
    assert list(AlertFiring.objects.values_list("job_id", flat=True)) == [job_id("after")]


def test_a_failure_rate_rule_counts_only_jobs_that_ended_since_it_was_created(hook):
    failed([f"old-{n}" for n in range(5)], ended=datetime.now(UTC) - timedelta(seconds=30))
    rule(hook.url, watching=None, kind=AlertRule.FAILURE_RATE, threshold_percent=50,
         window_minutes=30, min_jobs=3)  # fmt: skip

    call_command("run_alerts", "--once")

    assert AlertFiring.objects.count() == 0 and hook.got == []


# ---- grouping ----------------------------------------------------------------------------------


def test_a_burst_of_200_failed_jobs_is_one_slack_post_naming_the_count_and_the_first(hook):
    made = rule(hook.url, watching=None, name="orders <!channel>")
    ended = made.enabled_at + timedelta(seconds=1)
    failed([f"burst-{n:03d}" for n in range(150)], ended=ended)

    assert evaluate.evaluate_rules(now=later(2)) == 150
    assert post_due(later(2)) == 0  # the window is still open: nothing is posted yet
    failed([f"burst-{n:03d}" for n in range(150, 200)], ended=ended + timedelta(seconds=5))
    assert evaluate.evaluate_rules(now=later(10)) == 50
    assert evaluate.evaluate_rules(now=later(20)) == 0  # nothing new: nothing joins twice

    assert post_due(later(WINDOW + 5)) == 1
    [body] = hook.wait_for(1)
    text = body["blocks"][0]["text"]["text"]
    assert text.startswith("*200 jobs of OrderFlow failed from ")
    assert text.count("• <https://edobs.example.com/jobs/") == 10
    assert "… and 190 more" in text
    assert "Payment.Declined" in text
    assert "rule orders &lt;!channel&gt;" in body["blocks"][1]["elements"][0]["text"]
    lead = AlertFiring.objects.get(lead__isnull=True)
    assert (lead.state, lead.count, lead.attempts) == ("delivered", 200, 1)
    assert AlertFiring.objects.filter(state="grouped", lead=lead).count() == 199
    assert post_due(later(WINDOW * 3)) == 0 and len(hook.got) == 1


def test_jobs_after_a_groups_post_open_the_next_group_in_json(hook):
    made = rule(hook.url, watching=None, format=AlertRule.JSON)
    ended = made.enabled_at + timedelta(seconds=1)
    failed(["a-1", "a-2", "a-3"], ended=ended)
    evaluate.evaluate_rules(now=later(1))
    assert post_due(later(WINDOW + 1)) == 1

    failed(["b-1", "b-2"], ended=ended + timedelta(seconds=2))
    assert evaluate.evaluate_rules(now=later(WINDOW + 2)) == 2
    assert post_due(later(WINDOW + 3)) == 0  # the second group's window has just begun
    assert post_due(later(2 * WINDOW + 3)) == 1

    first, second = hook.wait_for(2)
    assert (first["count"], first["more"]) == (3, 0)
    assert {job["id"] for job in first["jobs"]} == {job_id(n) for n in ("a-1", "a-2", "a-3")}
    assert second["count"] == 2
    assert {job["name"] for job in second["jobs"]} == {"b-1", "b-2"}
    assert all(job["url"].startswith("https://edobs.example.com/jobs/") for job in second["jobs"])


def test_a_group_of_one_posts_the_jobs_own_message(hook):
    made = rule(hook.url, watching=None, format=AlertRule.JSON)
    failed(["alone"], ended=made.enabled_at + timedelta(seconds=1))
    evaluate.evaluate_rules(now=later(1))
    post_due(later(WINDOW + 1))

    [body] = hook.wait_for(1)
    assert body["job"]["id"] == job_id("alone") and body["reason"] == "FAILED: Payment.Declined"


def test_a_claimed_group_takes_no_more_jobs(hook):
    made = rule(hook.url, watching=None, format=AlertRule.JSON)
    ended = made.enabled_at + timedelta(seconds=1)
    failed(["x-1"], ended=ended)
    evaluate.evaluate_rules(now=later(1))
    lead = AlertFiring.objects.get()
    # The delivery thread claims it the moment its window ends, while evaluation, with a `now`
    # read a moment earlier, still finds new jobs: they must not join a group being posted.
    assert deliver.claim(lead.pk, now=lead.group_until) is not None
    failed(["x-2"], ended=ended)
    evaluate.evaluate_rules(now=lead.group_until - timedelta(milliseconds=1))

    second = AlertFiring.objects.exclude(pk=lead.pk).get()
    assert second.lead_id is None and second.state == "pending" and second.count == 1
    lead.refresh_from_db()
    assert lead.count == 1


# ---- a webhook that keeps failing --------------------------------------------------------------


def test_a_webhook_that_keeps_failing_is_named_until_it_answers_again(django_user_model):
    down = f"http://127.0.0.1:{free_port()}/hook"
    team = Team.objects.create(name="payments")
    team.accounts.create(account="111111111111")
    member = django_user_model.objects.create_user(username="pay", password="pw-123456789")
    team.members.add(member)
    outsider = django_user_model.objects.create_user(username="out", password="pw-123456789")
    made = rule(down, watching=None, team=team, format=AlertRule.JSON)
    failed(["f-1"], ended=made.enabled_at + timedelta(seconds=1))
    evaluate.evaluate_rules(now=later(1))

    post_due(later(WINDOW + 1))
    post_due(later(WINDOW + 60))
    assert failing_webhooks(member) == []  # two failed attempts: not yet "keeps failing"
    post_due(later(WINDOW + 120))  # the third and last (EDOBS_ALERT_MAX_ATTEMPTS 3): gave up

    [failing] = failing_webhooks(member)
    first = AlertFiring.objects.get().deliveries.order_by("attempt").first()
    assert (failing.host, failing.since, failing.rules) == ("127.0.0.1", first.at, (made.name,))
    assert failing_webhooks(outsider) == []

    # The team points the rule at a webhook that works: the next post answers 200.
    ok = Receiver()
    try:
        AlertRule.objects.filter(pk=made.pk).update(webhook_url=ok.url)
        failed(["f-2"], ended=made.enabled_at + timedelta(seconds=2))
        evaluate.evaluate_rules(now=later(WINDOW + 130))
        assert post_due(later(2 * WINDOW + 140)) == 1
        ok.wait_for(1)
    finally:
        ok.close()
    assert failing_webhooks(member) == []

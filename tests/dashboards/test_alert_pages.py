"""The alert rule pages through Django's test client: who may see and change which rules, the
state machine picker, the webhook address policy, enable/disable, test-send to a real receiver,
and the header's failing-webhook banner."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import AlertDelivery, AlertFiring, AlertRule, Team, TeamAccount
from tests.dashboards.test_fleet_pages import (  # noqa: F401  (_now: autouse, each test's now)
    ACCOUNT_A,
    ACCOUNT_B,
    _now,
    ingest,
    run,
)
from tests.events.test_alerts import Receiver

pytestmark = pytest.mark.django_db(transaction=True)
LOOPBACK = {"EDOBS_WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8"], "EDOBS_STORE": "orm"}


def grant(user, *codenames: str) -> None:
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="events", codename__in=codenames))  # fmt: skip


def team_with(name: str, account: str, *members) -> Team:
    team = Team.objects.create(name=name)
    TeamAccount.objects.create(team=team, account=account)
    team.members.add(*members)
    return team


@pytest.fixture
def people(django_user_model):
    """Alice (team alpha, account A) may view, add and change rules; Bob (alpha) may only view;
    Olga is in team omega (account B) with every permission."""
    make = django_user_model.objects.create_user
    alice, bob, olga = (make(username=n, password="pw-123456789") for n in ("alice", "bob", "olga"))
    alpha, omega = team_with("alpha", ACCOUNT_A, alice, bob), team_with("omega", ACCOUNT_B, olga)
    grant(alice, "view_alertrule", "add_alertrule", "change_alertrule")
    grant(bob, "view_alertrule")
    grant(olga, "view_alertrule", "add_alertrule", "change_alertrule")
    return {"alice": alice, "bob": bob, "olga": olga, "alpha": alpha, "omega": omega}


@pytest.fixture
def jobs():
    bodies = run("OrderFlow", "o-1", minutes_ago=20, ms=500)
    bodies += run("SecretFlow", "s-1", minutes_ago=15, ms=500, account=ACCOUNT_B)
    with override_settings(**LOOPBACK):
        ingest(bodies)


@pytest.fixture
def hook():
    receiver = Receiver()
    yield receiver
    receiver.close()


def signed_in(client, user):
    client.force_login(user)
    return client


def test_it_asks_for_a_login_and_the_model_permission(client, people):
    assert client.get("/alerts/").status_code == 302
    assert signed_in(client, people["bob"]).get("/alerts/new/").status_code == 403
    client.force_login(Team.objects.get(name="omega").members.get())
    assert client.get("/alerts/").status_code == 200
    stranger = type(people["bob"]).objects.create_user(username="s", password="pw-123456789")
    client.force_login(stranger)
    assert client.get("/alerts/").status_code == 403


def test_a_user_sees_and_changes_only_their_teams_rules(client, people):
    ours = AlertRule.objects.create(name="ours", webhook_url="https://hooks.example.com/a",
                                    team=people["alpha"])  # fmt: skip
    theirs = AlertRule.objects.create(name="theirs <b>", webhook_url="https://x.example.org/b",
                                      team=people["omega"])  # fmt: skip
    page = signed_in(client, people["alice"]).get("/alerts/").content.decode()
    assert "ours" in page and "hooks.example.com" in page
    assert "theirs" not in page and "x.example.org" not in page
    assert client.get(f"/alerts/{theirs.pk}/").status_code == 404
    assert client.post(f"/alerts/{theirs.pk}/enabled/", {"enabled": "0"}).status_code == 404
    assert client.post(f"/alerts/{theirs.pk}/test/").status_code == 404
    assert client.get(f"/alerts/{ours.pk}/").status_code == 200
    bob = signed_in(client, people["bob"]).get("/alerts/").content.decode()
    assert "ours" in bob and "Send test" not in bob and "New rule" not in bob


def test_the_picker_offers_only_visible_state_machines(client, people, jobs):
    signed_in(client, people["alice"])
    page = client.get("/alerts/new/?state_machine=OrderFlow").content.decode()
    assert '<option value="OrderFlow" selected>OrderFlow</option>' in page
    assert "SecretFlow" not in page
    answer = client.post("/alerts/new/", {
        "name": "peek", "enabled": "on", "state_machine": "SecretFlow", "kind": "failed",
        "threshold_percent": 10, "window_minutes": 60, "min_jobs": 5, "format": "slack",
        "webhook_url": "https://hooks.example.com/x", "team": people["alpha"].pk,
    })  # fmt: skip
    assert answer.status_code == 400
    assert "Select a valid choice" in answer.content.decode()
    assert not AlertRule.objects.exists()


def test_it_creates_a_rule_for_a_team_of_the_user_watching_from_now(client, people, jobs):
    signed_in(client, people["alice"])
    before = timezone.now()
    form = {
        "name": "orders failing", "enabled": "on", "state_machine": "OrderFlow",
        "kind": "failed", "threshold_percent": 10, "window_minutes": 60, "min_jobs": 5,
        "format": "slack", "webhook_url": "https://hooks.example.com/T1",
        "team": people["omega"].pk,
    }  # fmt: skip
    assert client.post("/alerts/new/", form).status_code == 400  # not alice's team
    answer = client.post("/alerts/new/", {**form, "team": people["alpha"].pk}, follow=True)
    assert answer.status_code == 200
    made = AlertRule.objects.get()
    assert (made.team, made.state_machine, made.enabled) == (people["alpha"], "OrderFlow", True)
    assert made.enabled_at >= before
    assert "Saved rule “orders failing”." in answer.content.decode()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/hook", "http://169.254.169.254/latest",
                                 "http://10.1.2.3/relay"])  # fmt: skip
def test_the_form_refuses_a_webhook_into_internal_networks(client, people, url):
    signed_in(client, people["alice"])
    answer = client.post("/alerts/new/", {
        "name": "x", "enabled": "on", "state_machine": "", "kind": "failed",
        "threshold_percent": 10, "window_minutes": 60, "min_jobs": 5, "format": "slack",
        "webhook_url": url, "team": people["alpha"].pk,
    })  # fmt: skip
    assert answer.status_code == 400
    assert "edobs does not post into internal networks" in answer.content.decode()
    assert not AlertRule.objects.exists()


def test_disabling_and_enabling_restarts_the_watch(client, people):
    made = AlertRule.objects.create(name="r", webhook_url="https://h.example.com/",
                                    team=people["alpha"])  # fmt: skip
    first = made.enabled_at
    signed_in(client, people["alice"])
    client.post(f"/alerts/{made.pk}/enabled/", {"enabled": "0"})
    made.refresh_from_db()
    assert (made.enabled, made.enabled_at) == (False, None)
    answer = client.post(f"/alerts/{made.pk}/enabled/", {"enabled": "1"}, follow=True)
    made.refresh_from_db()
    assert made.enabled and made.enabled_at > first
    assert "fires for jobs that end from now on" in answer.content.decode()
    assert client.get(f"/alerts/{made.pk}/enabled/").status_code == 405


def test_test_send_posts_a_marked_test_and_shows_the_answer(client, people, hook):
    made = AlertRule.objects.create(name="pay <x>", webhook_url=hook.url, team=people["alpha"])
    signed_in(client, people["alice"])
    with override_settings(**LOOPBACK):
        page = client.post(f"/alerts/{made.pk}/test/", follow=True).content.decode()

    [body] = hook.wait_for(1)
    assert body["text"].startswith("TEST from edobs: rule pay &lt;x&gt; can post here")
    assert "sent by alice" in body["text"]
    assert "Test message to 127.0.0.1 delivered (HTTP 200: answer 1: 200)." in page
    assert not AlertDelivery.objects.exists()  # a test is not a delivery of any firing


def test_test_send_to_a_refused_or_failing_webhook_says_why(client, people, hook):
    hook.answers = [503]
    made = AlertRule.objects.create(name="r", webhook_url=hook.url, team=people["alpha"],
                                    format=AlertRule.JSON)  # fmt: skip
    signed_in(client, people["alice"])
    with override_settings(**LOOPBACK):
        page = client.post(f"/alerts/{made.pk}/test/", follow=True).content.decode()
    assert json.loads(json.dumps(hook.wait_for(1)[0]))["test"] is True
    assert "Test message to 127.0.0.1 failed: HTTP 503" in page
    # Without the allowance, loopback is refused before any connection is made.
    page = client.post(f"/alerts/{made.pk}/test/", follow=True).content.decode()
    assert "failed: WebhookRefused: webhook host 127.0.0.1 is at 127.0.0.1, a loopback" in page
    assert len(hook.got) == 1


def failing_rule(team: Team, url: str, attempts: int) -> AlertRule:
    made = AlertRule.objects.create(name=f"to {urlsplit(url).hostname}", webhook_url=url,
                                    team=team)  # fmt: skip
    firing = AlertFiring.objects.create(rule=made, key=f"{ACCOUNT_A}:us-east-1:F:j", body="{}",
                                        fired_at=timezone.now(), state="gave_up")  # fmt: skip
    start = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    for n in range(attempts):
        AlertDelivery.objects.create(firing=firing, attempt=n + 1, error="ConnectionRefusedError",
                                     at=start + timedelta(seconds=2**n))  # fmt: skip
    return made


def test_the_header_names_a_failing_webhook_to_its_team_only(client, people):
    failing_rule(people["alpha"], "https://hooks.slack.example.com/services/T0/B0/SECRET", 3)
    failing_rule(people["omega"], "https://omega.example.net/hook", 3)
    failing_rule(people["alpha"], "https://flaky.example.com/hook", 2)  # not "keeps failing" yet

    page = signed_in(client, people["bob"]).get("/").content.decode()
    assert 'id="failing-alerts"' in page
    assert "Alerts to <strong>hooks.slack.example.com</strong> failing since" in page
    assert "2026-12-06 09:30 UTC" in page
    assert "SECRET" not in page  # the host, never the webhook's path
    assert "omega.example.net" not in page and "flaky.example.com" not in page
    page = signed_in(client, people["olga"]).get("/").content.decode()
    assert "omega.example.net" in page and "hooks.slack" not in page
    # A member without the permission to see rules is told too, without a link to a 403.
    carol = type(people["bob"]).objects.create_user(username="carol", password="pw-123456789")
    people["omega"].members.add(carol)
    page = signed_in(client, carol).get("/").content.decode()
    assert "Alerts to <strong>omega.example.net</strong>" in page
    assert 'href="/alerts/"' not in page


def test_the_banner_costs_one_query_per_page_and_none_in_the_admin(admin_client, people):
    failing_rule(people["alpha"], "https://hooks.example.com/a", 4)
    for path, expected in (("/schemas/", 1), ("/admin/", 0)):
        with CaptureQueriesContext(connection) as counted:
            page = admin_client.get(path).content.decode()
        reads = [q["sql"] for q in counted.captured_queries if "events_alertdelivery" in q["sql"]]
        assert len(reads) == expected, path
        assert ("hooks.example.com" in page) is bool(expected)

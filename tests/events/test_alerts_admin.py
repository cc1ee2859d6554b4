"""Alert rules in the admin: editable, deliveries read-only with their answers, hostile
content escaped; staff who are not superusers see and make only their teams' rules."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from events.models import AlertDelivery, AlertFiring, AlertRule, Team

pytestmark = pytest.mark.django_db

EVIL = "<script>alert('x')</script>"
RULE_FORM = {
    "name": "orders", "enabled": "on", "state_machine": "OrderFlow", "kind": "failed",
    "threshold_percent": "10", "window_minutes": "60", "min_jobs": "5",
    "webhook_url": "https://hooks.example.com/T000/B000", "format": "slack",
}  # fmt: skip


@pytest.fixture
def fired():
    """A rule of team B, fired once, delivered on the second attempt; markup everywhere."""
    team = Team.objects.get(name="Team B")
    made = AlertRule.objects.create(name=EVIL, webhook_url="https://hooks.example.com/x", team=team)
    firing = AlertFiring.objects.create(
        rule=made, key=f"job-{EVIL}", job_id=f"job-{EVIL}", body=json.dumps({"text": EVIL}),
        fired_at=timezone.now(), state="delivered", attempts=2,
    )  # fmt: skip
    AlertDelivery.objects.create(
        firing=firing, attempt=1, at=timezone.now(), status=500, response=f"oops {EVIL}",
        next_retry_at=timezone.now(),
    )  # fmt: skip
    AlertDelivery.objects.create(firing=firing, attempt=2, at=timezone.now(), status=200,
                                 response="ok")  # fmt: skip
    return firing


@pytest.fixture
def staff(member):
    """Team A's member as staff who may view and change alert rules and view the rest."""
    member.is_staff = True
    member.save()
    codenames = ["view_alertrule", "change_alertrule", "add_alertrule", "view_alertfiring",
                 "view_alertdelivery"]  # fmt: skip
    member.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return member


def test_a_superuser_sees_every_alert_page_escaped(client, superuser, outsider, fired):
    client.force_login(superuser)
    delivery = fired.deliveries.get(attempt=1)
    pages = [
        "/admin/events/alertrule/", f"/admin/events/alertrule/{fired.rule.pk}/change/",
        "/admin/events/alertrule/add/", "/admin/events/alertfiring/",
        f"/admin/events/alertfiring/{fired.pk}/change/", "/admin/events/alertdelivery/",
        f"/admin/events/alertdelivery/{delivery.pk}/change/",
    ]  # fmt: skip
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert EVIL not in response.content.decode(), url
    firing_page = client.get(f"/admin/events/alertfiring/{fired.pk}/change/").content.decode()
    assert "oops &lt;script&gt;" in firing_page and ">500<" in firing_page
    assert client.get("/admin/events/alertdelivery/add/").status_code == 403


def test_a_superuser_makes_a_rule_for_every_account_and_refuses_other_schemes(client, superuser):
    client.force_login(superuser)

    refused = client.post(
        "/admin/events/alertrule/add/", {**RULE_FORM, "webhook_url": "ftp://x.io/h"}
    )
    made = client.post("/admin/events/alertrule/add/", RULE_FORM)

    assert refused.status_code == 200 and "webhook_url" in refused.context["adminform"].form.errors
    assert made.status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.team, rule.state_machine, rule.kind) == (None, "OrderFlow", "failed")


def test_staff_see_and_make_only_their_teams_rules(client, staff, outsider, fired):
    client.force_login(staff)
    team_a, team_b = Team.objects.get(name="Team A"), Team.objects.get(name="Team B")

    listing = client.get("/admin/events/alertrule/")
    other = client.get(f"/admin/events/alertrule/{fired.rule.pk}/change/")
    firings = client.get("/admin/events/alertfiring/")
    deliveries = client.get("/admin/events/alertdelivery/")
    everyone = client.post("/admin/events/alertrule/add/", RULE_FORM)
    theirs = client.post("/admin/events/alertrule/add/", {**RULE_FORM, "team": team_b.pk})
    ours = client.post("/admin/events/alertrule/add/", {**RULE_FORM, "team": team_a.pk})

    assert list(listing.context["cl"].result_list) == []
    assert other.status_code == 404
    assert list(firings.context["cl"].result_list) == []
    assert list(deliveries.context["cl"].result_list) == []
    assert "team" in everyone.context["adminform"].form.errors
    assert "team" in theirs.context["adminform"].form.errors
    assert ours.status_code == 302
    assert list(AlertRule.objects.filter(team=team_a).values_list("name", flat=True)) == ["orders"]


# The addresses, as a staff user typed them: internal services, the cloud's metadata
# service, a private network, IPv6 loopback, and a name that resolves to loopback.
INTERNAL_HOOKS = [
    "http://127.0.0.1:8310/internal", "http://127.0.0.1:8000/api/health",
    "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook", "http://[::1]/hook",
    "http://localhost:8000/hook",
]  # fmt: skip


@pytest.mark.parametrize("url", INTERNAL_HOOKS)
def test_the_rule_form_refuses_a_webhook_into_the_internal_network(client, staff, url):
    client.force_login(staff)
    team_a = Team.objects.get(name="Team A")

    refused = client.post(
        "/admin/events/alertrule/add/", {**RULE_FORM, "webhook_url": url, "team": team_a.pk}
    )

    assert refused.status_code == 200
    [message] = refused.context["adminform"].form.errors["webhook_url"]
    assert "EDOBS_WEBHOOK_ALLOWED_NETWORKS" in message and "address" in message
    assert not AlertRule.objects.exists()


def test_a_superuser_is_refused_too_until_the_network_is_allowed(client, superuser, settings):
    client.force_login(superuser)
    form = {**RULE_FORM, "webhook_url": "http://127.0.0.1:8310/relay"}

    refused = client.post("/admin/events/alertrule/add/", form)
    settings.EDOBS_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    made = client.post("/admin/events/alertrule/add/", form)
    still = client.post(
        "/admin/events/alertrule/add/", {**form, "webhook_url": "http://10.0.0.1/relay"}
    )

    assert "loopback" in refused.context["adminform"].form.errors["webhook_url"][0]
    assert made.status_code == 302
    assert "private" in still.context["adminform"].form.errors["webhook_url"][0]
    assert list(AlertRule.objects.values_list("webhook_url", flat=True)) == [
        "http://127.0.0.1:8310/relay"
    ]

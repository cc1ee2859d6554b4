"""Admin rights that must not escalate (issue 24 §3), tried through the admin's own forms.

Alice is team A's member (ACCOUNT_A) made staff with the model permissions of the issue; Bob is
team B's (ACCOUNT_B). Each form is fetched as the admin renders it, posted back with the
escalation added, and the outcome read from the database and from what Alice may then see;
root (a superuser) does the same and succeeds.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.authtoken.models import Token

from events.models import AlertDelivery, AlertFiring, AlertRule, Job, Team, TeamAccount

from .conftest import ACCOUNT_A, ACCOUNT_B

pytestmark = pytest.mark.django_db

TEAM_RIGHTS = [
    "view_team", "add_team", "change_team", "view_teamaccount", "add_teamaccount",
    "change_teamaccount", "delete_teamaccount", "view_job",
]  # fmt: skip
TOKEN_RIGHTS = ["view_tokenproxy", "add_tokenproxy", "change_tokenproxy", "delete_tokenproxy"]
ALERT_RIGHTS = ["view_alertrule", "view_alertfiring", "view_alertdelivery"]


def make_staff(user, codenames: list[str]):
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def form_data(response) -> dict:
    """What a browser posts back from an admin form page left as it is: the main form's and
    every inline's values, management forms included."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data = {}
    for form in forms:
        for field in form:
            value = field.value()
            widget = field.field.widget.get_context(field.html_name, value, {}).get("widget", {})
            parts = widget.get("subwidgets") or [{"name": field.html_name, "value": value}]
            for part in parts:  # a date and a time are two inputs
                if part["value"] not in (None, False):
                    data[part["name"]] = part["value"]
    return data


def with_new_account(data: dict, team: Team, account: str) -> dict:
    """`data` with one more row in the team's accounts inline (and the inline's management
    form, when the page had none because the user may not add accounts)."""
    management = {"accounts-INITIAL_FORMS": "0", "accounts-MIN_NUM_FORMS": "0",
                  "accounts-MAX_NUM_FORMS": "1000"}  # fmt: skip
    row = int(data.get("accounts-TOTAL_FORMS", 0))
    return {
        **management, **data, "accounts-TOTAL_FORMS": str(row + 1),
        f"accounts-{row}-account": account, f"accounts-{row}-id": "",
        f"accounts-{row}-team": str(team.pk) if team.pk else "",
    }  # fmt: skip


@pytest.fixture
def job_b():
    """A job of team B's account, which Alice must never read."""
    return Job.objects.create(
        id=f"{ACCOUNT_B}:us-east-1:Payments:pay-1", state_machine="Payments", name="pay-1",
        account=ACCOUNT_B, region="us-east-1", status="SUCCEEDED",
    )  # fmt: skip


def jobs_seen(client) -> list[str]:
    response = client.get("/admin/events/job/")
    assert response.status_code == 200
    return [job.id for job in response.context["cl"].result_list]


def test_staff_cannot_grant_their_team_another_account_a_superuser_can(
    client, member, outsider, superuser, job_b
):
    alice = make_staff(member, TEAM_RIGHTS)
    team_a = Team.objects.get(name="Team A")
    url = f"/admin/events/team/{team_a.pk}/change/"
    client.force_login(alice)

    page = client.get(url)
    added = client.post(url, with_new_account(form_data(page), team_a, ACCOUNT_B))
    changed = client.post(url, {**form_data(page), "accounts-0-account": ACCOUNT_B})
    page = client.get("/admin/events/team/add/")
    new_team = client.post(
        "/admin/events/team/add/",
        with_new_account({**form_data(page), "name": "Mine", "members": [alice.pk]}, Team(),
                         ACCOUNT_B),
    )  # fmt: skip

    assert page.status_code == 200 and added.status_code in (200, 302)
    assert changed.status_code in (200, 302) and new_team.status_code in (200, 302)
    assert not TeamAccount.objects.filter(account=ACCOUNT_B).exclude(team__name="Team B").exists()
    assert list(team_a.accounts.values_list("account", flat=True)) == [ACCOUNT_A]
    assert jobs_seen(client) == []

    client.force_login(superuser)
    granted = client.post(url, with_new_account(form_data(client.get(url)), team_a, ACCOUNT_B))

    assert granted.status_code == 302
    assert sorted(team_a.accounts.values_list("account", flat=True)) == [ACCOUNT_A, ACCOUNT_B]
    client.force_login(alice)
    assert jobs_seen(client) == [job_b.id]


def test_the_members_widget_offers_staff_only_their_teammates(client, member, outsider, superuser):
    alice = make_staff(member, TEAM_RIGHTS)
    team_a = Team.objects.get(name="Team A")
    url = f"/admin/events/team/{team_a.pk}/change/"
    client.force_login(alice)

    page = client.get(url)
    offered = [label for _, label in page.context["adminform"].form.fields["members"].choices]
    posted = client.post(url, {**form_data(page), "members": [alice.pk, outsider.pk]})

    assert offered == ["alice"]
    assert "bob" not in page.content.decode() and "root" not in page.content.decode()
    assert posted.status_code == 200 and "members" in posted.context["adminform"].form.errors
    assert list(team_a.members.values_list("username", flat=True)) == ["alice"]

    client.force_login(superuser)
    page = client.get(url)
    offered = [label for _, label in page.context["adminform"].form.fields["members"].choices]
    assert sorted(offered) == ["alice", "bob", "root"]


def test_token_keys_are_shown_only_to_their_owner_and_superusers(
    client, member, outsider, superuser
):
    alice = make_staff(member, TOKEN_RIGHTS)
    keys = {user.username: Token.objects.create(user=user).key for user in (alice, superuser)}
    client.force_login(alice)

    listing = client.get("/admin/authtoken/tokenproxy/")
    roots = client.get(f"/admin/authtoken/tokenproxy/{superuser.pk}/change/")
    own = client.get(f"/admin/authtoken/tokenproxy/{alice.pk}/change/")
    add = client.get("/admin/authtoken/tokenproxy/add/")
    for_bob = client.post("/admin/authtoken/tokenproxy/add/", {"user": outsider.pk})
    text = listing.content.decode()

    assert [token.user.username for token in listing.context["cl"].result_list] == ["alice"]
    assert keys["root"] not in text and keys["root"][:6] not in text
    assert keys["alice"] not in text and keys["alice"][:6] in text
    assert roots.status_code == 404 and own.status_code == 200
    assert [label for _, label in add.context["adminform"].form.fields["user"].choices][1:] == [
        "alice"
    ]
    assert for_bob.status_code == 200 and "user" in for_bob.context["adminform"].form.errors
    assert not Token.objects.filter(user=outsider).exists()

    client.force_login(superuser)
    listing = client.get("/admin/authtoken/tokenproxy/")
    made = client.post("/admin/authtoken/tokenproxy/add/", {"user": outsider.pk})

    assert len(listing.context["cl"].result_list) == 2
    assert keys["alice"] not in listing.content.decode() and keys["alice"][:6] in (
        listing.content.decode()
    )  # fmt: skip
    assert made.status_code == 302 and Token.objects.filter(user=outsider).exists()


def firing(rule: AlertRule, answer: str) -> AlertDelivery:
    fired = AlertFiring.objects.create(
        rule=rule, key="job-1", job_id="job-1", body=json.dumps({"text": "x"}),
        fired_at=timezone.now(), state="delivered", attempts=1,
    )  # fmt: skip
    return AlertDelivery.objects.create(
        firing=fired, attempt=1, at=timezone.now(), status=200, response=answer
    )


def test_another_teams_staff_see_neither_its_rule_names_nor_its_webhooks_answers(
    client, member, outsider, superuser
):
    alice = make_staff(member, ALERT_RIGHTS)
    bob = make_staff(outsider, ALERT_RIGHTS)
    ours = AlertRule.objects.create(
        name="orders-a", webhook_url="https://hooks.example.com/a", team=alice.teams.get()
    )
    theirs = AlertRule.objects.create(
        name="payments-b-secret", webhook_url="https://hooks.example.com/b", team=bob.teams.get()
    )
    firing(ours, "ok from A")
    delivery = firing(theirs, "INTERNAL-SECRET-RESPONSE")
    client.force_login(alice)

    firings = client.get("/admin/events/alertfiring/").content.decode()
    deliveries = client.get("/admin/events/alertdelivery/").content.decode()
    pages = [
        client.get(f"/admin/events/alertdelivery/{delivery.pk}/change/"),
        client.get(f"/admin/events/alertfiring/{delivery.firing.pk}/change/"),
    ]

    assert "orders-a" in firings and "payments-b-secret" not in firings
    assert "ok from A" in deliveries and "INTERNAL-SECRET-RESPONSE" not in deliveries
    assert [page.status_code for page in pages] == [404, 404]
    for user in (bob, superuser):
        client.force_login(user)
        page = client.get(f"/admin/events/alertfiring/{delivery.firing.pk}/change/")
        assert "INTERNAL-SECRET-RESPONSE" in page.content.decode()


USER_RIGHTS = ["view_user", "change_user", "add_user", "delete_user", "view_group",
               "add_group", "change_group"]  # fmt: skip


def test_staff_with_user_rights_cannot_make_anyone_a_superuser_or_take_over_an_account(
    client, member, outsider, superuser
):
    alice = make_staff(member, USER_RIGHTS)
    mine = f"/admin/auth/user/{alice.pk}/change/"
    client.force_login(alice)

    page = client.get(mine)
    every = [permission.pk for permission in Permission.objects.all()]
    promoted = client.post(
        mine, {**form_data(page), "is_superuser": "on", "user_permissions": every}
    )
    listing = client.get("/admin/auth/user/")
    roots = client.get(f"/admin/auth/user/{superuser.pk}/password/")
    bobs = client.post(f"/admin/auth/user/{outsider.pk}/password/",
                       {"password1": "taken-over-123", "password2": "taken-over-123"})  # fmt: skip
    groups = client.get("/admin/auth/group/add/")

    assert page.status_code == 200 and promoted.status_code == 302
    alice.refresh_from_db()
    assert not alice.is_superuser
    assert set(alice.user_permissions.values_list("codename", flat=True)) == set(USER_RIGHTS)
    assert [user.username for user in listing.context["cl"].result_list] == ["alice"]
    assert (roots.status_code, bobs.status_code, groups.status_code) == (404, 404, 403)
    outsider.refresh_from_db()
    assert not outsider.check_password("taken-over-123")

    client.force_login(superuser)
    page = client.get(mine)
    promoted = client.post(mine, {**form_data(page), "is_superuser": "on"})
    alice.refresh_from_db()
    assert promoted.status_code == 302 and alice.is_superuser

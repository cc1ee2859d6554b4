"""An AWS account id is exactly 12 ASCII digits. Other scripts' digits pass str.isdigit() and a
plain `\\d` ("١١١١١١١١١١١١" is 12 Arabic-Indic ones, "²²²" superscripts): they used to be stored
as accounts, granted to teams and accepted in settings."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from events.checks import check_settings, check_source_accounts
from events.domain.envelope import MalformedEvent, parse_envelope
from events.ingest.services import InboundMessage, event_ingest
from events.models import Event, RejectedMessage, Team, TeamAccount
from infra.bus_policy import InvalidSource, parse_accounts
from tests.events.conftest import sample_lines

NOT_ACCOUNTS = [
    "١١١١١١١١١١١١", "²²²", "１２３４５６７８９０１２", "123456789012\n", "12345678901",
    "1" * 13, "",
]  # fmt: skip

pytestmark = pytest.mark.django_db


def body(account: str) -> str:
    return json.dumps({**json.loads(sample_lines()[0]), "account": account})


@pytest.mark.parametrize("account", NOT_ACCOUNTS[:-1])
def test_an_envelope_with_another_scripts_digits_is_quarantined(account):
    with pytest.raises(MalformedEvent, match="12 ASCII digits"):
        parse_envelope(body(account), default_account="123456789012")

    report = event_ingest(messages=[InboundMessage(body=body(account), message_id="m-1")])

    assert report.outcomes == ["quarantined"]
    assert Event.objects.count() == 0 and "12 ASCII digits" in RejectedMessage.objects.get().reason


@pytest.mark.parametrize("account", NOT_ACCOUNTS)
def test_settings_refuse_them(account):
    with override_settings(EDOBS_ACCOUNT=account):
        assert "events.E005" in [error.id for error in check_settings(None)]
    with override_settings(EDOBS_SOURCE_ACCOUNTS=[account or "x"]):
        assert [error.id for error in check_source_accounts(None)] == ["events.E013"]
    if account.strip() != "123456789012":  # a comma list: its items are stripped first
        with pytest.raises(InvalidSource):
            parse_accounts(account or "x")


def test_the_admin_refuses_them_as_team_accounts(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    team = Team.objects.create(name="Team A")
    form = {
        "name": "Team A", "accounts-TOTAL_FORMS": "1", "accounts-INITIAL_FORMS": "0",
        "accounts-MIN_NUM_FORMS": "0", "accounts-MAX_NUM_FORMS": "1000",
        "accounts-0-team": str(team.pk),
    }  # fmt: skip

    refused = client.post(
        f"/admin/events/team/{team.pk}/change/", {**form, "accounts-0-account": "١١١١١١١١١١١١"}
    )
    accepted = client.post(
        f"/admin/events/team/{team.pk}/change/", {**form, "accounts-0-account": "111111111111"}
    )

    assert refused.status_code == 200 and "exactly 12 digits" in refused.content.decode()
    assert accepted.status_code == 302
    assert list(TeamAccount.objects.values_list("account", flat=True)) == ["111111111111"]


@pytest.mark.parametrize(
    "url",
    ["/api/events?account={}", "/api/events/9c1caaf7-5e87-46ed-88da-f4016b4013ef?account={}"],
)
def test_account_parameters_refuse_them_with_400(client, django_user_model, url):
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))

    for account in ("١١١١١١١١١١١١", "²²²", "12345"):
        response = client.get(url.format(account))
        assert response.status_code == 400 and "account" in response.json()["error"], account
    assert client.get(url.format("123456789012")).status_code in (200, 404)

import json

import pytest

from infra.bus_policy import (
    Grant,
    InvalidSource,
    current_grants,
    diff,
    parse_accounts,
    parse_organization,
    wanted_grants,
)

BUS = "arn:aws:events:eu-west-1:111122223333:event-bus/default"
DEV, PROD, SANDBOX = "444455556666", "777788889999", "000011112222"
ORG = "o-a1b2c3d4e5"


def _policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _account_statement(account: str, principal=None) -> dict:
    return {
        "Sid": f"edobs-account-{account}",
        "Effect": "Allow",
        "Principal": principal or {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "events:PutEvents",
        "Resource": BUS,
    }


def _organization_statement(organization: str, principal="*") -> dict:
    return {
        "Sid": "edobs-organization",
        "Effect": "Allow",
        "Principal": principal,
        "Action": "events:PutEvents",
        "Resource": BUS,
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": organization}},
    }


def test_it_reads_a_comma_list_of_accounts_sorted_and_unique():
    assert parse_accounts(f" {PROD},{DEV}, {PROD} ,") == [DEV, PROD]


@pytest.mark.parametrize("bad", ["12345", "9999555566667", "44445555666a", "arn:aws:iam::1:root"])
def test_it_names_the_account_ids_aws_would_refuse(bad):
    with pytest.raises(InvalidSource) as error:
        parse_accounts(f"{DEV},{bad}")

    assert str(error.value) == f"not a 12-digit AWS account id: {bad}"


def test_it_refuses_an_empty_account_list():
    with pytest.raises(InvalidSource, match="at least one"):
        parse_accounts(" , ")


def test_it_accepts_an_organization_id():
    assert parse_organization(" o-a1b2c3d4e5 ") == ORG


@pytest.mark.parametrize("bad", ["o-short", "O-A1B2C3D4E5", "r-a1b2c3d4e5", "a1b2c3d4e5", ""])
def test_it_refuses_what_is_not_an_organization_id(bad):
    with pytest.raises(InvalidSource, match="not an AWS Organizations id"):
        parse_organization(bad)


def test_it_wants_one_statement_per_account_and_one_for_the_organization():
    wanted = wanted_grants([DEV, PROD], ORG)

    assert sorted(wanted) == [f"edobs-account-{DEV}", f"edobs-account-{PROD}", "edobs-organization"]
    assert wanted["edobs-organization"].put_permission_kwargs("default") == {
        "EventBusName": "default",
        "Action": "events:PutEvents",
        "Principal": "*",
        "StatementId": "edobs-organization",
        "Condition": {"Type": "StringEquals", "Key": "aws:PrincipalOrgID", "Value": ORG},
    }
    assert "Condition" not in wanted[f"edobs-account-{DEV}"].put_permission_kwargs("default")


def test_it_reads_only_its_own_statements_back():
    foreign = dict(_account_statement(SANDBOX), Sid="billing-team")

    grants = current_grants(_policy(_account_statement(DEV), foreign, _organization_statement(ORG)))

    assert sorted(grants) == [f"edobs-account-{DEV}", "edobs-organization"]
    assert grants == wanted_grants([DEV], ORG)


@pytest.mark.parametrize(
    "principal", [{"AWS": f"arn:aws:iam::{DEV}:root"}, {"AWS": DEV}, DEV], ids=["arn", "id", "bare"]
)
def test_it_understands_every_way_a_policy_names_an_account(principal):
    grants = current_grants(_policy(_account_statement(DEV, principal)))

    assert grants[f"edobs-account-{DEV}"].principal == DEV


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": "arn:aws:iam::*:root"}])
def test_it_understands_every_way_a_policy_names_anyone(principal):
    # AWS answers "*"; moto answers the arn form.
    grants = current_grants(_policy(_organization_statement(ORG, principal)))

    assert grants == wanted_grants([], ORG)


def test_it_reads_a_bus_without_a_policy_as_no_grants():
    assert current_grants(None) == {}


def test_it_puts_the_missing_and_revokes_the_stale():
    current = wanted_grants([DEV, SANDBOX])

    change = diff(current, wanted_grants([DEV, PROD]))

    assert change.put == [Grant(f"edobs-account-{PROD}", PROD)]
    assert change.revoke == [Grant(f"edobs-account-{SANDBOX}", SANDBOX)]
    assert change.detail() == f"admit {PROD}; revoke {SANDBOX}"


def test_it_replaces_a_statement_whose_content_changed():
    change = diff(wanted_grants([], "o-oldorg00000"), wanted_grants([], ORG))

    assert [g.organization for g in change.put] == [ORG]
    assert [g.organization for g in change.revoke] == ["o-oldorg00000"]


def test_it_finds_nothing_to_do_when_the_policy_already_admits_them():
    change = diff(wanted_grants([PROD, DEV], ORG), wanted_grants([DEV, PROD], ORG))

    assert change.put == [] and change.revoke == []

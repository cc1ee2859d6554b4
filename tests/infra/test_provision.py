import json

import boto3
import pytest
import yaml
from django.core.management import CommandError, call_command
from moto import mock_aws

from events.checks import check_source_accounts
from infra.bus_policy import current_grants
from infra.provision import MAX_RECEIVE_COUNT, QUEUE_ATTRIBUTES, Plan, provision

REGION = "us-east-1"
DEV, PROD, STAGING = "444455556666", "777788889999", "210987654321"
ORG = "o-a1b2c3d4e5"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield {
            name: boto3.client(name, region_name=REGION) for name in ("sqs", "events", "dynamodb")
        }


def _plan(**overrides) -> Plan:
    values = {"queue_name": "edobs-events", "bus_name": "default", "sources": ["project"]}
    return Plan(**(values | overrides))


def _receive_all(sqs, url: str) -> list[dict]:
    response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return response.get("Messages", [])


def _statements(events) -> dict[str, dict]:
    """Sid -> statement of the default bus's resource policy."""
    policy = events.describe_event_bus(Name="default").get("Policy")
    return {s["Sid"]: s for s in json.loads(policy)["Statement"]} if policy else {}


def _admitted_accounts(events) -> set[str]:
    principals = [s["Principal"]["AWS"] for s in _statements(events).values()]
    return {principal.split(":")[4] for principal in principals}


def _change(plan: Plan, resource: str):
    return next(c for c in plan.changes if c.resource == resource)


def test_it_changes_nothing_the_second_time(aws):
    first = provision(_plan(table_name="edobs"), **aws)
    second = provision(_plan(table_name="edobs"), **aws)

    assert {c.action for c in first.changes} == {"created"}
    assert {c.resource for c in first.changes} == {"dlq", "rule", "queue", "target", "table"}
    assert {c.action for c in second.changes} == {"unchanged"}


def test_it_writes_nothing_on_a_dry_run(aws):
    plan = provision(_plan(dry_run=True), **aws)

    assert {c.action for c in plan.changes} == {"would create"}
    assert aws["sqs"].list_queues().get("QueueUrls", []) == []
    assert aws["events"].list_rules()["Rules"] == []


def test_it_forwards_matching_events_only(aws):
    provision(_plan(sources=["project"], with_status_events=True), **aws)
    aws["events"].put_events(
        Entries=[
            {"Source": "project", "DetailType": "start", "Detail": "{}"},
            {"Source": "aws.states", "DetailType": "status", "Detail": "{}"},
            {"Source": "somebody.else", "DetailType": "noise", "Detail": "{}"},
        ]
    )
    url = aws["sqs"].get_queue_url(QueueName="edobs-events")["QueueUrl"]

    sources = sorted(json.loads(m["Body"])["source"] for m in _receive_all(aws["sqs"], url))

    assert sources == ["aws.states", "project"]


def test_it_lets_only_the_rule_send(aws):
    provision(_plan(), **aws)
    url = aws["sqs"].get_queue_url(QueueName="edobs-events")["QueueUrl"]
    rule_arn = aws["events"].describe_rule(Name="edobs-events-rule")["Arn"]

    attributes = aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    statement = json.loads(attributes["Policy"])["Statement"][0]

    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == rule_arn


def test_it_moves_a_poison_message_to_the_dead_letter_queue(aws):
    provision(_plan(), **aws)
    sqs = aws["sqs"]
    url = sqs.get_queue_url(QueueName="edobs-events")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="edobs-events-dlq")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    sqs.send_message(QueueUrl=url, MessageBody="poison")

    for _ in range(MAX_RECEIVE_COUNT + 1):
        _receive_all(sqs, url)

    assert [m["Body"] for m in _receive_all(sqs, dlq)] == ["poison"]


def test_it_repairs_a_drifted_queue(aws):
    provision(_plan(), **aws)
    url = aws["sqs"].get_queue_url(QueueName="edobs-events")["QueueUrl"]
    aws["sqs"].set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "5"})

    plan = provision(_plan(), **aws)

    queue = next(c for c in plan.changes if c.resource == "queue")
    assert queue.action == "updated" and "VisibilityTimeout" in queue.detail
    assert {c.action for c in provision(_plan(), **aws).changes} == {"unchanged"}


def test_the_command_prints_what_it_did(aws, capsys, settings):
    settings.EDOBS_STORE = "orm"
    call_command("provision")
    call_command("provision")

    lines = capsys.readouterr().out.splitlines()
    assert sum("created" in line for line in lines) == 4
    assert sum("unchanged" in line for line in lines) == 4


def test_it_admits_exactly_the_source_accounts(aws):
    plan = provision(_plan(source_accounts=[DEV, PROD, STAGING]), **aws)
    bus_arn = aws["events"].describe_event_bus(Name="default")["Arn"]

    statements = _statements(aws["events"])

    assert _admitted_accounts(aws["events"]) == {DEV, PROD, STAGING}
    assert {s["Action"] for s in statements.values()} == {"events:PutEvents"}
    assert {s["Resource"] for s in statements.values()} == {bus_arn}
    assert _change(plan, "policy").action == "created"
    assert _change(plan, "policy").detail == f"admit {STAGING}, {DEV}, {PROD}"  # sorted


def test_it_leaves_an_admitting_policy_unchanged(aws):
    provision(_plan(source_accounts=[DEV, PROD], organization_id=ORG), **aws)

    second = provision(_plan(source_accounts=[PROD, DEV], organization_id=ORG), **aws)

    assert {c.action for c in second.changes} == {"unchanged"}
    assert _change(second, "policy").detail == f"{DEV}, {PROD}, organization {ORG}"


def test_it_revokes_an_account_no_longer_listed_and_keeps_statements_it_does_not_own(aws):
    aws["events"].put_permission(
        Action="events:PutEvents", Principal=STAGING, StatementId="billing-team"
    )
    provision(_plan(source_accounts=[DEV, PROD]), **aws)

    plan = provision(_plan(source_accounts=[DEV]), **aws)

    assert sorted(_statements(aws["events"])) == ["billing-team", f"edobs-account-{DEV}"]
    assert _admitted_accounts(aws["events"]) == {DEV, STAGING}
    assert (_change(plan, "policy").action, _change(plan, "policy").detail) == (
        "updated",
        f"revoke {PROD}",
    )


def test_it_admits_every_account_of_an_organization(aws):
    provision(_plan(organization_id=ORG), **aws)

    statement = _statements(aws["events"])["edobs-organization"]

    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG}}
    assert statement["Action"] == "events:PutEvents"


def test_it_moves_the_organization_statement_to_a_new_organization(aws):
    provision(_plan(organization_id="o-oldorg00000"), **aws)

    plan = provision(_plan(organization_id=ORG), **aws)

    statement = _statements(aws["events"])["edobs-organization"]
    assert statement["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == ORG
    assert _change(plan, "policy").action == "updated"


def test_it_writes_no_bus_policy_on_a_dry_run(aws):
    provision(_plan(), **aws)

    plan = provision(_plan(source_accounts=[DEV], organization_id=ORG, dry_run=True), **aws)

    assert _statements(aws["events"]) == {}
    assert _change(plan, "policy").action == "would create"
    assert _change(plan, "policy").detail == f"admit {DEV}, organization {ORG}"


def test_it_leaves_the_bus_policy_alone_when_no_source_is_configured(aws):
    provision(_plan(source_accounts=[DEV, PROD]), **aws)

    plan = provision(_plan(), **aws)

    assert "policy" not in {c.resource for c in plan.changes}
    assert _admitted_accounts(aws["events"]) == {DEV, PROD}


def test_the_rule_matches_events_of_every_account():
    pattern = _plan(source_accounts=[DEV, PROD], with_status_events=True).event_pattern()

    assert pattern == {"source": ["aws.states", "project"]}


def test_the_command_admits_the_accounts_it_is_given(aws, capsys, settings):
    settings.EDOBS_STORE = "orm"
    call_command("provision", "--source-accounts", f"{DEV},{PROD}", "--organization", ORG)
    call_command("provision", "--source-accounts", f"{PROD},{DEV}", "--organization", ORG)

    lines = [line for line in capsys.readouterr().out.splitlines() if " policy " in line]
    assert lines[0].split()[:3] == ["created", "policy", "default"]
    assert lines[1].split()[:3] == ["unchanged", "policy", "default"]
    assert _admitted_accounts(aws["events"]) == {DEV, PROD, "*"}


def test_the_command_dry_run_says_what_it_would_admit(aws, capsys, settings):
    settings.EDOBS_STORE = "orm"
    call_command("provision", "--dry-run", "--source-accounts", DEV)

    out = capsys.readouterr().out
    assert f"would create  policy     default (admit {DEV})" in out
    assert aws["events"].describe_event_bus(Name="default").get("Policy") is None


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--source-accounts", f"{DEV},12345", "not a 12-digit AWS account id: 12345"),
        ("--source-accounts", ",", "name at least one 12-digit AWS account id"),
        ("--organization", "o-ABC", "'o-ABC' is not an AWS Organizations id"),
    ],
)
def test_the_command_refuses_malformed_sources(aws, settings, flag, value, message):
    settings.EDOBS_STORE = "orm"
    with pytest.raises(CommandError, match=message):
        call_command("provision", flag, value)

    assert aws["sqs"].list_queues().get("QueueUrls", []) == []


def test_the_command_reads_the_sources_from_the_settings(aws, settings):
    settings.EDOBS_STORE = "orm"
    settings.EDOBS_SOURCE_ACCOUNTS = [STAGING, DEV]
    settings.EDOBS_ORGANIZATION_ID = ORG

    call_command("provision")

    assert sorted(_statements(aws["events"])) == [
        f"edobs-account-{STAGING}", f"edobs-account-{DEV}", "edobs-organization"
    ]  # fmt: skip


def test_the_flag_wins_over_the_setting(aws, settings):
    settings.EDOBS_STORE = "orm"
    settings.EDOBS_SOURCE_ACCOUNTS = [STAGING]

    call_command("provision", "--source-accounts", PROD)

    assert _admitted_accounts(aws["events"]) == {PROD}


def test_the_command_refuses_malformed_settings(aws, settings):
    settings.EDOBS_STORE = "orm"
    settings.EDOBS_SOURCE_ACCOUNTS = [DEV, "prod"]

    with pytest.raises(CommandError, match="EDOBS_SOURCE_ACCOUNTS.*not a 12-digit.*: prod"):
        call_command("provision")


def test_the_checks_name_malformed_source_settings(settings):
    settings.EDOBS_SOURCE_ACCOUNTS = [DEV, "7777-8888-9999"]
    settings.EDOBS_ORGANIZATION_ID = "my-org"

    errors = {error.id: error.msg for error in check_source_accounts(None)}

    assert sorted(errors) == ["events.E013", "events.E014"]
    assert "'7777-8888-9999'" in errors["events.E013"] and DEV not in errors["events.E013"]
    assert "'my-org'" in errors["events.E014"]


def test_the_checks_accept_well_formed_or_absent_source_settings(settings):
    settings.EDOBS_SOURCE_ACCOUNTS = [DEV, PROD]
    settings.EDOBS_ORGANIZATION_ID = ORG
    assert check_source_accounts(None) == []

    settings.EDOBS_SOURCE_ACCOUNTS = []
    settings.EDOBS_ORGANIZATION_ID = ""
    assert check_source_accounts(None) == []


def test_the_command_dry_run_says_what_it_would_do_and_writes_nothing(aws, capsys, settings):
    settings.EDOBS_STORE = "orm"
    settings.EDOBS_QUEUE_URL = ""
    settings.EDOBS_QUEUE_NAME = "edobs-events"

    call_command("provision", "--dry-run", "--table")

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Planning on ")
    planned = {tuple(line.split()[:3]) for line in lines[1:]}
    assert planned == {
        ("would", "create", resource) for resource in ("dlq", "queue", "rule", "target", "table")
    }
    assert aws["sqs"].list_queues().get("QueueUrls", []) == []
    assert aws["events"].list_rules()["Rules"] == []
    assert aws["dynamodb"].list_tables()["TableNames"] == []


def test_the_command_dry_run_reports_drift_without_repairing_it(aws, capsys, settings):
    settings.EDOBS_STORE = "orm"
    settings.EDOBS_QUEUE_URL = ""
    settings.EDOBS_QUEUE_NAME = "edobs-events"
    call_command("provision")
    url = aws["sqs"].get_queue_url(QueueName="edobs-events")["QueueUrl"]
    aws["sqs"].set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "5"})
    capsys.readouterr()

    call_command("provision", "--dry-run")

    lines = capsys.readouterr().out.splitlines()
    [queue] = [line for line in lines if " queue " in line]
    assert "would update" in queue and "VisibilityTimeout" in queue
    attributes = aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    assert attributes["Attributes"]["VisibilityTimeout"] == "5"  # still drifted


class CloudFormationLoader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    return {suffix: loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None}


CloudFormationLoader.add_multi_constructor("!", _tag)


def _template(settings) -> dict:
    with open(settings.BASE_DIR / "infra" / "cloudformation.yaml") as handle:
        return yaml.load(handle, Loader=CloudFormationLoader)


def test_the_cloudformation_template_declares_what_provision_creates(aws, settings):
    resources = _template(settings)["Resources"]
    plan = provision(_plan(table_name="edobs", source_accounts=[DEV], organization_id=ORG), **aws)

    types = sorted(r["Type"] for r in resources.values())
    queue = resources["Queue"]["Properties"]
    table = resources["Table"]["Properties"]
    created = aws["dynamodb"].describe_table(TableName="edobs")["Table"]

    assert types == sorted(
        ["AWS::SQS::Queue", "AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::Events::Rule",
         "AWS::DynamoDB::Table", "AWS::Events::EventBusPolicy", "AWS::Events::EventBusPolicy"]
    )  # fmt: skip
    # dlq, rule, queue (with its policy), target, bus policy (accounts and organization), table
    assert len(plan.changes) == 6
    for key, value in QUEUE_ATTRIBUTES.items():
        assert str(queue[key]) == value
    assert queue["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVE_COUNT
    assert sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]) == sorted(
        i["IndexName"] for i in created.get("GlobalSecondaryIndexes", [])
    )
    assert {a["AttributeName"] for a in table["AttributeDefinitions"]} == {
        a["AttributeName"] for a in created["AttributeDefinitions"]
    }


def test_the_cloudformation_bus_policy_admits_what_provision_admits(aws, settings):
    resources = _template(settings)["Resources"]
    provision(_plan(source_accounts=[DEV], organization_id=ORG), **aws)
    ours = _statements(aws["events"])
    accounts = resources["SourceAccountsPolicy"]["Properties"]
    organization = resources["OrganizationPolicy"]["Properties"]

    assert accounts["Statement"]["Principal"] == {"AWS": {"Ref": "SourceAccounts"}}
    assert organization["Statement"]["Principal"] == "*"
    assert organization["Statement"]["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}
    }
    assert set(ours["edobs-organization"]["Condition"]["StringEquals"]) == {"aws:PrincipalOrgID"}
    for policy in (accounts, organization):
        assert policy["Statement"]["Action"] == ours[f"edobs-account-{DEV}"]["Action"]
        assert policy["Statement"]["Effect"] == "Allow"
        assert policy["Statement"]["Resource"]["Sub"].endswith(":event-bus/${BusName}")
        # provision never revokes the template's statements (nor the template provision's)
        assert current_grants(_policy_with_sid(policy["StatementId"])) == {}


def _policy_with_sid(sid: str) -> str:
    statement = {"Sid": sid, "Effect": "Allow", "Principal": "*", "Action": "events:PutEvents"}
    return json.dumps({"Statement": [statement]})

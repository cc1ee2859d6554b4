import json

import boto3
import pytest
import yaml
from django.core.management import call_command
from moto import mock_aws

from infra.provision import MAX_RECEIVE_COUNT, QUEUE_ATTRIBUTES, Plan, provision

REGION = "us-east-1"


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


def test_the_cloudformation_template_declares_what_provision_creates(aws, settings):
    with open(settings.BASE_DIR / "infra" / "cloudformation.yaml") as handle:
        template = yaml.load(handle, Loader=CloudFormationLoader)
    resources = template["Resources"]
    plan = provision(_plan(table_name="edobs"), **aws)

    types = sorted(r["Type"] for r in resources.values())
    queue = resources["Queue"]["Properties"]
    table = resources["Table"]["Properties"]
    created = aws["dynamodb"].describe_table(TableName="edobs")["Table"]

    assert types == sorted(
        ["AWS::SQS::Queue", "AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::Events::Rule",
         "AWS::DynamoDB::Table"]
    )  # fmt: skip
    assert len(plan.changes) == 5  # dlq, rule, queue (with its policy), target, table
    for key, value in QUEUE_ATTRIBUTES.items():
        assert str(queue[key]) == value
    assert queue["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVE_COUNT
    assert sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]) == sorted(
        i["IndexName"] for i in created.get("GlobalSecondaryIndexes", [])
    )
    assert {a["AttributeName"] for a in table["AttributeDefinitions"]} == {
        a["AttributeName"] for a in created["AttributeDefinitions"]
    }

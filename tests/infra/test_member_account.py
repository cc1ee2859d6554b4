"""Many accounts feeding one edobs: the member-account template, linted and run on moto.

The observability account is provisioned by `infra.provision`; each member account gets the stack
of infra/member-account.yaml through moto's CloudFormation. moto maps the keys of an assumed role
to the role's account, which is how one test acts in several accounts.
"""

import ast
import json
from pathlib import Path

import boto3
import pytest
import yaml
from cfnlint.api import lint_file
from moto import mock_aws

from infra.provision import Plan, provision
from tests.infra.test_provision import CloudFormationLoader

REGION = "us-east-1"
OBSERVABILITY, DEV, PROD, OUTSIDER = "111122223333", "444455556666", "777788889999", "999900001111"
INFRA = Path(__file__).resolve().parents[2] / "infra"
MEMBER_TEMPLATE = INFRA / "member-account.yaml"


def _session(account: str) -> boto3.Session:
    sts = boto3.client("sts", region_name=REGION)
    role = f"arn:aws:iam::{account}:role/edobs-admin"
    keys = sts.assume_role(RoleArn=role, RoleSessionName="edobs-test")["Credentials"]
    return boto3.Session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
        region_name=REGION,
    )


@pytest.fixture
def accounts():
    with mock_aws():
        yield {account: _session(account) for account in (OBSERVABILITY, DEV, PROD, OUTSIDER)}


@pytest.fixture
def bus_arn(accounts) -> str:
    """The observability account, provisioned to admit DEV and PROD (not OUTSIDER)."""
    session = accounts[OBSERVABILITY]
    events = session.client("events")
    plan = Plan(
        queue_name="edobs-events",
        bus_name="default",
        sources=["project", "billing"],
        with_status_events=True,
        source_accounts=[DEV, PROD],
    )
    provision(plan, sqs=session.client("sqs"), events=events)
    return events.describe_event_bus(Name="default")["Arn"]


def _deploy_member(session, bus_arn: str, *, status_events: str = "true") -> dict[str, str]:
    """The member stack; Sources is passed explicitly: moto leaves a list default unsplit."""
    parameters = {
        "ObservabilityBusArn": bus_arn,
        "Sources": "project,billing",
        "StatusEvents": status_events,
    }
    cloudformation = session.client("cloudformation")
    cloudformation.create_stack(
        StackName="edobs-member",
        TemplateBody=MEMBER_TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName="edobs-member")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    return {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}


def _put(session, *entries: tuple[str, str]) -> None:
    """Events on the member's default bus, as its workflows would put them."""
    batch = [{"Source": s, "DetailType": t, "Detail": json.dumps({"by": t})} for s, t in entries]
    assert session.client("events").put_events(Entries=batch)["FailedEntryCount"] == 0


def _delivered(accounts) -> list[tuple[str, str]]:
    sqs = accounts[OBSERVABILITY].client("sqs")
    url = sqs.get_queue_url(QueueName="edobs-events")["QueueUrl"]
    bodies = []
    # WaitTimeSeconds=0: the queue long-polls for 20 s by default (ReceiveMessageWaitTimeSeconds),
    # so the last, empty receive would wait that long for nothing.
    receive = {"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0}
    while messages := sqs.receive_message(**receive).get("Messages"):
        bodies += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    return sorted((body["source"], body["detail-type"]) for body in bodies)


def _document(role_policy: dict) -> dict:
    """The policy document; moto's CloudFormation stores it as the repr of a dict."""
    document = role_policy["PolicyDocument"]
    return ast.literal_eval(document) if isinstance(document, str) else document


def _template(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=CloudFormationLoader)


@pytest.mark.parametrize("name", ["member-account.yaml", "cloudformation.yaml"])
def test_it_lints_clean(name):
    problems = lint_file(INFRA / name)

    assert [str(problem) for problem in problems] == []


def test_the_lint_catches_a_broken_template(tmp_path):
    broken = tmp_path / "member-account.yaml"
    text = MEMBER_TEMPLATE.read_text()
    broken.write_text(text.replace("EventBusName: default", "EventBus: default"))

    rules = {problem.rule.id for problem in lint_file(broken)}

    assert "E3002" in rules  # unknown property on AWS::Events::Rule


def test_the_role_may_only_put_events_on_the_observability_bus():
    role = _template(MEMBER_TEMPLATE)["Resources"]["ForwardRole"]["Properties"]

    (policy,) = role["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]

    assert statement == {
        "Effect": "Allow",
        "Action": "events:PutEvents",
        "Resource": {"Ref": "ObservabilityBusArn"},
    }
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_the_member_rule_targets_the_bus_through_the_stack_role(accounts, bus_arn):
    outputs = _deploy_member(accounts[DEV], bus_arn)
    events = accounts[DEV].client("events")
    iam = accounts[DEV].client("iam")

    rule = events.describe_rule(Name="edobs-forward")
    (target,) = events.list_targets_by_rule(Rule="edobs-forward")["Targets"]
    role_name = outputs["ForwardRoleArn"].rsplit("/", 1)[-1]
    (policy_name,) = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    document = _document(iam.get_role_policy(RoleName=role_name, PolicyName=policy_name))

    assert rule["EventBusName"] == "default" and rule["Arn"].split(":")[4] == DEV
    assert json.loads(rule["EventPattern"]) == {"source": ["project", "billing", "aws.states"]}
    assert (target["Arn"], target["RoleArn"]) == (bus_arn, outputs["ForwardRoleArn"])
    assert document["Statement"] == [
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus_arn}
    ]


def test_it_forwards_each_members_workflow_events_to_the_observability_queue(accounts, bus_arn):
    for account in (DEV, PROD):
        _deploy_member(accounts[account], bus_arn)

    _put(accounts[DEV], ("project", "dev start"), ("somebody.else", "dev noise"))
    _put(accounts[PROD], ("aws.states", "prod status"), ("billing", "prod invoice"))

    assert _delivered(accounts) == [
        ("aws.states", "prod status"),
        ("billing", "prod invoice"),
        ("project", "dev start"),
    ]


def test_it_keeps_status_events_home_when_not_chosen(accounts, bus_arn):
    _deploy_member(accounts[DEV], bus_arn, status_events="false")

    _put(accounts[DEV], ("aws.states", "dev status"), ("project", "dev start"))

    assert _delivered(accounts) == [("project", "dev start")]


def test_the_observability_policy_admits_the_members_only(accounts, bus_arn):
    events = accounts[OBSERVABILITY].client("events")

    statements = json.loads(events.describe_event_bus(Name="default")["Policy"])["Statement"]

    principals = {s["Principal"]["AWS"] for s in statements}
    assert principals == {f"arn:aws:iam::{DEV}:root", f"arn:aws:iam::{PROD}:root"}


def test_it_cannot_show_on_moto_that_the_bus_refuses_an_outsider(accounts, bus_arn):
    """moto neither enforces the bus policy nor keeps the sender's account (README: Many
    accounts). Should this fail, moto learnt one of them: assert it and update the README."""
    _deploy_member(accounts[OUTSIDER], bus_arn)
    _put(accounts[OUTSIDER], ("project", "outsider start"))

    sqs = accounts[OBSERVABILITY].client("sqs")
    url = sqs.get_queue_url(QueueName="edobs-events")["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]

    assert json.loads(message["Body"])["detail-type"] == "outsider start"  # AWS would refuse it
    assert "account" not in json.loads(message["Body"])  # AWS would say OUTSIDER

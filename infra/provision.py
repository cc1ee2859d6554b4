"""Idempotent provisioning of the rule, queue, dead-letter queue and table (DESIGN section 5),
and of the bus policy that admits other accounts' events (infra/bus_policy.py).

Each step looks first, then creates or updates only what differs, and says which it did.
With `dry_run` nothing is written: the same steps report what they would do.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .bus_policy import current_grants, describe, diff, wanted_grants

logger = logging.getLogger(__name__)

STATUS_SOURCE = "aws.states"
MAX_RECEIVE_COUNT = 5
QUEUE_ATTRIBUTES = {
    "VisibilityTimeout": "60",
    "ReceiveMessageWaitTimeSeconds": "20",
    "MessageRetentionPeriod": "345600",  # 4 days: time to fix a broken consumer
}
DLQ_ATTRIBUTES = {"MessageRetentionPeriod": "1209600"}  # 14 days, the SQS maximum


@dataclass(frozen=True)
class Change:
    resource: str
    name: str
    action: str  # created, updated, unchanged, or "would create" / "would update"
    detail: str = ""

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.action:>14}  {self.resource:<10} {self.name}{extra}"


@dataclass
class Plan:
    queue_name: str
    bus_name: str
    sources: list[str]
    table_name: str | None = None
    with_status_events: bool = False
    source_accounts: list[str] = field(default_factory=list)  # other accounts that may put events
    organization_id: str = ""  # or every account of this AWS Organization
    dry_run: bool = False
    changes: list[Change] = field(default_factory=list)

    @property
    def rule_name(self) -> str:
        return f"{self.queue_name}-rule"

    @property
    def dlq_name(self) -> str:
        return f"{self.queue_name}-dlq"

    def event_pattern(self) -> dict[str, Any]:
        # No "account" key: the rule must match the events member accounts forward too.
        extra = {STATUS_SOURCE} if self.with_status_events else set()
        return {"source": sorted(set(self.sources) | extra)}

    def record(self, resource: str, name: str, action: str, detail: str = "") -> None:
        if self.dry_run:
            action = {"created": "would create", "updated": "would update"}.get(action, action)
        self.changes.append(Change(resource, name, action, detail))


def provision(plan: Plan, *, sqs, events, dynamodb=None) -> Plan:
    """Bring the resources in line with `plan`; returns it with the changes recorded."""
    dlq_arn = _ensure_queue(plan, sqs, plan.dlq_name, dict(DLQ_ATTRIBUTES), "dlq")
    rule_arn = _ensure_rule(plan, events)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    attributes = dict(QUEUE_ATTRIBUTES, RedrivePolicy=json.dumps(redrive))
    queue_arn = _arn_of(plan, "sqs", plan.queue_name, events)
    attributes["Policy"] = json.dumps(queue_policy(queue_arn, rule_arn))
    queue_arn = _ensure_queue(plan, sqs, plan.queue_name, attributes, "queue")
    _ensure_target(plan, events, queue_arn)
    if plan.source_accounts or plan.organization_id:
        _ensure_bus_policy(plan, events)
    if plan.table_name and dynamodb is not None:
        _ensure_table(plan, dynamodb)
    return plan


def queue_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """Only this rule may send to the queue."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "edobs-rule-sends",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }


def _arn_of(plan: Plan, service: str, name: str, events) -> str:
    """The ARN a queue will have, from the rule's ARN (same account and region)."""
    rule_arn = _rule_arn(plan, events)
    _, _, _, region, account, _ = rule_arn.split(":", 5)
    return f"arn:aws:{service}:{region}:{account}:{name}"


def _rule_arn(plan: Plan, events) -> str:
    try:
        return events.describe_rule(Name=plan.rule_name, EventBusName=plan.bus_name)["Arn"]
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
    bus = events.describe_event_bus(Name=plan.bus_name)["Arn"]
    prefix = bus.split(":event-bus/")[0]
    suffix = "" if plan.bus_name == "default" else f"{plan.bus_name}/"
    return f"{prefix}:rule/{suffix}{plan.rule_name}"


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _queue_url(sqs, name: str) -> str | None:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if "NonExistentQueue" in _code(exc) or _code(exc) == "QueueDoesNotExist":
            return None
        raise


def _ensure_queue(plan: Plan, sqs, name: str, wanted: dict[str, str], kind: str) -> str:
    url = _queue_url(sqs, name)
    if url is None:
        if not plan.dry_run:
            url = sqs.create_queue(QueueName=name, Attributes=wanted)["QueueUrl"]
        plan.record(kind, name, "created")
        if url is None:  # dry run: the queue does not exist yet
            return f"arn:aws:sqs:{sqs.meta.region_name}:<account>:{name}"
        return _queue_arn(sqs, url)
    current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    changed = sorted(key for key, value in wanted.items() if not _same(current.get(key), value))
    if changed and not plan.dry_run:
        # All of them: moto forgets attributes a partial update leaves out.
        sqs.set_queue_attributes(QueueUrl=url, Attributes=wanted)
    plan.record(kind, name, "updated" if changed else "unchanged", ", ".join(changed))
    return current["QueueArn"]


def _same(current: str | None, wanted: str) -> bool:
    if current is None:
        return False
    try:
        return json.loads(current) == json.loads(wanted)
    except ValueError:
        return current == wanted


def _queue_arn(sqs, url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return attrs["QueueArn"]


def _ensure_rule(plan: Plan, events) -> str:
    pattern = plan.event_pattern()
    try:
        rule = events.describe_rule(Name=plan.rule_name, EventBusName=plan.bus_name)
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        rule = None
    same = rule and json.loads(rule.get("EventPattern", "{}")) == pattern
    same = same and rule.get("State") == "ENABLED"
    if same:
        plan.record("rule", plan.rule_name, "unchanged", json.dumps(pattern))
        return rule["Arn"]
    if not plan.dry_run:
        arn = events.put_rule(
            Name=plan.rule_name,
            EventBusName=plan.bus_name,
            EventPattern=json.dumps(pattern),
            State="ENABLED",
            Description="edobs: forward workflow events to its queue",
        )["RuleArn"]
    else:
        arn = _rule_arn(plan, events)
    plan.record("rule", plan.rule_name, "updated" if rule else "created", json.dumps(pattern))
    return arn


def _ensure_target(plan: Plan, events, queue_arn: str) -> None:
    target = {"Id": "edobs-queue", "Arn": queue_arn}
    try:
        current = events.list_targets_by_rule(Rule=plan.rule_name, EventBusName=plan.bus_name)
        targets = current.get("Targets", [])
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        targets = []
    if any(t["Id"] == target["Id"] and t["Arn"] == queue_arn for t in targets):
        plan.record("target", plan.rule_name, "unchanged", queue_arn)
        return
    if not plan.dry_run:
        events.put_targets(Rule=plan.rule_name, EventBusName=plan.bus_name, Targets=[target])
    plan.record("target", plan.rule_name, "updated" if targets else "created", queue_arn)


def _ensure_bus_policy(plan: Plan, events) -> None:
    """Admit exactly the planned accounts / organization; statements edobs does not own stay."""
    wanted = wanted_grants(plan.source_accounts, plan.organization_id)
    current = current_grants(events.describe_event_bus(Name=plan.bus_name).get("Policy"))
    change = diff(current, wanted)
    if not (change.put or change.revoke):
        plan.record("policy", plan.bus_name, "unchanged", describe(wanted))
        return
    if not plan.dry_run:
        for grant in change.revoke:
            events.remove_permission(EventBusName=plan.bus_name, StatementId=grant.sid)
        for grant in change.put:
            events.put_permission(**grant.put_permission_kwargs(plan.bus_name))
    plan.record("policy", plan.bus_name, "updated" if current else "created", change.detail())


def _ensure_table(plan: Plan, dynamodb) -> None:
    from .table import ensure_table

    if plan.dry_run:
        try:
            dynamodb.describe_table(TableName=plan.table_name)
            plan.record("table", plan.table_name, "unchanged")
        except ClientError:
            plan.record("table", plan.table_name, "created")
        return
    done = ensure_table(dynamodb, plan.table_name)
    created = any(line.startswith("created") for line in done)
    action = "created" if created else ("updated" if done else "unchanged")
    plan.record("table", plan.table_name, action, "; ".join(done))

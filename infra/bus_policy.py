"""Which other accounts may put events on the observability bus (issue 12: many accounts).

Member accounts forward their workflow events to the edobs bus (infra/member-account.yaml); the
bus's resource policy must admit them. edobs owns only the statements whose Sid it writes:
`edobs-account-<id>` for each source account (PutPermission with that account as principal) and
`edobs-organization` for a whole AWS Organization (principal `*` with the condition
`aws:PrincipalOrgID`). Other statements on the bus are never read for meaning nor touched.

When accounts or an organization are configured, the edobs statements are brought to exactly that
set: missing or different ones are put, the others revoked. With neither configured the policy is
left alone, so a run without the setting cannot revoke every member by accident.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ACTION = "events:PutEvents"
ACCOUNT_SID_PREFIX = "edobs-account-"
ORGANIZATION_SID = "edobs-organization"
ORGANIZATION_KEY = "aws:PrincipalOrgID"
ACCOUNT_ID = re.compile(r"[0-9]{12}")  # not `\d`: it matches other scripts' digits too
ORGANIZATION_ID = re.compile(r"o-[a-z0-9]{10,32}")  # the pattern AWS Organizations documents


class InvalidSource(ValueError):
    """A source account or organization id that AWS would refuse."""


def bad_accounts(accounts: Iterable[str]) -> list[str]:
    return [account for account in accounts if not ACCOUNT_ID.fullmatch(account)]


def is_organization_id(value: str) -> bool:
    return bool(ORGANIZATION_ID.fullmatch(value))


def parse_accounts(text: str) -> list[str]:
    """`"A,B"` -> sorted unique 12-digit account ids; raises InvalidSource naming the bad ones."""
    accounts = sorted({item.strip() for item in text.split(",") if item.strip()})
    bad = bad_accounts(accounts)
    if bad:
        raise InvalidSource(f"not a 12-digit AWS account id: {', '.join(bad)}")
    if not accounts:
        raise InvalidSource("name at least one 12-digit AWS account id")
    return accounts


def parse_organization(text: str) -> str:
    value = text.strip()
    if not is_organization_id(value):
        shape = "o- then 10 to 32 lowercase letters or digits"
        raise InvalidSource(f"{value!r} is not an AWS Organizations id ({shape})")
    return value


@dataclass(frozen=True, order=True)
class Grant:
    """One edobs statement: a source account, or `*` limited to an organization."""

    sid: str
    principal: str  # a 12-digit account id, or "*" with `organization`
    organization: str = ""
    action: str = ACTION

    @property
    def label(self) -> str:
        return f"organization {self.organization}" if self.organization else self.principal

    def put_permission_kwargs(self, bus_name: str) -> dict[str, Any]:
        kwargs = {
            "EventBusName": bus_name,
            "Action": self.action,
            "Principal": self.principal,
            "StatementId": self.sid,
        }
        if self.organization:
            value = self.organization
            kwargs["Condition"] = {"Type": "StringEquals", "Key": ORGANIZATION_KEY, "Value": value}
        return kwargs


def wanted_grants(accounts: Iterable[str], organization: str = "") -> dict[str, Grant]:
    grants = [Grant(f"{ACCOUNT_SID_PREFIX}{account}", account) for account in accounts]
    if organization:
        grants.append(Grant(ORGANIZATION_SID, "*", organization))
    return {grant.sid: grant for grant in grants}


def current_grants(policy: str | None) -> dict[str, Grant]:
    """The edobs-owned statements of a bus policy (describe_event_bus()["Policy"]), as grants."""
    statements = json.loads(policy)["Statement"] if policy else []
    grants = [_grant_of(s) for s in statements if _is_ours(s.get("Sid", ""))]
    return {grant.sid: grant for grant in grants}


def _is_ours(sid: str) -> bool:
    return sid == ORGANIZATION_SID or sid.startswith(ACCOUNT_SID_PREFIX)


def _grant_of(statement: dict[str, Any]) -> Grant:
    condition = statement.get("Condition", {}).get("StringEquals", {})
    action = statement.get("Action", "")
    return Grant(
        sid=statement["Sid"],
        principal=_principal_account(statement.get("Principal", "")),
        organization=condition.get(ORGANIZATION_KEY, ""),
        action=action if isinstance(action, str) else ",".join(sorted(action)),
    )


def _principal_account(principal: Any) -> str:
    """`"*"`, `{"AWS": "*"}`, `{"AWS": "arn:aws:iam::123456789012:root"}` or an id -> id or `*`."""
    value = principal.get("AWS", "") if isinstance(principal, dict) else principal
    if isinstance(value, list):
        return ",".join(sorted(_principal_account(item) for item in value))
    return value.split(":")[4] if value.startswith("arn:") else value


@dataclass(frozen=True)
class PolicyDiff:
    put: list[Grant]
    revoke: list[Grant]

    def detail(self) -> str:
        parts = [f"admit {', '.join(g.label for g in self.put)}" if self.put else ""]
        parts.append(f"revoke {', '.join(g.label for g in self.revoke)}" if self.revoke else "")
        return "; ".join(part for part in parts if part)


def diff(current: dict[str, Grant], wanted: dict[str, Grant]) -> PolicyDiff:
    """What to put and what to revoke; a changed statement is revoked, then put again."""
    changed = {sid for sid in current.keys() & wanted.keys() if current[sid] != wanted[sid]}
    put = [wanted[sid] for sid in sorted(wanted.keys() - current.keys() | changed)]
    revoke = [current[sid] for sid in sorted(current.keys() - wanted.keys() | changed)]
    return PolicyDiff(put=put, revoke=revoke)


def describe(grants: dict[str, Grant]) -> str:
    return ", ".join(grant.label for grant in sorted(grants.values()))

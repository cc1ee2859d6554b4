"""Alert rules as a signed-in user may see them, with how their webhook is doing.

A user sees the rules of their teams (superusers: every rule), as in the admin. A rule's webhook
"keeps failing" once its latest FAILING_ATTEMPTS delivery attempts (or EDOBS_ALERT_MAX_ATTEMPTS,
if fewer: a firing that gave up) all failed: no 2xx answer since. It is failing since the first
failed attempt after its last 2xx answer. `rules_with_health` reads all of that in one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Count, DateTimeField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from events.models import AlertDelivery, AlertRule, Team

FAILING_ATTEMPTS = 3
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
OK = Q(status__gte=200, status__lt=300)


@dataclass(frozen=True)
class FailingWebhook:
    host: str
    since: datetime
    rules: tuple[str, ...]


def teams_of(user) -> QuerySet[Team]:
    """The teams a user may give a rule to (superusers: any)."""
    return Team.objects.all() if user.is_superuser else Team.objects.filter(members=user)


def rules_of(user) -> QuerySet[AlertRule]:
    """The rules a user may see and, with the model permissions, change."""
    if user is None or not user.is_authenticated or not user.is_active:
        return AlertRule.objects.none()
    rules = AlertRule.objects.select_related("team")
    return rules if user.is_superuser else rules.filter(team__members=user)


def rules_with_health(user) -> QuerySet[AlertRule]:
    """`rules_of` annotated: last_attempt_at, last_status, last_error, last_ok_at,
    failing_since and failed_attempts (attempts since the last 2xx answer)."""
    attempts = AlertDelivery.objects.filter(firing__rule=OuterRef("pk"))
    latest = attempts.order_by("-at", "-pk")
    last_ok = Coalesce(OuterRef("last_ok_at"), Value(NEVER), output_field=DateTimeField())
    since_ok = attempts.filter(at__gt=last_ok).exclude(OK)
    counted = since_ok.order_by().values("firing__rule").annotate(n=Count("pk")).values("n")
    return rules_of(user).annotate(
        last_ok_at=Subquery(attempts.filter(OK).order_by("-at").values("at")[:1]),
        last_attempt_at=Subquery(latest.values("at")[:1]),
        last_status=Subquery(latest.values("status")[:1]),
        last_error=Subquery(latest.values("error")[:1]),
    ).annotate(
        failing_since=Subquery(since_ok.order_by("at").values("at")[:1]),
        failed_attempts=Coalesce(Subquery(counted), 0),
    )  # fmt: skip


def keeps_failing(rule: AlertRule) -> bool:
    """For a rule of `rules_with_health`."""
    needed = min(FAILING_ATTEMPTS, settings.EDOBS_ALERT_MAX_ATTEMPTS)
    return rule.enabled and rule.failed_attempts >= needed


def failing_webhooks(user) -> list[FailingWebhook]:
    """The webhooks of the user's rules that keep failing, by host, the longest failing first
    (for the page header: one query)."""
    needed = min(FAILING_ATTEMPTS, settings.EDOBS_ALERT_MAX_ATTEMPTS)
    rows = rules_with_health(user).filter(enabled=True, failed_attempts__gte=needed)
    hosts: dict[str, tuple[datetime, list[str]]] = {}
    for rule in rows.order_by("failing_since", "pk"):
        host = urlsplit(rule.webhook_url).hostname or rule.webhook_url
        since, names = hosts.setdefault(host, (rule.failing_since, []))
        names.append(rule.name)
    return [FailingWebhook(host, since, tuple(names)) for host, (since, names) in hosts.items()]

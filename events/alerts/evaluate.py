"""Which jobs (or windows) each alert rule fires for, recorded once per rule and key.

Every read goes through events.read.selectors with the rule's AccountScope, so a team's rule sees
only its team's accounts, on either store (the ORM or DynamoDB: only store-protocol reads).
- `failed`: jobs with a failed status (FAILED, TIMED_OUT, ABORTED) whose last event is within
  EDOBS_ALERT_LOOKBACK_MINUTES, newest first, at most SCAN_PAGES pages of PAGE jobs.
- `stuck`: what `GET /api/jobs?stuck=1` lists (events.domain.fleet), with its reason.
- `failure_rate`: of the jobs that finished in the last `window_minutes`, the share that failed,
  judged with at least `min_jobs` of them; it fires once per window period (periods are aligned
  to the epoch, so a rule re-evaluated within one period finds the same key).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q

from events.domain.alert_payload import (
    GROUP_LISTED,
    GroupedJob,
    RateFinding,
    group_body,
    job_body,
    rate_body,
)
from events.domain.correlation import TERMINAL_STATUSES
from events.domain.fleet import EPOCH, FAILED_STATUSES, Health
from events.domain.summary import JobSummary
from events.models import AlertFiring, AlertRule, TeamAccount
from events.read import selectors
from events.stores.base import JobFilter
from events.stores.locking import atomic_retrying_locks

logger = logging.getLogger(__name__)

PAGE = 100
SCAN_PAGES = 20
GROUP_TRIES = 3


@dataclass(frozen=True)
class Finding:
    key: str
    body: str
    job_id: str = ""
    account: str = ""
    state_machine: str = ""
    reason: str = ""


def rule_scope(rule: AlertRule) -> selectors.AccountScope:
    """What the rule may see: every account without a team, else only its team's."""
    if rule.team_id is None:
        return selectors.AccountScope(None)
    granted = TeamAccount.objects.filter(team_id=rule.team_id).values_list("account", flat=True)
    return selectors.AccountScope(frozenset(granted))


def evaluate_rules(*, now: datetime) -> int:
    """Evaluate every enabled rule; returns how many firings are new. A rule that fails is
    logged and the others still run."""
    fired = 0
    for rule in AlertRule.objects.filter(enabled=True).order_by("pk"):
        try:
            fired += record(rule, find(rule, now=now), now=now)
        except Exception:
            logger.exception("alert rule %s (%s) could not be evaluated", rule.pk, rule.name)
    return fired


def find(rule: AlertRule, *, now: datetime) -> list[Finding]:
    finders = {
        AlertRule.FAILED: _failed,
        AlertRule.STUCK: _stuck,
        AlertRule.FAILURE_RATE: _failure_rate,
    }
    return finders[rule.kind](rule, rule_scope(rule), now)


def record(rule: AlertRule, findings: list[Finding], *, now: datetime) -> int:
    """Store the findings not yet fired; the unique (rule, key) constraint keeps a race of
    two loops to one firing. Jobs join the rule's open group (or open one); a failure-rate
    window is one post already, so it is posted at once."""
    seen = _fired(rule, [f.key for f in findings])
    # Findings come newest first; a group names its first jobs, so record the oldest first.
    new = [f for f in reversed(findings) if f.key not in seen]
    if not new:
        return 0
    if rule.kind == AlertRule.FAILURE_RATE:
        AlertFiring.objects.bulk_create(
            [_firing(rule, f, now=now, until=now) for f in new], ignore_conflicts=True
        )
    else:
        for _ in range(GROUP_TRIES):
            try:
                atomic_retrying_locks(lambda: _join_group(rule, new, now=now))
                break
            except _GroupClosed:  # its post was claimed meanwhile: open the next group
                continue
    logger.info("alert rule %s fired for %d new jobs or windows", rule.name, len(new))
    return len(new)


class _GroupClosed(Exception):
    """The group being joined was claimed for posting before the join was written."""


def _firing(rule: AlertRule, f: Finding, *, now: datetime, until: datetime, **extra):
    return AlertFiring(
        rule=rule, key=f.key, job_id=f.job_id, account=f.account, state_machine=f.state_machine,
        reason=f.reason, body=f.body, fired_at=now, next_attempt_at=until, group_until=until,
        **extra,
    )  # fmt: skip


def open_group(rule: AlertRule, *, now: datetime) -> AlertFiring | None:
    """The rule's group still taking jobs: its window not over, its post not yet claimed (a
    claim moves `next_attempt_at` off `group_until`)."""
    rows = AlertFiring.objects.filter(
        rule=rule, lead__isnull=True, state=AlertFiring.PENDING, attempts=0,
        group_until__gt=now, next_attempt_at=F("group_until"),
    )  # fmt: skip
    return rows.order_by("-pk").first()


def _join_group(rule: AlertRule, new: list[Finding], *, now: datetime) -> None:
    lead = open_group(rule, now=now)
    if lead is None:
        until = now + timedelta(seconds=settings.EDOBS_ALERT_GROUP_SECONDS)
        lead, new = _firing(rule, new[0], now=now, until=until), new[1:]
        lead.save()
    AlertFiring.objects.bulk_create(
        [_firing(rule, f, now=now, until=None, lead=lead, state=AlertFiring.GROUPED)
         for f in new],
        ignore_conflicts=True,
    )  # fmt: skip
    group = AlertFiring.objects.filter(Q(pk=lead.pk) | Q(lead=lead))
    count = group.count()
    changes = {"count": count}
    if count > 1:
        first = group.order_by("pk")[:GROUP_LISTED]
        changes["body"] = group_body(
            rule_name=rule.name, kind=rule.kind, fmt=rule.format, count=count,
            jobs=[GroupedJob(f.job_id, f.account, f.state_machine, f.reason) for f in first],
            site=settings.EDOBS_ALERT_SITE_URL, since=lead.fired_at, until=lead.group_until,
        )  # fmt: skip
    still_open = AlertFiring.objects.filter(
        pk=lead.pk, state=AlertFiring.PENDING, attempts=0, next_attempt_at=F("group_until")
    )
    if not still_open.update(**changes):
        raise _GroupClosed


def _filters(rule: AlertRule, **kwargs) -> JobFilter:
    return JobFilter(state_machine=rule.state_machine or None, **kwargs)


def _recent(scope, filters: JobFilter, since: datetime) -> Iterator[JobSummary]:
    """Jobs active since `since`, newest first, at most SCAN_PAGES pages."""
    cursor = None
    for _ in range(SCAN_PAGES):
        page = selectors.job_list_latest(user=scope, limit=PAGE, cursor=cursor, filters=filters)
        for job in page.items:
            if job.last_event_at is None or job.last_event_at < since:
                return
            yield job
        if (cursor := page.next_cursor) is None:
            return


def _job_finding(rule: AlertRule, job: JobSummary, reason: str, health: Health | None) -> Finding:
    body = job_body(
        rule_name=rule.name, kind=rule.kind, fmt=rule.format, job=job, health=health,
        reason=reason, site=settings.EDOBS_ALERT_SITE_URL,
    )  # fmt: skip
    return Finding(
        key=job.id, body=body, job_id=job.id, account=job.account,
        state_machine=job.state_machine, reason=reason,
    )  # fmt: skip


def _ended(job: JobSummary) -> datetime | None:
    return job.stopped_at or job.last_event_at


def _failed(rule: AlertRule, scope, now: datetime) -> list[Finding]:
    """No backfill: a job that ended before the rule was created or enabled is not its."""
    watching = rule.watching_since
    since = max(now - timedelta(minutes=settings.EDOBS_ALERT_LOOKBACK_MINUTES), watching)
    filters = _filters(rule, statuses=tuple(sorted(FAILED_STATUSES)))
    jobs = [job for job in _recent(scope, filters, since) if (_ended(job) or now) >= watching]
    fired = _fired(rule, [job.id for job in jobs])
    return [
        _job_finding(rule, job, f"{job.status}: {job.error}" if job.error else job.status or "",
                     None)
        for job in jobs if job.id not in fired
    ]  # fmt: skip


def _stuck(rule: AlertRule, scope, now: datetime) -> list[Finding]:
    page, health = selectors.job_list_health(
        user=scope, limit=PAGE, filters=_filters(rule), stuck=True
    )
    fired = _fired(rule, [job.id for job in page.items])
    return [
        _job_finding(rule, job, health[job.id].stuck_reason or "stuck", health[job.id])
        for job in page.items if job.id not in fired
    ]  # fmt: skip


def _fired(rule: AlertRule, keys: list[str]) -> set[str]:
    """Keys already fired: their bodies are not made again."""
    rows = AlertFiring.objects.filter(rule=rule, key__in=keys).values_list("key", flat=True)
    return set(rows)


def _failure_rate(rule: AlertRule, scope, now: datetime) -> list[Finding]:
    window = timedelta(minutes=rule.window_minutes)
    since = max(now - window, rule.watching_since)  # no backfill, as for `failed`
    finished = [
        job for job in _recent(scope, _filters(rule), since)
        if job.status in TERMINAL_STATUSES and job.stopped_at and since <= job.stopped_at <= now
    ]  # fmt: skip
    failed = [job for job in finished if job.status in FAILED_STATUSES]
    if len(finished) < max(1, rule.min_jobs):
        return []
    if 100 * len(failed) < rule.threshold_percent * len(finished):
        return []
    errors = Counter(job.error or job.status or "" for job in failed).most_common()
    finding = RateFinding(
        state_machine=rule.state_machine, since=since, until=now, finished=len(finished),
        failed=len(failed), errors=errors, accounts=sorted({job.account for job in finished}),
    )  # fmt: skip
    period = EPOCH + (now - EPOCH) // window * window
    body = rate_body(
        rule_name=rule.name, fmt=rule.format, finding=finding, threshold=rule.threshold_percent
    )
    reason = f"{len(failed)} of {len(finished)} jobs failed ({finding.percent:.0f}%)"
    return [
        Finding(key=f"window:{period.isoformat()}", body=body, reason=reason,
                state_machine=rule.state_machine)
    ]  # fmt: skip

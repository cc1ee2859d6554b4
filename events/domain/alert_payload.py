"""What an alert posts (pure): Slack-compatible text and blocks, or the job summary as JSON.

Event content is hostile: every body is made by json.dumps (always valid JSON), and text that
Slack reads as mrkdwn has its control characters escaped (`&`, `<`, `>`), so a job name cannot
forge a link or a mention. Links are ours: the site URL and a percent-encoded job id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from events.domain.envelope import iso
from events.domain.fleet import Health
from events.domain.shapes import job_summary
from events.domain.summary import JobSummary

MAX_FIELD = 500  # characters of an error, cause or reason in a Slack message
GROUP_LISTED = 10  # jobs a group's message names; the others are counted


@dataclass(frozen=True)
class GroupedJob:
    """One job of a group's message, as its firing recorded it."""

    job_id: str
    account: str
    state_machine: str
    reason: str

    @property
    def name(self) -> str:
        """The execution's name: the job id is ACCOUNT:REGION:STATE_MACHINE:NAME."""
        parts = self.job_id.split(":", 3)
        return parts[3] if len(parts) == 4 else self.job_id


@dataclass(frozen=True)
class RateFinding:
    """A failure rate over a window that reached a rule's threshold."""

    state_machine: str  # "" for every state machine
    since: datetime
    until: datetime
    finished: int
    failed: int
    errors: list[tuple[str, int]]  # the most frequent first
    accounts: list[str]

    @property
    def percent(self) -> float:
        return 100 * self.failed / self.finished if self.finished else 0.0


def mrkdwn(text: str) -> str:
    """Text Slack shows as it is: its three control characters escaped, as Slack asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def job_url(site: str, job_id: str) -> str:
    return f"{site.rstrip('/')}/jobs/{quote(job_id, safe='')}/"


def _cut(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= MAX_FIELD else text[: MAX_FIELD - 1] + "…"


def job_body(
    *, rule_name: str, kind: str, fmt: str, job: JobSummary, health: Health | None,
    reason: str, site: str,
) -> str:  # fmt: skip
    url = job_url(site, job.id)
    if fmt == "json":
        return json.dumps({
            "rule": rule_name, "kind": kind, "reason": reason, "url": url,
            "job": job_summary(job, health),
        })  # fmt: skip
    what = "is stuck" if kind == "stuck" else f"ended {job.status or 'UNKNOWN'}"
    headline = f"<{url}|{mrkdwn(job.name)}> of *{mrkdwn(job.state_machine)}* {mrkdwn(what)}"
    lines = [headline, f"*Reason:* {mrkdwn(_cut(reason))}"]
    if job.cause and kind == "failed":
        lines.append(f"*Cause:* {mrkdwn(_cut(job.cause))}")
    context = f"account {mrkdwn(job.account)} · {mrkdwn(job.region)} · rule {mrkdwn(rule_name)}"
    return _slack(fallback=f"{job.state_machine} {job.name} {what}: {reason}", lines=lines,
                  context=context)  # fmt: skip


def rate_body(*, rule_name: str, fmt: str, finding: RateFinding, threshold: int) -> str:
    machine = finding.state_machine or "every state machine"
    if fmt == "json":
        return json.dumps({
            "rule": rule_name, "kind": "failure_rate", "state_machine": finding.state_machine,
            "since": iso(finding.since), "until": iso(finding.until),
            "finished": finding.finished, "failed": finding.failed,
            "percent": round(finding.percent, 1), "threshold_percent": threshold,
            "errors": [{"error": e, "count": c} for e, c in finding.errors],
            "accounts": finding.accounts,
        })  # fmt: skip
    summary = (
        f"{finding.failed} of {finding.finished} jobs failed ({finding.percent:.0f}%, "
        f"threshold {threshold}%) from {iso(finding.since)} to {iso(finding.until)}"
    )
    lines = [f"*{mrkdwn(machine)}*: {mrkdwn(summary)}"]
    if finding.errors:
        top = ", ".join(f"{mrkdwn(_cut(e))} ×{c}" for e, c in finding.errors[:5])
        lines.append(f"*Errors:* {top}")
    context = f"accounts {mrkdwn(', '.join(finding.accounts))} · rule {mrkdwn(rule_name)}"
    return _slack(fallback=f"{machine}: {summary}", lines=lines, context=context)


def _slack(*, fallback: str, lines: list[str], context: str) -> str:
    return json.dumps({
        "text": mrkdwn(fallback),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    })  # fmt: skip


def group_body(
    *, rule_name: str, kind: str, fmt: str, count: int, jobs: list[GroupedJob], site: str,
    since: datetime, until: datetime,
) -> str:  # fmt: skip
    """One post for a group window: how many jobs the rule fired for, and the first of them."""
    listed = jobs[:GROUP_LISTED]
    what = "are stuck" if kind == "stuck" else "failed"
    if fmt == "json":
        return json.dumps({
            "rule": rule_name, "kind": kind, "count": count, "since": iso(since),
            "until": iso(until), "more": count - len(listed),
            "jobs": [{"id": job.job_id, "name": job.name, "account": job.account,
                      "state_machine": job.state_machine, "reason": job.reason,
                      "url": job_url(site, job.job_id)} for job in listed],
        })  # fmt: skip
    machines = sorted({job.state_machine for job in jobs})
    of = ", ".join(machines[:3]) + (f" and {len(machines) - 3} more" if len(machines) > 3 else "")
    summary = f"{count} jobs of {of} {what} from {iso(since)} to {iso(until)}"
    lines = [f"*{mrkdwn(summary)}*"]
    for job in listed:
        link = f"<{job_url(site, job.job_id)}|{mrkdwn(job.name)}>"
        lines.append(f"• {link} ({mrkdwn(job.state_machine)}): {mrkdwn(_cut(job.reason))}")
    if count > len(listed):
        lines.append(f"… and {count - len(listed)} more")
    context = f"rule {mrkdwn(rule_name)}"
    return _slack(fallback=summary, lines=lines, context=context)


def sample_body(*, rule_name: str, fmt: str, sent_by: str, at: datetime) -> str:
    """A test-send: clearly a test, so nobody acts on it."""
    text = f"TEST from edobs: rule {rule_name} can post here (sent by {sent_by} at {iso(at)})"
    if fmt == "json":
        return json.dumps({"test": True, "rule": rule_name, "text": text, "sent_at": iso(at)})
    return _slack(fallback=text, lines=[f"*TEST* {mrkdwn(text)}"],
                  context=f"rule {mrkdwn(rule_name)} · a test message, not an alert")  # fmt: skip

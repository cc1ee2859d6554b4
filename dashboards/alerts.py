"""Alert rules in the dashboard: list (with how each webhook is doing), create, edit, enable or
disable, and test-send. The same model permissions as the admin (events.view_alertrule,
add_alertrule, change_alertrule) and the same scope: a user sees and edits their teams' rules
only; the state machine picker offers the state machines of the accounts they can see."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from events.domain.alert_payload import sample_body
from events.models import AlertRule
from events.read import alerts, listing
from events.webhooks import post

logger = logging.getLogger(__name__)

MACHINES = 200  # state machines offered by the picker, the most recently active first
SHOWN_ANSWER = 200  # characters of a test-send's answer shown


def _need(request: HttpRequest, *perms: str) -> None:
    if not any(request.user.has_perm(f"events.{perm}_alertrule") for perm in perms):
        raise PermissionDenied


class RuleForm(forms.ModelForm):
    webhook_url = forms.URLField(max_length=1000, assume_scheme="https", label="Webhook URL")
    state_machine = forms.ChoiceField(required=False)

    class Meta:
        model = AlertRule
        fields = [
            "name", "enabled", "state_machine", "kind", "threshold_percent", "window_minutes",
            "min_jobs", "webhook_url", "format", "team",
        ]  # fmt: skip

    def __init__(self, *args, user, machines: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.state_machine
        names = machines + ([current] if current and current not in machines else [])
        self.fields["state_machine"].choices = [("", "Every state machine I can see")] + [
            (name, name) for name in names
        ]
        self.fields["team"].queryset = alerts.teams_of(user)
        self.fields["team"].required = not user.is_superuser


def _machines(request: HttpRequest) -> list[str]:
    return listing.state_machine_names(user=request.user, limit=MACHINES)


@login_required
def rule_list(request: HttpRequest) -> HttpResponse:
    _need(request, "view", "change")
    rules = list(alerts.rules_with_health(request.user).order_by("name", "pk"))
    rows = [
        {"rule": rule, "host": urlsplit(rule.webhook_url).hostname or "",
         "failing": alerts.keeps_failing(rule)}
        for rule in rules
    ]  # fmt: skip
    context = {
        "rows": rows, "nav": "alerts", "group_seconds": settings.EDOBS_ALERT_GROUP_SECONDS,
        "can_add": request.user.has_perm("events.add_alertrule"),
        "can_change": request.user.has_perm("events.change_alertrule"),
    }  # fmt: skip
    return render(request, "dashboards/alerts.html", context)


def _edit(request: HttpRequest, rule: AlertRule, *, initial: dict | None = None) -> HttpResponse:
    machines = _machines(request)
    data = request.POST if request.method == "POST" else None
    form = RuleForm(data, instance=rule, initial=initial, user=request.user, machines=machines)
    if data is not None and form.is_valid():
        saved = form.save()
        messages.success(request, f"Saved rule “{saved.name}”.")
        return redirect("alerts")
    context = {"form": form, "rule": rule, "nav": "alerts"}
    return render(request, "dashboards/alert_form.html", context, status=400 if data else 200)


@login_required
def rule_new(request: HttpRequest) -> HttpResponse:
    """`?state_machine=NAME` (the state machine page's "Alert me") picks it, if visible."""
    _need(request, "add")
    wanted = request.GET.get("state_machine", "")
    initial = {"state_machine": wanted, "name": f"{wanted} failing" if wanted else ""}
    return _edit(request, AlertRule(), initial=initial)


@login_required
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _need(request, "change")
    return _edit(request, get_object_or_404(alerts.rules_of(request.user), pk=pk))


@login_required
@require_POST
def rule_enabled(request: HttpRequest, pk: int) -> HttpResponse:
    """Enable or disable: enabling starts the rule's watch now (no backfill)."""
    _need(request, "change")
    rule = get_object_or_404(alerts.rules_of(request.user), pk=pk)
    rule.enabled = request.POST.get("enabled") == "1"
    rule.save(update_fields=["enabled"])
    state = "enabled: it fires for jobs that end from now on" if rule.enabled else "disabled"
    messages.success(request, f"Rule “{rule.name}” {state}.")
    return redirect("alerts")


@login_required
@require_POST
def rule_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Post a message marked as a test to the rule's webhook now (checked as every delivery
    is: events.webhooks) and say what it answered; nothing is recorded as a delivery."""
    _need(request, "change")
    rule = get_object_or_404(alerts.rules_of(request.user), pk=pk)
    body = sample_body(rule_name=rule.name, fmt=rule.format, sent_by=request.user.get_username(),
                       at=timezone.now())  # fmt: skip
    answer = post(rule.webhook_url, body, timeout=settings.EDOBS_ALERT_TIMEOUT_SECONDS)
    host = urlsplit(rule.webhook_url).hostname or rule.webhook_url
    said = answer.error or f"HTTP {answer.status}: {answer.response[:SHOWN_ANSWER]}"
    if answer.ok:
        messages.success(request, f"Test message to {host} delivered ({said}).")
    else:
        logger.info("test-send of rule %s to %s failed: %s", rule.pk, host, said)
        messages.error(request, f"Test message to {host} failed: {said}")
    return redirect("alerts")

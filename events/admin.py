"""The admin.  Staff who are not superusers see only their teams' rows: the events and jobs
of their teams' accounts (events.read.selectors.visible_accounts), the sockets of their teams'
members, their own teams; rejected messages (raw bodies of any account) only superusers.  A
row out of sight is a 404 at its URL, as one that does not exist.  Whatever model permissions
staff hold, nothing here widens what they may read: only superusers grant a team its accounts,
pickers offer only teammates, and API token keys show to their owner and superusers only."""

import json
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db.models import JSONField, Q
from django.http import Http404
from django.utils import timezone
from django.utils.html import format_html
from rest_framework.authtoken.admin import TokenAdmin as DRFTokenAdmin
from rest_framework.authtoken.models import TokenProxy

from events.aws import queue_url, sqs_client
from events.models import (
    AlertDelivery,
    AlertFiring,
    AlertRule,
    Connection,
    Event,
    EventConflict,
    Job,
    RejectedMessage,
    Replay,
    Team,
    TeamAccount,
)
from events.read.selectors import visible_accounts

KEY_PREFIX = 6  # characters of an API token shown in lists: enough to tell keys apart


def pretty(value) -> str:
    # format_html escapes the JSON text: event content is hostile. The class, not a style
    # attribute (the Content-Security-Policy refuses those): admins that show it take PrettyMedia.
    return format_html("<pre class='json-pretty'>{}</pre>", json.dumps(value, indent=2))


class PrettyMedia:
    css = {"all": ["events/admin.css"]}


def in_visible_accounts(queryset, user):
    accounts = visible_accounts(user)
    return queryset if accounts is None else queryset.filter(account__in=accounts)


class ScopedAdmin(admin.ModelAdmin):
    """get_queryset decides what a user sees; outside it, a URL answers 404 (Django's default
    is a redirect to the index)."""

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object.")
        return obj


class AccountScopedAdmin(ScopedAdmin):
    def get_queryset(self, request):
        return in_visible_accounts(super().get_queryset(request), request.user)


def teammates(user):
    """The users `user` shares a team with, and `user`: all a staff member may see by name."""
    users = get_user_model().objects.all()
    if user.is_superuser:
        return users
    return users.filter(Q(pk=user.pk) | Q(teams__members=user)).distinct()


class TeamAccountInline(admin.TabularInline):
    """A team's accounts are what its members may read: only superusers grant or change them,
    whatever model permissions staff hold (a staff member could otherwise grant their own team
    another team's account)."""

    model = TeamAccount
    extra = 1

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


@admin.register(Team)
class TeamAdmin(ScopedAdmin):
    list_display = ["name"]
    filter_horizontal = ["members"]
    inlines = [TeamAccountInline]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(members=request.user)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "members":
            kwargs["queryset"] = teammates(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class RecentJobFilter(admin.SimpleListFilter):
    """The most recently active jobs: a sidebar of every job would be unusable."""

    title = "job (recent)"
    parameter_name = "job"
    shown = 20

    def lookups(self, request, model_admin):
        jobs = in_visible_accounts(Job.objects, request.user).order_by("-last_event_at")
        jobs = jobs.values_list("id", flat=True)[: self.shown]
        return [(job_id, job_id) for job_id in jobs]

    def queryset(self, request, queryset):
        return queryset.filter(job_id=self.value()) if self.value() else queryset


@admin.register(Event)
class EventAdmin(AccountScopedAdmin):
    list_display = ["time", "source", "detail_type", "fn", "account", "job_id", "event_id"]
    list_filter = ["source", "detail_type", "account", "fn", RecentJobFilter]
    search_fields = ["=event_id", "=job__id", "job__name"]
    date_hierarchy = "time"
    readonly_fields = ["pretty_raw"]
    exclude = ["raw", "batch"]
    list_select_related = False
    show_full_result_count = False

    Media = PrettyMedia

    @admin.display(description="envelope")
    def pretty_raw(self, obj: Event) -> str:
        return pretty(obj.raw)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class EventInline(admin.TabularInline):
    model = Event
    fields = ["time", "source", "detail_type", "fn", "event_id"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    ordering = ["time", "seq"]
    show_change_link = True

    def get_queryset(self, request):
        return in_visible_accounts(super().get_queryset(request), request.user)


@admin.register(Job)
class JobAdmin(AccountScopedAdmin):
    list_display = ["id", "status", "account", "event_count", "started_at", "last_event_at"]
    list_filter = ["status", "state_machine", "account"]
    search_fields = ["=id", "name", "execution_arn"]
    readonly_fields = [field.name for field in Job._meta.fields]
    inlines = [EventInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(RejectedMessage)
class RejectedMessageAdmin(ScopedAdmin):
    """Superusers only: a body that failed to parse has no account to scope it by."""

    list_display = ["received_at", "reason", "message_id", "receive_count", "requeued_at"]
    search_fields = ["reason", "=message_id"]
    readonly_fields = [
        "body",
        "reason",
        "message_id",
        "receive_count",
        "received_at",
        "requeued_at",
    ]
    formfield_overrides = {JSONField: {}}
    actions = ["requeue"]

    @admin.action(description="Requeue: send the body back to the queue")
    def requeue(self, request, queryset):
        client = sqs_client()
        url = queue_url(client)
        for message in queryset:
            client.send_message(QueueUrl=url, MessageBody=message.body or " ")
        count = queryset.update(requeued_at=timezone.now())
        self.message_user(request, f"Requeued {count} messages.", messages.SUCCESS)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.none()

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Connection)
class ConnectionAdmin(ScopedAdmin):
    """Staff who are not superusers see the sockets of their teams' members (and their own)."""

    list_display = [
        "user", "path", "client", "server", "connected_at", "last_seen", "messages_sent"
    ]  # fmt: skip
    list_filter = ["server"]
    search_fields = ["user__username", "path", "client"]
    readonly_fields = [field.name for field in Connection._meta.fields]
    actions = ["disconnect"]

    @admin.action(description="Disconnect: close the selected live connections")
    def disconnect(self, request, queryset):
        from events.live.connections import connection_disconnect

        names = list(queryset.values_list("channel_name", flat=True))
        sent = connection_disconnect(channel_names=names)
        self.message_user(request, f"Asked {sent} of {len(names)} connections to close.")

    def get_queryset(self, request):
        queryset, user = super().get_queryset(request), request.user
        if user.is_superuser:
            return queryset
        teammates = get_user_model().objects.filter(Q(pk=user.pk) | Q(teams__members=user))
        return queryset.filter(user__in=teammates)

    def has_add_permission(self, request) -> bool:
        return False


# ---- alerts (events.alerts) ---------------------------------------------------------------------


def teams_of(user):
    return Team.objects.all() if user.is_superuser else Team.objects.filter(members=user)


def rules_of(queryset, user, field: str = "team"):
    """Superusers see every rule; other staff the rules of their teams."""
    return queryset if user.is_superuser else queryset.filter(**{f"{field}__members": user})


class AlertRuleForm(forms.ModelForm):
    webhook_url = forms.URLField(max_length=1000, assume_scheme="https")

    class Meta:
        model = AlertRule
        fields = [
            "name", "enabled", "state_machine", "kind", "threshold_percent", "window_minutes",
            "min_jobs", "webhook_url", "format", "team",
        ]  # fmt: skip


@admin.register(AlertRule)
class AlertRuleAdmin(ScopedAdmin):
    """A rule without a team sees every account: only superusers may leave the team blank."""

    form = AlertRuleForm
    list_display = ["name", "enabled", "kind", "state_machine", "team", "format", "webhook_host"]
    list_filter = ["enabled", "kind", "format"]
    search_fields = ["name", "state_machine"]

    @admin.display(description="webhook")
    def webhook_host(self, obj: AlertRule) -> str:
        return urlsplit(obj.webhook_url).netloc

    def get_queryset(self, request):
        return rules_of(super().get_queryset(request), request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "team":
            kwargs["queryset"] = teams_of(request.user)
            kwargs["required"] = not request.user.is_superuser
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class AlertDeliveryInline(admin.TabularInline):
    model = AlertDelivery
    fields = ["attempt", "at", "status", "response", "error", "next_retry_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


class ReadOnlyAdmin(ScopedAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AlertFiring)
class AlertFiringAdmin(ReadOnlyAdmin):
    list_display = ["fired_at", "rule", "key", "state", "count", "attempts", "next_attempt_at"]
    # The rules offered are those of the firings this user sees, not every team's rule names.
    list_filter = ["state", ("rule", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=key", "=job_id", "state_machine"]
    readonly_fields = [
        "rule", "key", "job_id", "account", "state_machine", "reason", "pretty_body", "fired_at",
        "state", "attempts", "next_attempt_at", "count", "lead", "group_until",
    ]  # fmt: skip
    exclude = ["body"]
    inlines = [AlertDeliveryInline]

    Media = PrettyMedia

    @admin.display(description="body posted")
    def pretty_body(self, obj: AlertFiring) -> str:
        return pretty(json.loads(obj.body))

    def get_queryset(self, request):
        return rules_of(super().get_queryset(request), request.user, "rule__team")


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["at", "firing", "attempt", "status", "short_response", "error", "next_retry_at"]
    list_filter = ["status"]
    readonly_fields = ["firing", "attempt", "at", "status", "response", "error", "next_retry_at"]
    list_select_related = ["firing__rule"]

    @admin.display(description="answer")
    def short_response(self, obj: AlertDelivery) -> str:
        return obj.response[:80]

    def get_queryset(self, request):
        return rules_of(super().get_queryset(request), request.user, "firing__rule__team")


@admin.register(Replay)
class ReplayAdmin(AccountScopedAdmin):
    """Who replayed what to which bus, and how it went: read-only, a record of what was done."""

    list_display = [
        "created_at", "username", "event_id", "job_id", "bus", "dry_run", "entries", "sent",
        "failed",
    ]  # fmt: skip
    list_filter = ["dry_run"]
    search_fields = ["username", "event_id", "job_id", "new_job", "bus"]
    readonly_fields = [field.name for field in Replay._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# ---- users and groups (django.contrib.auth) ------------------------------------------------------

PRIVILEGES = ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]

admin.site.unregister(get_user_model())
admin.site.unregister(Group)


@admin.register(get_user_model())
class UserAdmin(DjangoUserAdmin, ScopedAdmin):
    """Django lets whoever holds `change_user` make anyone, themselves included, a superuser, or
    set their password. Here staff who are not superusers see their teammates only, change only
    themselves (a password or an email), and never a privilege: granting rights is for
    superusers."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(pk__in=teammates(request.user).values("pk"))

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else [*fields, *PRIVILEGES]

    def has_change_permission(self, request, obj=None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        return request.user.is_superuser or obj is None or obj.pk == request.user.pk

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    """A group carries permissions to its members: only superusers make or change one."""

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


# ---- API tokens (rest_framework.authtoken) -------------------------------------------------------

admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class TokenAdmin(DRFTokenAdmin):
    """A key is a password: lists show its first characters only, and staff who are not
    superusers see, make and delete only their own token (with another user's key they would
    act as that user, root included)."""

    list_display = ["key_prefix", "user", "created"]
    ordering = ["user__username"]

    @admin.display(description="key")
    def key_prefix(self, obj) -> str:
        return f"{obj.key[:KEY_PREFIX]}…"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object.")
        return obj

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = get_user_model().objects.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(EventConflict)
class EventConflictAdmin(AccountScopedAdmin):
    """Envelopes that came with the id of a stored event and other content (events.ingest.services
    conflicts_record): kept beside it, never over it; read-only, scoped by account."""

    list_display = ["received_at", "account", "event_id", "message_id"]
    list_filter = ["account"]
    search_fields = ["=event_id", "=message_id"]
    fields = ["received_at", "account", "event_id", "message_id", "digest", "pretty_raw"]
    readonly_fields = fields

    Media = PrettyMedia

    @admin.display(description="envelope")
    def pretty_raw(self, obj: EventConflict) -> str:
        return pretty(obj.raw)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

"""System checks that say clearly what is misconfigured (events.E001 ...)."""

import os
import re

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from rest_framework.throttling import SimpleRateThrottle

from edobs_site.safety import production_problems
from events.domain.envelope import is_account
from events.stores import BACKENDS
from events.stores.orm.text import fts5_trigram_available
from events.webhooks import parse_networks
from infra.bus_policy import bad_accounts, is_organization_id

# An event bus name (1-256 of these characters) or an event bus ARN.
BUS_NAME_PART = r"[A-Za-z0-9._\-/]{1,256}"
BUS_NAME = re.compile(BUS_NAME_PART, re.ASCII)
BUS_ARN = re.compile(rf"arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{{12}}:event-bus/{BUS_NAME_PART}")


@register(Tags.compatibility)
def check_settings(app_configs, **kwargs):
    errors = []
    if settings.EDOBS_STORE not in BACKENDS:
        errors.append(
            Error(
                f"EDOBS_STORE is {settings.EDOBS_STORE!r}; it must be one of {sorted(BACKENDS)}.",
                id="events.E001",
            )
        )
    if settings.EDOBS_STORE == "dynamodb" and not settings.EDOBS_TABLE_NAME:
        errors.append(Error("EDOBS_STORE=dynamodb needs EDOBS_TABLE_NAME.", id="events.E003"))
    if not (settings.EDOBS_QUEUE_URL or settings.EDOBS_QUEUE_NAME):
        errors.append(Error("Set EDOBS_QUEUE_URL or EDOBS_QUEUE_NAME.", id="events.E004"))
    if not is_account(settings.EDOBS_ACCOUNT):
        errors.append(Error("EDOBS_ACCOUNT must be a 12-digit AWS account id.", id="events.E005"))
    if settings.EDOBS_RETENTION_HOURS <= 0:
        errors.append(Error("EDOBS_RETENTION_HOURS must be positive.", id="events.E006"))
    if settings.EDOBS_STUCK_FACTOR < 1:
        errors.append(Error("EDOBS_STUCK_FACTOR must be at least 1.", id="events.E015"))
    if not settings.EDOBS_RULE_SOURCES:
        errors.append(Error("EDOBS_RULE_SOURCES must name at least one source.", id="events.E007"))
    return errors


@register(Tags.compatibility)
def check_alerts(app_configs, **kwargs):
    """The alerts loop's settings (events.alerts)."""
    errors = []
    positive = ["EDOBS_ALERT_INTERVAL_SECONDS", "EDOBS_ALERT_LOOKBACK_MINUTES",
                "EDOBS_ALERT_TIMEOUT_SECONDS"]  # fmt: skip
    for name in positive:
        if not getattr(settings, name) > 0:
            errors.append(Error(f"{name} must be positive.", id="events.E016"))
    if not 1 <= settings.EDOBS_ALERT_MAX_ATTEMPTS <= 100:
        errors.append(Error("EDOBS_ALERT_MAX_ATTEMPTS must be 1 to 100.", id="events.E017"))
    base, cap = settings.EDOBS_ALERT_BACKOFF_SECONDS, settings.EDOBS_ALERT_BACKOFF_MAX_SECONDS
    if not 0 < base <= cap:
        message = "EDOBS_ALERT_BACKOFF_SECONDS must be positive and at most "
        errors.append(Error(message + "EDOBS_ALERT_BACKOFF_MAX_SECONDS.", id="events.E018"))
    if not 0 <= settings.EDOBS_ALERT_GROUP_SECONDS <= 86400:
        message = "EDOBS_ALERT_GROUP_SECONDS must be 0 (no grouping window) to 86400 seconds."
        errors.append(Error(message, id="events.E060"))
    site = settings.EDOBS_ALERT_SITE_URL
    try:
        URLValidator(schemes=["http", "https"])(site)
    except ValidationError:
        message = f"EDOBS_ALERT_SITE_URL is {site!r}: it must be the site's http(s) URL, "
        errors.append(Error(message + "which alerts link to.", id="events.E019"))
    bad = parse_networks(settings.EDOBS_WEBHOOK_ALLOWED_NETWORKS)[1]
    if bad:
        message = f"EDOBS_WEBHOOK_ALLOWED_NETWORKS holds {', '.join(map(repr, bad))}: each must "
        message += "be a network in CIDR form with no host bits set (10.1.0.0/16, fd00::/8)."
        errors.append(Error(message, id="events.E020"))
    return errors


@register(Tags.compatibility)
def check_source_accounts(app_configs, **kwargs):
    """The accounts `manage.py provision` admits to the bus (infra/bus_policy.py)."""
    errors = []
    bad = bad_accounts(settings.EDOBS_SOURCE_ACCOUNTS)
    if bad:
        message = f"EDOBS_SOURCE_ACCOUNTS holds {', '.join(map(repr, bad))}: "
        errors.append(Error(message + "each must be a 12-digit AWS account id.", id="events.E013"))
    organization = settings.EDOBS_ORGANIZATION_ID
    if organization and not is_organization_id(organization):
        message = f"EDOBS_ORGANIZATION_ID is {organization!r}: it must look like o-a1b2c3d4e5 "
        message += "(o- then 10 to 32 lowercase letters or digits)."
        errors.append(Error(message, id="events.E014"))
    return errors


@register(Tags.compatibility)
def check_replay(app_configs, **kwargs):
    """Where replays may go and how often (events.replay.send, events.api.replay)."""
    errors = []
    bad = [bus for bus in settings.EDOBS_REPLAY_BUSES
           if not (BUS_NAME.fullmatch(bus) or BUS_ARN.fullmatch(bus))]  # fmt: skip
    if bad or not settings.EDOBS_REPLAY_BUSES:
        message = f"EDOBS_REPLAY_BUSES holds {', '.join(map(repr, bad)) or 'nothing'}: "
        errors.append(Error(message + "each must be an event bus name or ARN.", id="events.E025"))
    rate = settings.EDOBS_REPLAY_RATE
    try:
        allowed, _ = SimpleRateThrottle.parse_rate(None, rate)
        if allowed < 1:
            raise ValueError(rate)
    except (ValueError, KeyError, IndexError):
        message = f"EDOBS_REPLAY_RATE is {rate!r}: it must be like 10/min (N/sec, min, hour, day)"
        errors.append(Error(message + ", N at least 1.", id="events.E026"))
    return errors


@register(Tags.security, deploy=True)
def check_production(app_configs, **kwargs):
    """`manage.py check --deploy`: what must never reach production (edobs_site.safety;
    settings.py refuses the same with DJANGO_HTTPS=true)."""
    problems = production_problems(
        secret_key=settings.SECRET_KEY, key_from_env=settings.SECRET_KEY_FROM_ENV,
        debug=settings.DEBUG, demo=settings.EDOBS_DEMO, allowed_hosts=settings.ALLOWED_HOSTS,
        csrf_trusted_origins=settings.CSRF_TRUSTED_ORIGINS, https=settings.PRODUCTION,
    )  # fmt: skip
    return [Error(message, id=check_id) for check_id, message in problems]


@register(Tags.security, deploy=True)
def check_static_files(app_configs, **kwargs):
    """`check --deploy`: without collectstatic's manifest, pages name unhashed static files,
    served uncompressed with a short cache (edobs_site.staticfiles)."""
    from django.contrib.staticfiles.storage import staticfiles_storage

    if getattr(staticfiles_storage, "has_manifest", True):
        return []
    message = f"No static files manifest in STATIC_ROOT ({settings.STATIC_ROOT})."
    hint = "Run `manage.py collectstatic --noinput` before starting the servers."
    return [Warning(message, hint=hint, id="events.W050")]


@register(Tags.compatibility)
def check_metrics(app_configs, **kwargs):
    """GET /metrics: its allow-list must parse, and every process must be able to write its
    samples (events.metrics, multiprocess mode)."""
    errors = []
    bad = parse_networks(settings.EDOBS_METRICS_ALLOWED_NETWORKS)[1]
    if bad:
        message = f"EDOBS_METRICS_ALLOWED_NETWORKS holds {', '.join(map(repr, bad))}: each must "
        message += "be a network in CIDR form with no host bits set (127.0.0.0/8, ::1)."
        errors.append(Error(message, id="events.E055"))
    directory = settings.EDOBS_METRICS_DIR
    if not (os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK)):
        message = f"EDOBS_METRICS_DIR {str(directory)!r} must be a directory this process can "
        errors.append(Error(message + "write (Prometheus multiprocess files).", id="events.E056"))
    return errors


@register(Tags.compatibility)
def check_sqlite_search(app_configs, **kwargs):
    """Free-text search on SQLite looks trigrams and words up in FTS5 (migrations
    0013_h23_sqlite_fts, 0015_h26_word_index, which skip both tables without the trigram
    tokenizer): a SQLite built without it (or older than 3.34) still answers, by a bounded
    scan."""
    if not any(db["ENGINE"].endswith("sqlite3") for db in settings.DATABASES.values()):
        return []
    if fts5_trigram_available():
        return []
    message = (
        "This Python's SQLite lacks FTS5 or its trigram tokenizer (SQLite >= 3.34): free-text "
        "search (q) reads the newest 20,000 events of the window per page instead of an index."
    )
    hint = "Use a Python linked to SQLite >= 3.34 with FTS5, then run `manage.py migrate`."
    return [Warning(message, hint=hint, id="events.W230")]

"""Posting firings to their webhooks, every attempt recorded, retried with backoff.

A firing is due while it is pending and its `next_attempt_at` has passed. A loop claims it by
moving `next_attempt_at` past the attempt's timeout in one conditional UPDATE (a lease: another
loop skips it, and a loop that dies mid-attempt leaves it to be retried once the lease ends),
posts the body, and records an AlertDelivery with the HTTP status and the answer's first bytes,
or the error (a webhook host at an internal address is refused before any connection is made:
events.webhooks). A 2xx answer delivers it; anything else (an error, a refusal, a redirect,
4xx, 5xx) is tried again after EDOBS_ALERT_BACKOFF_SECONDS, doubled each time up to
EDOBS_ALERT_BACKOFF_MAX_SECONDS, until EDOBS_ALERT_MAX_ATTEMPTS attempts: then it gave up.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from events import metrics
from events.models import AlertDelivery, AlertFiring
from events.stores.locking import atomic_retrying_locks
from events.webhooks import post

logger = logging.getLogger(__name__)

DUE_BATCH = 50
# edobs_alert_deliveries_total{outcome}: what the attempt left the firing as.
OUTCOMES = {AlertFiring.DELIVERED: "delivered", AlertFiring.PENDING: "retry",
            AlertFiring.GAVE_UP: "gave_up"}  # fmt: skip


def backoff(attempt: int) -> timedelta:
    """The wait after failed attempt number `attempt` (1, 2, ...): base, 2 x base, 4 x base ..."""
    base, cap = settings.EDOBS_ALERT_BACKOFF_SECONDS, settings.EDOBS_ALERT_BACKOFF_MAX_SECONDS
    return timedelta(seconds=min(cap, base * 2 ** min(attempt - 1, 30)))


def due(*, now: datetime) -> list[int]:
    rows = AlertFiring.objects.filter(state=AlertFiring.PENDING, next_attempt_at__lte=now)
    return list(rows.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:DUE_BATCH])


def next_due() -> datetime | None:
    """When the next pending firing is due (None: none is)."""
    rows = AlertFiring.objects.filter(state=AlertFiring.PENDING, next_attempt_at__isnull=False)
    return rows.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()


def claim(firing_id: int, *, now: datetime) -> AlertFiring | None:
    lease = now + timedelta(seconds=settings.EDOBS_ALERT_TIMEOUT_SECONDS + 30)
    mine = AlertFiring.objects.filter(
        pk=firing_id, state=AlertFiring.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=lease)
    return AlertFiring.objects.select_related("rule").get(pk=firing_id) if mine else None


def attempt(firing: AlertFiring) -> AlertDelivery:
    """One attempt at a claimed firing, recorded, with the firing's next step."""
    number = firing.attempts + 1
    at = timezone.now()
    answer = post(firing.rule.webhook_url, firing.body,
                  timeout=settings.EDOBS_ALERT_TIMEOUT_SECONDS)  # fmt: skip
    retry = None
    if answer.ok:
        state = AlertFiring.DELIVERED
    elif number >= settings.EDOBS_ALERT_MAX_ATTEMPTS:
        state = AlertFiring.GAVE_UP
        logger.warning("alert %s gave up after %d attempts: %s", firing, number,
                       answer.error or answer.status)  # fmt: skip
    else:
        state, retry = AlertFiring.PENDING, timezone.now() + backoff(number)
    metrics.ALERT_DELIVERIES.labels(outcome=OUTCOMES[state]).inc()
    # The webhook has answered: a lost lock race must not leave the firing to be posted again.

    def record() -> AlertDelivery:
        delivery = AlertDelivery.objects.create(
            firing=firing, attempt=number, at=at, status=answer.status,
            response=answer.response, error=answer.error, next_retry_at=retry,
        )  # fmt: skip
        AlertFiring.objects.filter(pk=firing.pk).update(
            attempts=number, state=state, next_attempt_at=retry
        )
        return delivery

    return atomic_retrying_locks(record)

"""Template context for every page: the signed-in user's failing alert webhooks (header)."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from events.read.alerts import failing_webhooks


def failing_alerts(request: HttpRequest) -> dict:
    """Lazy: one query, made only when a page's header shows it (never for the admin's)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"failing_alerts": SimpleLazyObject(lambda: failing_webhooks(user))}

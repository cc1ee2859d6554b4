"""What every page's header needs: the signed-in user's failing alert webhooks, the user's time
zone choice, the shared time window (carried by the header's links) and the quick-range picker
(partials/time_picker.html)."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from events.read import preferences
from events.read.alerts import failing_webhooks

from . import timewindow


def failing_alerts(request: HttpRequest) -> dict:
    """Lazy: one query, made only when a page's header shows it (never for the admin's)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"failing_alerts": SimpleLazyObject(lambda: failing_webhooks(user))}


def controls(request: HttpRequest) -> dict:
    carried = timewindow.carried(request.GET)
    return {
        "time_zone": preferences.time_zone(getattr(request, "user", None)),
        "window_query": f"?{carried}" if carried else "",
        "time_picker": timewindow.picker(request),
    }

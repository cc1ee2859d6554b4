"""What every page's header needs: the user's time zone choice, the shared time window (carried
by the header's links) and the quick-range picker (partials/time_picker.html)."""

from __future__ import annotations

from django.http import HttpRequest

from events.read import preferences

from . import timewindow


def controls(request: HttpRequest) -> dict:
    carried = timewindow.carried(request.GET)
    return {
        "time_zone": preferences.time_zone(getattr(request, "user", None)),
        "window_query": f"?{carried}" if carried else "",
        "time_picker": timewindow.picker(request),
    }

"""The schema pages: inferred event schemas and their drift (events.domain.drift through
selectors).

The window they compare comes from the URL like every page's (dashboards.timewindow): a quick
range (`window=15m|1h|24h|7d`, or this page's own 6h and 12h) is "now", the same length just
before it is the base; `window=custom` takes since/until (and optionally base_since/base_until)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from events.domain.drift import SAMPLE, Windows
from events.domain.envelope import MalformedEvent, WindowOutOfRange, parse_window_time
from events.read import selectors

from .timewindow import QUICK_RANGES, current

PRESETS = {
    "15m": QUICK_RANGES["15m"], "1h": QUICK_RANGES["1h"], "6h": timedelta(hours=6),
    "12h": timedelta(hours=12), "24h": QUICK_RANGES["24h"], "7d": QUICK_RANGES["7d"],
}  # fmt: skip
PRESET_CHOICES = [
    ("15m", "Last 15 min vs the 15 min before"), ("1h", "Last hour vs the hour before"),
    ("6h", "Last 6 h vs the 6 h before"), ("12h", "Last 12 h vs the 12 h before"),
    ("24h", "Last 24 h vs the 24 h before"), ("7d", "Last 7 d vs the 7 d before"),
    ("custom", "Custom…"),
]  # fmt: skip
DEFAULT = "12h"
TIMES = ("since", "until", "base_since", "base_until")


def _time(request: HttpRequest, name: str, errors: list[str]) -> datetime | None:
    """An ISO time or a `datetime-local` value (taken as UTC); None when empty or wrong."""
    value = request.GET.get(name, "").strip()
    if not value:
        return None
    try:
        return parse_window_time(value, name)
    except WindowOutOfRange as exc:  # its arithmetic would overflow: never a page
        raise BadRequest(str(exc)) from None
    except MalformedEvent:
        errors.append(f"{name}: not a date and time")
        return None


def _windows(request: HttpRequest, errors: list[str]) -> tuple[str, Windows, dict]:
    """The choice, the windows, and the custom inputs as the form shows them (UTC, normalised to
    what a `datetime-local` input holds; controls.js shows them in the user's zone)."""
    get = request.GET
    choice = get.get("window", "")
    now = datetime.now(UTC).replace(microsecond=0)
    inputs = {name: get.get(name, "") for name in TIMES}
    if choice not in PRESETS:
        choice = "custom" if current(get) == "custom" else DEFAULT
    if choice != "custom":
        return choice, Windows.make(since=now - PRESETS[choice], until=now), inputs
    values = {name: _time(request, name, errors) for name in TIMES}
    inputs.update({name: f"{at:%Y-%m-%dT%H:%M:%S}" for name, at in values.items() if at})
    until = values["until"] or now
    since = values["since"] or until - PRESETS[DEFAULT]
    try:
        windows = Windows.make(
            since=since, until=until, base_since=values["base_since"],
            base_until=values["base_until"],
        )  # fmt: skip
    except (ValueError, OverflowError) as exc:
        errors.append(str(exc))
        windows = Windows.make(since=now - PRESETS[DEFAULT], until=now)
    return choice, windows, inputs


def _query(request: HttpRequest) -> str:
    """The window part of the query, carried from the list to a type's page and back."""
    return request.GET.urlencode()


def _context(request: HttpRequest, errors: list[str], choice: str, windows: Windows,
             inputs: dict) -> dict:  # fmt: skip
    return {
        "choice": choice,
        "choices": PRESET_CHOICES,
        "windows": windows,
        "inputs": inputs,
        "errors": errors,
        "query": _query(request),
        "sample": SAMPLE,
        "nav": "schemas",
    }


def _type_url(source: str, detail_type: str) -> str:
    return reverse("schema-detail", kwargs={"source": source, "detail_type": detail_type})


@login_required
def schema_list(request: HttpRequest) -> HttpResponse:
    errors: list[str] = []
    choice, windows, inputs = _windows(request, errors)
    answer = selectors.schema_list(user=request.user, windows=windows)
    rows = [
        {
            **item,
            "url": _type_url(item["source"], item["detail_type"]),
            "linkable": "/" not in item["source"],
        }
        for item in answer["types"]
    ]
    context = _context(request, errors, choice, windows, inputs)
    context.update(
        rows=rows, sampled=answer["sampled"], comparable=answer["comparable"],
        field_cap=answer["field_cap"],
    )  # fmt: skip
    return render(request, "dashboards/schemas.html", context)


@login_required
def schema_detail(request: HttpRequest, source: str, detail_type: str) -> HttpResponse:
    errors: list[str] = []
    choice, windows, inputs = _windows(request, errors)
    answer = selectors.schema_detail(
        user=request.user, windows=windows, source=source, detail_type=detail_type
    )
    if answer is None:
        raise Http404("No events of this type in either window")
    context = _context(request, errors, choice, windows, inputs)
    context.update(
        item=answer,
        drift=[(name, answer["drift"][name]) for name in ("added", "removed", "changed")],
        base_types={field["path"]: field["types"] for field in answer["base_fields"]},
        schema_text=json.dumps(answer["schema"], indent=2, sort_keys=True)
        if answer["schema"]
        else "",
    )
    return render(request, "dashboards/schema.html", context)

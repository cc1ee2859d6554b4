"""The time window the pages share through their URL: `window=15m|1h|24h|7d` (a quick range that
ends now), or `window=custom&since=…&until=…`. One picker (partials/time_picker.html) writes it;
the header's links carry it from page to page, so a range chosen on one page holds on the next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.http import HttpRequest, QueryDict

from .params import when, with_query

QUICK = [("15m", "15 min", timedelta(minutes=15)), ("1h", "1 h", timedelta(hours=1)),
         ("24h", "24 h", timedelta(hours=24)), ("7d", "7 d", timedelta(days=7))]  # fmt: skip
QUICK_RANGES = {key: delta for key, _, delta in QUICK}


def current(get: QueryDict) -> str:
    """The window the URL asks for: a quick range's key, "custom" (since and/or until), or ""."""
    choice = get.get("window", "")
    if choice in QUICK_RANGES:
        return choice
    if get.get("since", "").strip() or get.get("until", "").strip():
        return "custom"
    return "custom" if choice == "custom" else ""


def carried(get: QueryDict) -> str:
    """The window's part of a query string, for links to the other pages ("" for none)."""
    choice = current(get)
    if choice in QUICK_RANGES:
        return f"window={choice}"
    if choice == "custom":
        query = QueryDict(mutable=True)
        query["window"] = "custom"
        for name in ("since", "until"):
            if get.get(name, "").strip():
                query[name] = get[name].strip()
        return query.urlencode()
    return ""


def picker(request: HttpRequest) -> dict:
    """The quick ranges as links to this page with that window (same filters, first page)."""
    choice = current(request.GET)
    links = [
        {"key": key, "label": label, "current": key == choice,
         "href": with_query(request, window=key, since=None, until=None, page=None)}
        for key, label, _ in QUICK
    ]  # fmt: skip
    return {"quick": links, "current": choice}


def since_until(
    request: HttpRequest, errors: list[str], now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """The window as (since, until) for the pages that filter by time (None: open-ended)."""
    get = request.GET
    choice = current(get)
    if choice in QUICK_RANGES:
        return (now or datetime.now(UTC)) - QUICK_RANGES[choice], None
    return when(get.get("since", ""), "since", errors), when(get.get("until", ""), "until", errors)

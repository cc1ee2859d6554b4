"""The events page: raw event search with filters, sorting and numbered pages.

Rows are small: a one-line summary of the detail, and the whole event loaded on demand from
GET /api/events/<id>?account= (events.js, text only), so a page of 200 events stays light.
"""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from events.domain import budgets, search
from events.domain.envelope import NormalisedEvent
from events.read import listing
from events.stores.base import Window

from .params import page_number, paging, sort_columns
from .timewindow import since_until

PAGE_SIZES = (50, 100, 200)
SUMMARY_CHARS = 160
TEXT_FILTERS = ("source", "detail_type", "fn")
EXACT_FILTERS = ("account", "job")
COLUMNS = [("time", "Time (UTC)"), ("source", "Source"), ("detail_type", "Detail-type"),
           ("fn", "Function")]  # fmt: skip
NARROW = (
    "To reach them, narrow the search: a shorter Since–Until range (or an Until before the "
    "oldest event shown), a source, detail-type, function, job or detail field."
)
HIDDEN_IN_SUMMARY = ("meta", "execution", "executionContext")


def summary(event: NormalisedEvent) -> str:
    """The detail on one line, its bookkeeping keys left out, cut at SUMMARY_CHARS."""
    shown = {k: v for k, v in event.detail.items() if k not in HIDDEN_IN_SUMMARY}
    text = json.dumps(shown, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def _wheres(request: HttpRequest, errors: list[str]) -> tuple[search.Where, ...]:
    conditions = []
    for text in request.GET.getlist("where")[: search.MAX_WHERE]:
        if not text.strip():
            continue
        try:
            conditions.append(search.parse_where(text.strip()))
        except ValueError as exc:
            errors.append(f"where {text!r}: {exc}")
    return tuple(conditions)


def _page_size(request: HttpRequest) -> int:
    try:
        size = int(request.GET.get("per", PAGE_SIZES[0]))
    except ValueError:
        return PAGE_SIZES[0]
    return size if size in PAGE_SIZES else PAGE_SIZES[0]


@login_required
def event_list(request: HttpRequest) -> HttpResponse:
    errors: list[str] = []
    get = request.GET
    values = {name: get.get(name, "").strip() for name in (*TEXT_FILTERS, *EXACT_FILTERS)}
    since, until = since_until(request, errors)
    window = Window(
        since=since, until=until,
        account=values["account"] or None, job=values["job"] or None,
        where=_wheres(request, errors),
    )  # fmt: skip
    query = listing.EventQuery(
        window=window, text=get.get("q", "").strip(), sort=get.get("sort", "-time"),
        **{name: values[name] for name in TEXT_FILTERS},
    )  # fmt: skip
    size = _page_size(request)
    offset = (page_number(request) - 1) * size
    # A filter that could not be read is not dropped: no rows rather than unfiltered ones.
    found = (
        listing.Listing([], 0, False, offset, size)
        if errors
        else listing.event_listing(user=request.user, query=query, offset=offset, limit=size)
    )
    rows = [
        {"event": event, "summary": summary(event),
         "full": budgets.event_url(event_id=event.id, account=event.account)}
        for event in found.items
    ]  # fmt: skip
    filtered = any(values.values()) or query.text or window.where or window.since or window.until
    context = {
        "rows": rows,
        "filters": values,
        "q": query.text,
        "wheres": [w for w in get.getlist("where") if w.strip()] or [""],
        "since": get.get("since", ""),
        "until": get.get("until", ""),
        "per": size,
        "page_sizes": PAGE_SIZES,
        "errors": errors,
        "filtered": filtered,
        "columns": sort_columns(
            request, COLUMNS, listing.sort_key(query.sort, listing.EVENT_SORTS, "-time")
        ),
        "paging": paging(request, found, noun="matching events", narrow=NARROW),
        "nav": "events",
    }
    return render(request, "dashboards/events.html", context)

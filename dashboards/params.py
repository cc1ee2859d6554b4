"""Reading a page's query string: times (UTC), page numbers, sort links, counts."""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.exceptions import BadRequest
from django.http import HttpRequest, QueryDict

from events.domain.envelope import MalformedEvent, WindowOutOfRange, parse_window_time
from events.read.listing import Listing


def when(value: str, name: str, errors: list[str]) -> datetime | None:
    """A datetime from an ISO string or a `datetime-local` input, which the pages label UTC."""
    if not value:
        return None
    try:
        parsed = parse_window_time(value, name)
    except WindowOutOfRange as exc:  # its arithmetic would overflow: never a page
        raise BadRequest(str(exc)) from None
    except MalformedEvent:
        errors.append(f"{name}: not a date and time")
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def page_number(request: HttpRequest) -> int:
    try:
        return max(1, min(int(request.GET.get("page", "1")), 10_000))
    except ValueError:
        return 1


def with_query(request: HttpRequest, **changes: str | None) -> str:
    """This page's query string with some parameters set (None: removed)."""
    query: QueryDict = request.GET.copy()
    for name, value in changes.items():
        query.pop(name, None)
        if value is not None:
            query[name] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


def sort_columns(request: HttpRequest, columns: list[tuple[str, str]], current: tuple[str, bool],
                 ) -> list[dict]:  # fmt: skip
    """Header links: a column's link sorts by it, descending first, then flips direction."""
    name, descending = current
    out = []
    for key, label in columns:
        active = key == name
        target = key if active and descending else f"-{key}"
        aria = ("descending" if descending else "ascending") if active else None
        out.append({"key": key, "label": label, "href": with_query(request, sort=target, page=None),
                    "aria": aria, "active": active, "descending": descending})  # fmt: skip
    return out


def paging(request: HttpRequest, listing: Listing, *, noun: str = "matches", narrow: str = ""
           ) -> dict:  # fmt: skip
    """The count ("1–50 of 1,234"), the previous/next links, and where paging stops: at the
    listing's cap (its newest `total` matches; `narrow` says how to reach the others) or past
    the last page."""
    page = listing.offset // listing.limit + 1
    total = f"{listing.total:,}" + ("+" if listing.more else "")
    last_page = max(1, -(-listing.total // listing.limit))
    stop, last_link = "", None
    if listing.more and not listing.has_next:
        stop = (f"Paging stops at the newest {listing.total:,} {noun}"
                + (f" (page {page} is past them)" if not listing.items else "")
                + f": older ones are not listed. {narrow}").strip()  # fmt: skip
    elif not listing.items and page > 1 and listing.total:
        stop = f"Page {page:,} is past the last page ({last_page:,})."
    if stop and not listing.items:
        last_link = with_query(request, page=str(last_page))
    return {
        "stop": stop, "last_link": last_link,
        "first": listing.first, "last": listing.last, "total": total,
        "count_text": f"{listing.first:,}–{listing.last:,} of {total}" if listing.items else "",
        "previous": with_query(request, page=str(page - 1)) if listing.has_previous else None,
        "next": with_query(request, page=str(page + 1)) if listing.has_next else None,
        "page": page, "more": listing.more,
    }  # fmt: skip

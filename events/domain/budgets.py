"""Byte budgets for what edobs sends: live frames, page rows and API items (pure functions).

Events are hostile in size as in content: one envelope may carry a megabyte of detail, and a
normalised event holds it twice (`detail`, and `raw`, the envelope as received).  Nothing
here drops an event; what does not fit is cut, flagged, and linked to its whole JSON:

- `event_trimmed`: an event whose JSON passes the budget keeps every small field, while its
  `detail` and `raw` (then any other big field: a list becomes a list of that one stub)
  become a stub `{"truncated": true, "bytes": N, "full": URL}`; the event itself gains
  `"truncated": true`, `"bytes"` (its whole size) and `"full"`.  Live frames and API lists
  use it.
- `original_item_trimmed`: the original design's flat item keeps its keys; its largest detail
  fields become that stub, largest first, until the item fits.
- `snapshot_frames`: a job's snapshot as frames under the frame budget, `{"type":
  "snapshot", "events": [...], "more": true}` ... and a last one with `"more": false`.
- `text_cut`: at most N bytes of a text (the pages' pretty JSON).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

EVENT_URL = "/api/events/{id}?{query}"
STUB_BYTES = 256  # what a stub and the flags add, with room to spare
FRAME_SLACK = 64  # the frame's own keys around its events
# Cut in this order: the two copies of the detail, then whatever else is big.
CUT_FIRST = ("detail", "raw")
CUT_LATER = ("resources", "incoming", "outgoing")


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON (how frames and API answers encode it)."""
    return len(compact(value).encode("utf-8", "surrogatepass"))


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def event_url(*, event_id: str, account: str) -> str:
    """The URL of one event's whole normalised JSON (GET /api/events/<id>?account=)."""
    return EVENT_URL.format(id=quote(event_id, safe=""), query=urlencode({"account": account}))


def stub(value: Any, *, full: str, size: int | None = None) -> dict[str, Any]:
    return {"truncated": True, "bytes": json_size(value) if size is None else size, "full": full}


def event_trimmed(data: dict[str, Any], *, limit: int, size: int | None = None) -> dict[str, Any]:
    """The normalised event `data` as is when its JSON fits in `limit` bytes; else a copy
    with its big fields stubbed and the flags `truncated`, `bytes` and `full` added."""
    size = json_size(data) if size is None else size
    if size <= limit:
        return data
    full = event_url(event_id=str(data.get("id", "")), account=str(data.get("account", "")))
    trimmed = {**data, "truncated": True, "bytes": size, "full": full}
    for key in CUT_FIRST:
        if key in trimmed:
            trimmed[key] = stub(data[key], full=full)
    for key in CUT_LATER:
        if json_size(trimmed) <= limit:
            break
        if trimmed.get(key) is not None and json_size(trimmed[key]) > STUB_BYTES:
            cut = stub(data[key], full=full)
            trimmed[key] = [cut] if isinstance(data[key], list) else cut  # the same JSON type
    return trimmed


def original_item_trimmed(
    item: dict[str, Any], *, limit: int, full: str, keep: tuple[str, ...]
) -> dict[str, Any]:
    """The original design's item with its largest fields (never those in `keep`) replaced
    by a stub, largest first, until it fits in `limit` bytes; the keys stay the same."""
    total = json_size(item)
    if total <= limit:
        return item
    sizes = {key: json_size(value) for key, value in item.items() if key not in keep}
    trimmed = dict(item)
    for key in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if total <= limit or sizes[key] <= STUB_BYTES:
            break
        trimmed[key] = stub(item[key], full=full, size=sizes[key])
        total += json_size(trimmed[key]) - sizes[key]
    return trimmed


def snapshot_frames(events: list[dict[str, Any]], *, limit: int) -> list[str]:
    """The snapshot of `events` (each already trimmed to fit) as frames of at most `limit`
    bytes, in order: every frame but the last says `"more": true`.  Never empty."""
    chunks: list[list[str]] = [[]]
    size = FRAME_SLACK
    for event in events:
        text = compact(event)
        length = len(text.encode("utf-8", "surrogatepass")) + 1
        if chunks[-1] and size + length > limit:
            chunks.append([])
            size = FRAME_SLACK
        chunks[-1].append(text)
        size += length
    last = len(chunks) - 1
    return [_snapshot_frame(chunk, more=index < last) for index, chunk in enumerate(chunks)]


def _snapshot_frame(events: list[str], *, more: bool) -> str:
    return f'{{"type":"snapshot","events":[{",".join(events)}],"more":{compact(more)}}}'


def text_cut(text: str, limit: int) -> tuple[str, bool]:
    """At most `limit` bytes of `text` (whole characters), and whether it was cut."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", "ignore"), True


def event_limit(frame_limit: int) -> int:
    """The most an event may weigh to travel in a frame of `frame_limit` bytes."""
    return frame_limit - FRAME_SLACK - 32

"""Schema drift between two time windows (DESIGN section 9, "Change over time").

`diff` is pure: the fields of an event type added, removed or changed in type in the current
window against the base window, each with the first event of the current window that showed
it: for an added field, the first that held it; for a type change, the first that held it with
a type the base never saw; for a removed field, the first that lacked it. A type seen only in
the current window is new (a new producer or consumer): all its fields are added. When the base
window holds no events at all (it lies before the retention, or traffic began since), nothing
can be compared: every type's drift is empty and the answer says `comparable: false`.

The reads (events.read.drift) are bounded: at most SAMPLE events per window, the newest (a
change deployed minutes ago shows however busy the window), handed here oldest first (so the
first event of a change is exact within what was read), filtered to the accounts given. An
answer says `sampled` when a window held more. So are the answers: at most
events.domain.schemas.MAX_FIELDS fields per type and window (the first seen; `fields_more` and
`base_fields_more` count the rest, whose drift is not followed) and as many properties in the
JSON Schema (`schema_more`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.domain.schemas import MAX_FIELDS, EventRef, TypeStats, capped_schema

SAMPLE = 2_000  # events read per window: two full windows take ~0.5 s on SQLite (5 000: ~1.2 s)


@dataclass(frozen=True)
class Windows:
    """The current window [since, until) and the base window it is compared with."""

    since: datetime
    until: datetime
    base_since: datetime
    base_until: datetime

    @classmethod
    def make(
        cls, *, since: datetime, until: datetime, base_since: datetime | None = None,
        base_until: datetime | None = None,
    ) -> Windows:  # fmt: skip
        """Default base: the window of equal length just before. ValueError for an empty one."""
        if until <= since:
            raise ValueError("until must be after since")
        base_until = base_until or (since if base_since is None else None)
        base_since = base_since or (base_until or since) - (until - since)
        base_until = base_until or base_since + (until - since)
        if base_until <= base_since:
            raise ValueError("base_until must be after base_since")
        return cls(since, until, base_since, base_until)


@dataclass(frozen=True)
class Sample:
    types: dict[tuple[str, str], TypeStats]
    sampled: bool


def _ref(ref: EventRef | None) -> dict[str, Any] | None:
    return ref.as_dict() if ref is not None else None


def diff(base: TypeStats | None, current: TypeStats | None) -> dict[str, list[dict[str, Any]]]:
    """{"added", "removed", "changed"}: each `{path, types_before, types_after, first_event}`."""
    before = base.fields if base is not None else {}
    after = current.fields if current is not None else {}
    added = [
        _change(path, None, stats, stats.first_seen) for path, stats in after.items()
        if path not in before
    ]  # fmt: skip
    removed = [
        _change(path, stats, None, current.first_event if current else None)
        for path, stats in before.items() if path not in after
    ]  # fmt: skip
    changed = []
    for path in sorted(set(before) & set(after)):
        old, new = before[path], after[path]
        if set(old.types) != set(new.types):
            changed.append(_change(path, old, new, _first_new_type(old, new)))
    return {"added": sorted(added, key=_by_path), "removed": sorted(removed, key=_by_path),
            "changed": changed}  # fmt: skip


def _by_path(change: dict[str, Any]) -> str:
    return change["path"]


def _first_new_type(old, new) -> EventRef | None:
    """The first event that held the field with a type the base never saw (if only a type
    went away: the first event that held the field)."""
    fresh = [ref for kind, ref in new.first_of_type.items() if kind not in old.types]
    return min(fresh, key=lambda ref: ref.order) if fresh else new.first_seen


def _change(path: str, old, new, first: EventRef | None) -> dict[str, Any]:
    return {
        "path": path,
        "types_before": sorted(old.types) if old is not None else [],
        "types_after": sorted(new.types) if new is not None else [],
        "first_event": _ref(first),
    }


def drift_total(changes: dict[str, list]) -> int:
    return sum(len(items) for items in changes.values())


NO_DRIFT: dict[str, list[dict[str, Any]]] = {"added": [], "removed": [], "changed": []}


def type_summary(
    current: TypeStats | None, base: TypeStats | None, *, comparable: bool = True
) -> dict[str, Any]:
    """One item of the schema list: counts, fields and how many of them drifted."""
    some = current or base
    assert some is not None
    return {
        "source": some.source,
        "detail_type": some.detail_type,
        "events": current.events if current else 0,
        "base_events": base.events if base else 0,
        "new": comparable and base is None,
        "first_event": _ref(current.first_event) if current else None,
        "fields": current.field_list() if current else [],
        "fields_more": current.fields_more if current else 0,
        "drift": drift_total(diff(base, current)) if comparable else 0,
    }


def schema_list_of(now: Sample, then: Sample) -> dict[str, Any]:
    """Every event type seen in either window's sample, busiest first."""
    keys = sorted(set(now.types) | set(then.types))
    comparable = bool(then.types)
    items = [
        type_summary(now.types.get(key), then.types.get(key), comparable=comparable) for key in keys
    ]
    items.sort(key=lambda item: (-item["events"], item["source"], item["detail_type"]))
    return {"types": items, "sampled": now.sampled or then.sampled, "comparable": comparable,
            "field_cap": MAX_FIELDS}  # fmt: skip


def schema_detail_of(
    now: Sample, then: Sample, *, source: str, detail_type: str,
    base_has_events: Callable[[], bool],
) -> dict[str, Any] | None:  # fmt: skip
    """One type's fields, drift and inferred JSON Schema; None when neither sample has it.
    `base_has_events` is asked only when the base sample lacks the type (it reads a store)."""
    current, base = now.types.get((source, detail_type)), then.types.get((source, detail_type))
    if current is None and base is None:
        return None
    comparable = base is not None or base_has_events()
    changes = diff(base, current) if comparable else NO_DRIFT
    schema, schema_more = capped_schema(current.json_schema() if current else None)
    return {
        **type_summary(current, base, comparable=comparable),
        "comparable": comparable,
        "drift": changes,
        "drift_count": drift_total(changes),
        "base_fields": base.field_list() if base else [],
        "base_fields_more": base.fields_more if base else 0,
        "schema": schema,
        "schema_more": schema_more,
        "field_cap": MAX_FIELDS,
        "sampled": now.sampled or then.sampled,
    }


def drift_counts_of(listed: dict[str, Any]) -> dict[str, int]:
    """{"event:<source>/<detail-type>": drifted fields} of a schema list's types seen in its
    current window, the architecture's node ids (events.domain.architecture); no drift, left out."""
    return {
        f"event:{item['source']}/{item['detail_type']}": item["drift"]
        for item in listed["types"] if item["drift"] and item["events"]
    }  # fmt: skip

"""Inferred schemas of event details, per source and detail-type (DESIGN section 9). Pure.

Each event's `detail` is walked into field paths: `orderId`, `customer.name`, `items[]` (the
array's elements) and `items[].sku`. A path's types are JSON's (`string`, `number`, `boolean`,
`null`, `object`, `array`; integers are numbers, as in JSON), its presence the share of the
type's events that hold it at least once. Every path and every type of a path remembers the
first event (in the order given: oldest first) that showed it, and every path the first event
that lacked it, so that drift (events.domain.drift) can name the event where a change began.

The JSON Schema document of a type is inferred by genson's SchemaBuilder (merged event by event,
`required` = present in every event), only when asked: it costs more than the walk.

Hostile details are bounded: MAX_DEPTH levels, the first ARRAY_ITEMS elements of an array and at
most MAX_FIELDS paths per type are kept (the first ones seen); the paths past the cap are only
counted, so that answers can say "N more" (`fields_more`). An inferred JSON Schema keeps at most
MAX_FIELDS properties over all its levels (`capped_schema`): one event of 50,000 keys would
otherwise make a page of megabytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from genson import SchemaBuilder

from events.domain.envelope import NormalisedEvent, iso_ms

MAX_DEPTH = 8
ARRAY_ITEMS = 20
MAX_FIELDS = 500


@dataclass(frozen=True)
class EventRef:
    """Where a change was first seen: an event, its job and when (`order`: its place in the
    events read, to tell which of two came first)."""

    id: str
    job: str | None
    account: str
    at: str | None
    order: int

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "job": self.job, "account": self.account, "at": self.at}


@dataclass
class FieldStats:
    count: int = 0
    types: Counter = field(default_factory=Counter)
    first_seen: EventRef | None = None
    first_of_type: dict[str, EventRef] = field(default_factory=dict)
    first_missing: EventRef | None = None

    def presence(self, events: int) -> float:
        return round(self.count / events, 4) if events else 0.0


@dataclass
class TypeStats:
    source: str
    detail_type: str
    events: int = 0
    fields: dict[str, FieldStats] = field(default_factory=dict)
    first_event: EventRef | None = None
    builder: SchemaBuilder | None = None
    over_cap: set[str] = field(default_factory=set)  # paths seen past MAX_FIELDS: counted only

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.detail_type)

    def add(self, detail: dict[str, Any], ref: EventRef) -> None:
        seen = detail_fields(detail)
        if self.first_event is None:
            self.first_event = ref
        for path, stats in self.fields.items():
            if path not in seen and stats.first_missing is None:
                stats.first_missing = ref
        for path, types in seen.items():
            self._add_field(path, types, ref)
        self.events += 1
        if self.builder is not None:
            self.builder.add_object(detail)

    def _add_field(self, path: str, types: set[str], ref: EventRef) -> None:
        stats = self.fields.get(path)
        if stats is None:
            if len(self.fields) >= MAX_FIELDS:
                self.over_cap.add(path)
                return
            # A path new after the first event was missing from the first one.
            stats = self.fields[path] = FieldStats(
                first_seen=ref, first_missing=self.first_event if self.events else None
            )
        stats.count += 1
        for kind in types:
            stats.types[kind] += 1
            stats.first_of_type.setdefault(kind, ref)

    def field_list(self) -> list[dict[str, Any]]:
        return [
            {
                "path": path,
                "types": sorted(stats.types),
                "presence": stats.presence(self.events),
                "count": stats.count,
            }
            for path, stats in sorted(self.fields.items())
        ]

    @property
    def fields_more(self) -> int:
        """Distinct paths seen but left out of `fields` by the MAX_FIELDS cap."""
        return len(self.over_cap)

    def json_schema(self) -> dict[str, Any] | None:
        return self.builder.to_schema() if self.builder is not None else None


def capped_schema(schema: dict[str, Any] | None, cap: int = MAX_FIELDS) -> tuple[Any, int]:
    """(the JSON Schema keeping its first `cap` properties over all levels: a level's
    own first, then its kept properties' inner ones in order; how many it left out). A schema
    that lost some says so in `$comment`."""
    if schema is None:
        return None, 0
    kept = _SchemaCut(cap)
    out = kept.cut(schema)
    if kept.dropped:
        out["$comment"] = f"{kept.dropped} more properties left out (at most {cap} are listed)"
    return out, kept.dropped


class _SchemaCut:
    """The working state of capped_schema: the property budget left and what it dropped."""

    def __init__(self, cap: int) -> None:
        self.left, self.dropped = cap, 0

    def cut(self, schema: Any) -> Any:
        if not isinstance(schema, dict):
            return schema
        out = dict(schema)
        props = schema.get("properties")
        if isinstance(props, dict):
            names = list(props)[: max(self.left, 0)]
            self.left -= len(names)
            self.dropped += len(props) - len(names)
            out["properties"] = {name: props[name] for name in names}
            if isinstance(schema.get("required"), list):
                out["required"] = [name for name in schema["required"] if name in out["properties"]]
            out["properties"] = {name: self.cut(value) for name, value in out["properties"].items()}
        for key in ("items", "anyOf"):
            if isinstance(schema.get(key), dict):
                out[key] = self.cut(schema[key])
            elif isinstance(schema.get(key), list):
                out[key] = [self.cut(item) for item in schema[key]]
        return out


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "string"


def detail_fields(detail: Any) -> dict[str, set[str]]:
    """{path: JSON types seen at it} of one detail."""
    found: dict[str, set[str]] = {}
    _walk(detail, "", 0, found)
    return found


def _walk(value: Any, path: str, depth: int, found: dict[str, set[str]]) -> None:
    kind = json_type(value)
    if path:
        found.setdefault(path, set()).add(kind)
    if depth >= MAX_DEPTH:
        return
    if kind == "object":
        for key, item in value.items():
            _walk(item, f"{path}.{key}" if path else str(key), depth + 1, found)
    elif kind == "array":
        for item in value[:ARRAY_ITEMS]:
            _walk(item, f"{path}[]", depth + 1, found)


def event_ref(event: NormalisedEvent, order: int) -> EventRef:
    return EventRef(
        id=event.id, job=event.job, account=event.account, at=iso_ms(event.at), order=order
    )


def infer_types(
    events: Iterable[NormalisedEvent], *, with_schema: bool = False
) -> dict[tuple[str, str], TypeStats]:
    """{(source, detail-type): its inferred schema} of events given oldest first."""
    types: dict[tuple[str, str], TypeStats] = {}
    for order, event in enumerate(events):
        key = (event.source, event.detail_type)
        stats = types.get(key)
        if stats is None:
            builder = SchemaBuilder() if with_schema else None
            stats = types[key] = TypeStats(event.source, event.detail_type, builder=builder)
        detail = event.detail if isinstance(event.detail, dict) else {}
        stats.add(detail, event_ref(event, order))
    return types

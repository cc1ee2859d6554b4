"""Inferred schemas (events.domain.schemas) on the samples, and drift (events.domain.drift) on
generated traffic where a field is added, one removed, one changes type and a new producer
appears."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from events.domain.drift import Windows, diff
from events.domain.envelope import parse_envelope
from events.domain.schemas import MAX_FIELDS, capped_schema, detail_fields, infer_types
from events.read import drift as drift_module
from events.read.drift import drift_counts, schema_detail, schema_list

from .conftest import ingest_bodies
from .drift_traffic import ACCOUNT, drift_traffic
from .store_fixtures import pg_alias_fixture, store_fixture  # noqa: F401  (fixtures)
from .test_architecture import events_of


def fields_of(stats) -> dict[str, dict]:
    return {field["path"]: field for field in stats.field_list()}


def test_it_infers_paths_types_and_presence_from_the_samples():
    types = infer_types(events_of("part1_jobs.jsonl"))

    done = types[("project", "done")]
    fields = fields_of(done)
    assert done.events == 18
    # getMultipleFn's `done` carries `names` (3 of 18), the others `profile` (13 of 18).
    assert fields["names"]["types"] == ["array"] and fields["names[]"]["types"] == ["string"]
    assert fields["names"]["count"] == 5 and fields["names"]["presence"] == round(5 / 18, 4)
    assert fields["profile"]["presence"] == round(13 / 18, 4)
    assert fields["meta.incoming.id"] == {
        "path": "meta.incoming.id", "types": ["string"], "presence": 1.0, "count": 18,
    }  # fmt: skip
    status = fields_of(types[("aws.states", "Step Functions Execution Status Change")])
    assert status["stopDate"]["types"] == ["null", "number"]
    assert status["error"]["presence"] == round(1 / 6, 4)
    assert types[("project", "start")].field_list() == []


def test_its_json_schema_comes_from_genson_with_required_fields():
    types = infer_types(events_of("part1_jobs.jsonl"), with_schema=True)

    schema = types[("project", "getUserProfile")].json_schema()

    assert schema["type"] == "object"
    assert set(schema["required"]) == {"TaskToken", "execution", "name", "stateName"}
    assert schema["properties"]["name"] == {"type": "string"}


def test_the_samples_of_the_original_meta_drift_by_what_they_lack():
    """part1_jobs_original_meta.jsonl is the original design's `meta`, without `incoming.id`,
    and none of its jobs failed (no `error`, `cause`)."""
    base = infer_types(events_of("part1_jobs.jsonl"))
    events = events_of("part1_jobs_original_meta.jsonl")
    now = infer_types(events)

    drifted = {key: diff(base[key], now[key]) for key in now if key in base}

    expected = {
        ("project", t): ["meta.incoming.id"] for t in ("done", "getUserCookies", "async.done")
    }
    expected[("aws.states", "Step Functions Execution Status Change")] = ["cause", "error"]
    for key, changes in drifted.items():
        assert [c["path"] for c in changes["removed"]] == expected.get(key, []), key
        assert not changes["added"] and not changes["changed"], key
    first_done = next(e for e in events if e.detail_type == "done")
    assert drifted[("project", "done")]["removed"][0]["first_event"]["id"] == first_done.id


def test_it_bounds_a_hostile_detail():
    wide = {f"k{i}": i for i in range(MAX_FIELDS + 50)}
    deep: dict = {}
    node = deep
    for _ in range(50):
        node["x"] = {}
        node = node["x"]

    assert max(len(path.split(".")) for path in detail_fields(deep)) <= 9
    assert len(detail_fields({"a": list(range(10_000))})) == 2
    envelope = {
        "version": "0", "id": "e1", "detail-type": "t", "source": "s", "account": ACCOUNT,
        "time": "2026-11-20T09:00:00Z", "region": "us-east-1", "resources": [], "detail": wide,
    }  # fmt: skip
    event = parse_envelope(envelope, default_account=ACCOUNT)
    assert len(infer_types([event])[("s", "t")].fields) == MAX_FIELDS


def test_it_finds_each_change_and_the_event_where_it_began():
    traffic = drift_traffic()
    base = infer_types(parse_envelope(e, default_account=ACCOUNT) for e in traffic.base)
    now = infer_types(parse_envelope(e, default_account=ACCOUNT) for e in traffic.current)
    key = ("orders", "OrderPlaced")

    changes = diff(base[key], now[key])

    assert [c["path"] for c in changes["added"]] == ["coupon"]
    assert changes["added"][0]["first_event"]["id"] == traffic.first["added"]["id"]
    assert changes["added"][0]["types_before"] == [] and changes["added"][0]["types_after"] == [
        "string"
    ]
    assert [c["path"] for c in changes["removed"]] == ["legacyCode"]
    assert changes["removed"][0]["first_event"]["id"] == traffic.first["removed"]["id"]
    assert changes["removed"][0]["types_after"] == []
    [changed] = changes["changed"]
    assert changed["path"] == "orderId"
    assert (changed["types_before"], changed["types_after"]) == (["number"], ["number", "string"])
    assert changed["first_event"]["id"] == traffic.first["changed"]["id"]
    assert changed["first_event"]["job"].endswith(
        traffic.first["changed"]["detail"]["execution"].rsplit(":", 1)[1]
    )
    new = diff(None, now[("shipping", "OrderShipped")])
    assert {c["path"] for c in new["added"]} == {"orderId", "carrier", "execution"}
    assert {c["first_event"]["id"] for c in new["added"]} == {traffic.first["new"]["id"]}


def test_the_same_window_has_no_drift():
    events = events_of("part1_jobs.jsonl")
    types = infer_types(events)

    assert all(not any(diff(stats, stats).values()) for stats in types.values())


@pytest.mark.django_db
def test_it_reads_the_windows_from_the_store_and_counts_drift_per_node():
    traffic = drift_traffic()
    ingest_bodies([json.dumps(e) for e in traffic.envelopes])
    windows = Windows.make(since=traffic.since, until=traffic.until)

    listed = {(i["source"], i["detail_type"]): i for i in schema_list(None, windows)["types"]}
    detail = schema_detail(None, windows, source="orders", detail_type="OrderPlaced")
    counts = drift_counts(None, traffic.since, traffic.until)

    assert listed[("orders", "OrderPlaced")]["drift"] == 3
    assert listed[("orders", "OrderPlaced")]["events"] == 20
    assert listed[("orders", "OrderPlaced")]["base_events"] == 20
    assert listed[("shipping", "OrderShipped")]["new"] is True
    assert listed[("shipping", "OrderShipped")]["first_event"]["id"] == traffic.first["new"]["id"]
    assert detail["drift"]["changed"][0]["first_event"]["id"] == traffic.first["changed"]["id"]
    assert detail["schema"]["properties"]["orderId"]["type"] == ["integer", "string"]
    assert counts == {"event:orders/OrderPlaced": 3, "event:shipping/OrderShipped": 3}
    # Other accounts' events are not read at all.
    assert schema_list(frozenset({"999999999999"}), windows)["types"] == []


def test_a_base_window_before_any_traffic_compares_nothing(db):
    traffic = drift_traffic()
    ingest_bodies([json.dumps(e) for e in traffic.current])
    windows = Windows.make(since=traffic.since, until=traffic.until)

    answer = schema_list(None, windows)

    assert answer["comparable"] is False
    assert all(item["drift"] == 0 and not item["new"] for item in answer["types"])


def test_windows_default_to_the_equal_length_just_before():
    since, until = datetime(2026, 11, 20, 10, tzinfo=UTC), datetime(2026, 11, 20, 11, tzinfo=UTC)

    windows = Windows.make(since=since, until=until)
    shifted = Windows.make(since=since, until=until, base_since=datetime(2026, 11, 19, tzinfo=UTC))

    assert (windows.base_since, windows.base_until) == (
        datetime(2026, 11, 20, 9, tzinfo=UTC), since,
    )  # fmt: skip
    assert shifted.base_until == datetime(2026, 11, 19, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        Windows.make(since=until, until=since)
    with pytest.raises(ValueError):
        Windows.make(since=since, until=until, base_since=until, base_until=since)


def test_every_store_gives_the_same_drift(store, monkeypatch):
    """The schema reads go through the store protocol: SQLite, PostgreSQL and DynamoDB agree
    (DynamoDB reads by time only: the type filter is checked again in events.domain.drift)."""
    traffic = drift_traffic()
    events = [parse_envelope(e, default_account=ACCOUNT) for e in traffic.envelopes]
    store.ingest(events)
    monkeypatch.setattr(drift_module, "get_store", lambda: store)
    windows = Windows.make(since=traffic.since, until=traffic.until)

    detail = schema_detail(None, windows, source="orders", detail_type="OrderPlaced")
    scoped = schema_list(frozenset({ACCOUNT}), windows)["types"]

    assert {kind: [c["path"] for c in changes] for kind, changes in detail["drift"].items()} == {
        "added": ["coupon"], "removed": ["legacyCode"], "changed": ["orderId"],
    }  # fmt: skip
    assert detail["drift"]["changed"][0]["first_event"]["id"] == traffic.first["changed"]["id"]
    assert {(t["source"], t["detail_type"], t["drift"]) for t in scoped} == {
        ("orders", "OrderPlaced", 3), ("shipping", "OrderShipped", 3),
    }  # fmt: skip
    assert schema_list(frozenset({"999999999999"}), windows)["types"] == []


def test_a_capped_json_schema_keeps_its_first_properties_over_all_levels_and_says_so():
    schema = {
        "type": "object",
        "required": ["a", "b", "c"],
        "properties": {
            "a": {"type": "object", "required": ["x", "y"],
                  "properties": {"x": {"type": "string"}, "y": {"type": "number"}}},
            "b": {"type": "array", "items": {"type": "object", "properties": {"z": {}}}},
            "c": {"type": "string"},
        },
    }  # fmt: skip

    capped, more = capped_schema(schema, cap=4)

    # the top level's three first, then a's x: y and b[]'s z are left out
    assert list(capped["properties"]) == ["a", "b", "c"]
    assert capped["properties"]["a"]["properties"] == {"x": {"type": "string"}}
    assert capped["properties"]["a"]["required"] == ["x"]
    assert capped["properties"]["b"]["items"]["properties"] == {}
    assert more == 2 and capped["$comment"].startswith("2 more properties left out")
    assert capped_schema(schema) == (schema, 0) and capped_schema(None) == (None, 0)

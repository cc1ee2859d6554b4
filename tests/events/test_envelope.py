"""Envelope validation and normalisation (events.domain.envelope): pure, no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from events.domain.envelope import MalformedEvent, parse_envelope

from .conftest import malformed_bodies, sample_lines

BUS_ACCOUNT = "999999999999"


def envelope(**changes) -> dict:
    base = {
        "version": "0",
        "id": "7f3e1c52-0000-4000-8000-000000000001",
        "detail-type": "done",
        "source": "project",
        "account": "123456789012",
        "time": "2026-11-20T09:00:10Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"meta": {"stateMachine": "M", "job": "j1", "fn": "f"}},
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not ...}


def parse(value) -> object:
    body = value if isinstance(value, str) else json.dumps(value)
    return parse_envelope(body, default_account=BUS_ACCOUNT)


def test_it_parses_every_sample_line():
    events = [parse(line) for line in sample_lines()]
    assert len(events) == 72
    assert all(event.time.tzinfo is not None for event in events)


def test_it_normalises_the_envelope():
    event = parse(envelope())
    data = event.as_dict()
    assert data["id"] == "7f3e1c52-0000-4000-8000-000000000001"
    assert data["detail_type"] == "done"
    assert data["time"] == "2026-11-20T09:00:10Z"
    assert data["job"] == "123456789012:us-east-1:M:j1"
    assert data["fn"] == "f"
    assert data["raw"] == envelope()
    assert event.time == datetime(2026, 11, 20, 9, 0, 10, tzinfo=UTC)


def test_it_attributes_an_envelope_without_account_to_the_bus_owner():
    assert parse(envelope(account=...)).account == BUS_ACCOUNT


def test_it_accepts_an_already_decoded_dict():
    assert parse_envelope(envelope(), default_account=BUS_ACCOUNT).id == envelope()["id"]


@pytest.mark.parametrize("body", malformed_bodies())
def test_it_rejects_every_malformed_sample_with_a_reason(body):
    with pytest.raises(MalformedEvent) as info:
        parse(body)
    assert str(info.value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": ...}, "id"),
        ({"source": 5}, "source"),
        ({"detail-type": ""}, "detail-type"),
        ({"time": "yesterday"}, "time"),
        ({"time": 1700000000}, "time"),
        ({"region": ...}, "region"),
        ({"detail": ...}, "detail"),
        ({"detail": []}, "detail"),
        ({"resources": "x"}, "resources"),
        ({"account": "12ab"}, "account"),
        ({"account": 123456789012}, "account"),
        ({"id": "x" * 129}, "id"),
    ],
)
def test_it_names_the_wrong_field(changes, field):
    with pytest.raises(MalformedEvent, match=f"'{field}'"):
        parse(envelope(**changes))


def test_it_rejects_hostile_nesting_without_crashing():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(MalformedEvent):
        parse(deep)
    nested: dict = {}
    cursor = nested
    for _ in range(100):
        cursor["a"] = {}
        cursor = cursor["a"]
    with pytest.raises(MalformedEvent, match="nested"):
        parse(envelope(detail=nested))


def test_it_rejects_a_body_over_the_size_limit():
    with pytest.raises(MalformedEvent, match="larger"):
        parse(envelope(detail={"blob": "x" * (1024 * 1024 + 1)}))


def test_it_reads_times_with_offsets_as_utc():
    event = parse(envelope(time="2026-11-20T10:00:10+01:00"))
    assert event.time == datetime(2026, 11, 20, 9, 0, 10, tzinfo=UTC)

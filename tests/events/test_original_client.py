"""The original project's frontend against edobs (DESIGN section 9, "Sockets and the original
client"): its reads and its live socket, replayed field by field.

Recorded from the original frontend (a React app served on the same origin, API base `/api`):
- on load, `GET /api/latest`, then for each row `item.sk.split("#")` (the job), `item.latest`
  (ms string, as a time), `item.meta.job` and `item.meta.stateMachine` (the row's labels),
  `item.source`, `item.detailType`;
- on opening a job, `GET /api/job/<execution name>`: `events[]` with `pk`, `sk` (ms string, the
  React key and the sort key), `account`, `source`, `detailType` and the detail's fields;
- live, `new WebSocket("/ws/events/?shape=original")`: each message one such flat item, with
  no wrapper, appended to the open job's list when its `pk` matches.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from events.routing import websocket_urlpatterns
from infra.instrument import event_detail

from .conftest import ACCOUNT_A, ingest_bodies, sample_lines

MACHINE = "EventDrivenMachine"
NAME = "5f0c3e4e-ms-job"
ARN = f"arn:aws:states:us-east-1:{ACCOUNT_A}:execution:{MACHINE}:{NAME}"
JOB = f"{ACCOUNT_A}:us-east-1:{MACHINE}:{NAME}"
T = datetime(2026, 11, 20, 10, 0, 5, tzinfo=UTC)
TIMEOUT = 5


def envelope(detail_type: str, detail: dict, *, source: str = "project") -> dict:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
        "account": ACCOUNT_A, "time": T.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-east-1",
        "resources": [], "detail": detail,
    }  # fmt: skip


def kit_job() -> list[dict]:
    """A job whose Lambdas use the kit: two of its events share a millisecond."""
    base = T.timestamp()
    get_users = envelope("getUsers", {"execution": ARN, "stateName": "GetMultiple"})
    clock = {"source": "project", "clock": lambda: base + 0.25}
    done = envelope(
        "done", event_detail(get_users, "done", {"names": ["Ada"]}, fn="getMultipleFn", **clock)
    )
    twin = envelope(
        "async.done", event_detail(get_users, "async.done", {}, fn="sideEffectFn", **clock)
    )
    succeeded = envelope(
        "Step Functions Execution Status Change",
        {"executionArn": ARN, "name": NAME, "status": "SUCCEEDED",
         "startDate": int(base * 1000), "stopDate": int(base * 1000) + 600},
        source="aws.states",
    )  # fmt: skip
    return [get_users, done, twin, succeeded]


def bodies() -> list[str]:
    return [*sample_lines(), *(json.dumps(e) for e in kit_job())]


def assert_original_item(item: dict, *, pk: str) -> None:
    assert item["pk"] == pk
    assert isinstance(item["sk"], str) and item["sk"].isdigit()
    assert item["account"] == ACCOUNT_A
    assert isinstance(item["source"], str) and isinstance(item["detailType"], str)


@pytest.mark.django_db
def test_the_latest_list_gives_every_field_the_original_reads(client, superuser):
    ingest_bodies(bodies())
    client.force_login(superuser)

    response = client.get("/api/latest")

    assert response.status_code == 200
    items = response.json()["latest"]
    assert len(items) == 4
    for item in items:
        assert item["pk"] == "LATEST"
        assert item["sk"].startswith("EVENT#")
        job = item["sk"].split("#", 1)[1]
        _, _, machine, name = job.split(":")
        assert item["latest"].isdigit()
        assert (item["meta"]["job"], item["meta"]["stateMachine"]) == (name, machine)
        assert item["account"] == ACCOUNT_A
        assert item["source"] and item["detailType"]
    finished = [item for item in items if item["source"] == "aws.states"]
    assert len(finished) >= 2  # finished jobs whose last event, a status change, had no meta
    assert all(
        "meta" not in json.loads(line)["detail"] for line in sample_lines() if "aws.states" in line
    )
    mine = next(item for item in items if item["sk"] == f"EVENT#{JOB}")
    assert mine["latest"] == str(int(T.timestamp() * 1000) + 600)  # the stopDate, to the ms
    assert mine["meta"] == {"job": NAME, "stateMachine": MACHINE}


@pytest.mark.django_db
def test_a_job_read_by_its_name_gives_unique_ascending_sort_keys(client, superuser):
    ingest_bodies(bodies())
    client.force_login(superuser)

    for name, count in [(NAME, 4), ("a6a3a450-6513-470e-a69e-0d37f2a74de4", 22)]:
        response = client.get(f"/api/job/{name}")
        assert response.status_code == 200
        items = response.json()["events"]
        assert len(items) == count
        for item in items:
            assert_original_item(item, pk=items[0]["pk"])
        keys = [int(item["sk"]) for item in items]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)

    items = client.get(f"/api/job/{NAME}").json()["events"]
    ms = int(T.timestamp() * 1000)
    assert [(item["detailType"], item["sk"]) for item in items] == [
        ("getUsers", str(ms)),
        ("done", str(ms + 250)),
        ("async.done", str(ms + 251)),  # the same millisecond as `done`: the next free one
        ("Step Functions Execution Status Change", str(ms + 600)),
    ]
    assert items[1]["names"] == ["Ada"] and items[1]["meta"]["fn"] == "getMultipleFn"
    assert items[3]["status"] == "SUCCEEDED"


@pytest.mark.django_db(transaction=True)
async def test_the_socket_sends_flat_items_with_no_wrapper(memory_layer, superuser):
    original = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/events/?shape=original")
    wrapped = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/events/")
    for communicator in (original, wrapped):
        communicator.scope["user"] = superuser
        assert (await communicator.connect(timeout=TIMEOUT))[0]
    try:
        sent = kit_job()
        await sync_to_async(ingest_bodies)([json.dumps(e) for e in sent])

        items = [await original.receive_json_from(timeout=TIMEOUT) for _ in sent]
        frames = [await wrapped.receive_json_from(timeout=TIMEOUT) for _ in sent]
    finally:
        await original.disconnect()
        await wrapped.disconnect()

    # Live keys are unique within the job and ascending as sent (`done` and `async.done` share
    # a millisecond), never before the event's own clock (events.live.broadcast.live_sort_keys).
    keys = [int(item["sk"]) for item in items]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    ms = int(T.timestamp() * 1000)
    assert all(key >= at for key, at in zip(keys, [ms, ms + 250, ms + 250, ms + 600], strict=True))
    for item, envelope_ in zip(items, sent, strict=True):
        assert "type" not in item and "event" not in item
        assert_original_item(item, pk=f"EVENT#{JOB}")
        assert (item["source"], item["detailType"]) == (
            envelope_["source"],
            envelope_["detail-type"],
        )
        assert {k: v for k, v in item.items() if k in envelope_["detail"]} == envelope_["detail"]
    assert [frame["type"] for frame in frames] == ["event"] * 4
    assert frames[1]["event"]["at_source"] == "producer"

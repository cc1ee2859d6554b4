"""The job socket for a Distributed Map child whose Map Run label holds URL-significant and
non-ASCII characters: the page opens it with the job id encoded whole (job.js)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from events.routing import websocket_urlpatterns
from tests.events import shapes_traffic as traffic
from tests.events.conftest import ingest_bodies

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("memory_layer")]
TIMEOUT = 5  # an upper bound for a message to arrive, not a measurement


async def test_it_streams_a_map_childs_events_on_its_encoded_job_socket(superuser):
    machine, name = "MapFlow/run label?#%é", "child-1"
    arn = traffic.execution_arn(machine, name)
    running, done = traffic.run(arn, start=traffic.now(), seconds=3)
    await sync_to_async(ingest_bodies)(traffic.bodies([running]))
    job = traffic.job_id(machine, name)
    path = f"/ws/jobs/{quote(job, safe='')}/"  # encodeURIComponent's answer
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = superuser
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    try:
        snapshot = await communicator.receive_json_from(timeout=TIMEOUT)
        assert [event["id"] for event in snapshot["events"]] == [running["id"]]
        assert snapshot["events"][0]["job"] == job
        await sync_to_async(ingest_bodies)(traffic.bodies([done]))
        message = await communicator.receive_json_from(timeout=TIMEOUT)
        assert (message["type"], message["event"]["id"]) == ("event", done["id"])
    finally:
        await communicator.disconnect()

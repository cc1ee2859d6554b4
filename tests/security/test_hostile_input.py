"""Hostile bodies are quarantined with a reason, cheaply, and never stop ingest."""

import json
import tracemalloc

import pytest

from events.domain.envelope import MAX_BODY_BYTES, MAX_DEPTH
from events.ingest.services import InboundMessage, event_ingest
from events.models import Event, RejectedMessage

VALID = {
    "version": "0", "id": "5f0e7c1e-0000-4000-8000-00000000abcd", "detail-type": "start",
    "source": "project", "account": "123456789012", "time": "2026-11-20T09:00:00Z",
    "region": "us-east-1", "resources": [], "detail": {},
}  # fmt: skip


def _nested(depth: int) -> dict:
    envelope = dict(VALID, id="deep")
    envelope["detail"] = json.loads("[" * depth + "]" * depth) if depth < 500 else {}
    return envelope


HOSTILE = {
    "oversized": json.dumps(dict(VALID, id="big", detail={"blob": "x" * (MAX_BODY_BYTES + 1)})),
    "nested far beyond the parser's stack": "[" * 200_000 + "]" * 200_000,
    "nested just past the limit": json.dumps(_nested(MAX_DEPTH + 5)),
    "overlong id": json.dumps(dict(VALID, id="i" * 500)),
    "account not digits": json.dumps(dict(VALID, id="acct", account="<script>")),
}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_it_quarantines_hostile_bodies_cheaply(kind):
    tracemalloc.start()
    report = event_ingest(
        messages=[InboundMessage(body=HOSTILE[kind], message_id="m1"),
                  InboundMessage(body=json.dumps(VALID), message_id="m2")]
    )  # fmt: skip
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert report.outcomes == ["quarantined", "stored"]
    assert RejectedMessage.objects.get(message_id="m1").reason
    assert Event.objects.filter(event_id=VALID["id"]).exists()
    assert peak < 64 * 1024 * 1024, f"{kind}: {peak / 1e6:.0f} MB"

"""How a replayed event names its original: `detail.meta.replayOf` (events.replay.send writes it).

Pure and apart from events.replay.send (which needs boto and the ORM), so that the API's shapes, the
alerts and the pages read the link without importing what sends replays.
"""

from __future__ import annotations

from typing import Any

from events.domain.digest import json_digest


def replay_of(detail: Any) -> dict[str, Any] | None:
    """The `meta.replayOf` of a replayed event's detail, or None."""
    meta = detail.get("meta") if isinstance(detail, dict) else None
    found = meta.get("replayOf") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else None


def replay_of_job(detail: Any) -> str | None:
    """The original job id a replayed event names, or None."""
    found = replay_of(detail)
    job = found.get("job") if found else None
    return job if isinstance(job, str) and job else None


def replayed_digest(detail: Any) -> str:
    """What a replay records of each detail it puts on the bus, and ingest compares a replayed
    event's detail with: its digest, `meta.incoming.id` left out (sending rewrites it to the
    id EventBridge gave the trigger's replay, after the record is written)."""
    meta = detail.get("meta") if isinstance(detail, dict) else None
    incoming = meta.get("incoming") if isinstance(meta, dict) else None
    if isinstance(incoming, dict) and "id" in incoming:  # copies of the path only, not the detail
        incoming = {key: value for key, value in incoming.items() if key != "id"}
        detail = {**detail, "meta": {**meta, "incoming": incoming}}
    return json_digest(detail)

"""Build and send the `detail` of an outgoing event so that edobs can place it (DESIGN 2, 8).

`event_detail` writes `execution` (the execution ARN), carries `stateName` and `TaskToken` over
from the incoming event, and adds `meta` with the incoming envelope id, so the work is paired with
its exact cause, and `meta.emittedAt` (epoch ms, the Lambda's clock), since EventBridge's `time`
has whole seconds only. It needs nothing but the incoming event and the Lambda's environment.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

RESERVED_KEYS = frozenset({"meta", "execution"})
CARRIED_KEYS = ("stateName", "TaskToken")


class PutEventFailed(RuntimeError):
    """EventBridge refused the event (`FailedEntryCount` > 0)."""


@dataclass(frozen=True)
class ExecutionRef:
    """An execution as named by its ARN: `arn:aws:states:R:A:execution:SM:NAME` (or express)."""

    arn: str
    state_machine: str
    name: str


def parse_execution_arn(arn: Any) -> ExecutionRef | None:
    """The state machine and execution name of a standard or express execution ARN, else None.

    Map-run children (`...:execution:SM/MAPRUN:CHILD`) keep `SM/MAPRUN` as their state machine.
    """
    if not isinstance(arn, str):
        return None
    parts = arn.split(":")
    if len(parts) < 8 or parts[0] != "arn" or parts[2] != "states":
        return None
    kind, machine, name = parts[5], parts[6], parts[7]
    if kind not in ("execution", "express") or not machine or not name:
        return None
    if (kind == "execution" and len(parts) != 8) or (kind == "express" and len(parts) != 9):
        return None
    return ExecutionRef(arn=arn, state_machine=machine, name=name)


def find_execution_arn(event: dict[str, Any]) -> str | None:
    """The execution ARN an event carries, looked up in this order.

    `detail.execution` (kit events and Step Functions' own putEvents), `detail.executionContext.id`
    (the injected Pass state) or the whole `$$` under `executionContext.context`, then
    `detail.executionArn` (status events). A direct invocation payload (no `detail`) is searched
    the same way at its top level.
    """
    detail = _detail_of(event)
    context = detail.get("executionContext")
    context = context if isinstance(context, dict) else {}
    whole = context.get("context") if isinstance(context.get("context"), dict) else {}
    execution = whole.get("Execution") if isinstance(whole.get("Execution"), dict) else {}
    for candidate in (
        detail.get("execution"),
        context.get("id"),
        execution.get("Id"),
        detail.get("executionArn"),
    ):
        if parse_execution_arn(candidate):
            return candidate
    return None


def find_execution_name(event: dict[str, Any]) -> str | None:
    """The execution name (the trace token of logs): from the ARN, else context name or meta.job."""
    ref = parse_execution_arn(find_execution_arn(event))
    if ref:
        return ref.name
    detail = _detail_of(event)
    context = detail.get("executionContext")
    meta = detail.get("meta")
    for candidate in (
        context.get("name") if isinstance(context, dict) else None,
        meta.get("job") if isinstance(meta, dict) else None,
    ):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def event_detail(
    incoming_event: dict[str, Any],
    detail_type: str,
    payload: dict[str, Any],
    *,
    source: str | None = None,
    fn: str | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The `detail` of the event a function emits after handling `incoming_event`.

    Payload fields come first; `meta` and `execution` are always the kit's (a payload value for
    them is dropped with a warning); `stateName` and `TaskToken` are carried over from the
    incoming detail unless the payload sets them. `meta.emittedAt` is `clock()` (epoch seconds,
    `time.time` unless given) in whole milliseconds.
    """
    incoming = _detail_of(incoming_event)
    detail = {key: value for key, value in payload.items() if key not in RESERVED_KEYS}
    _warn_reserved(payload)
    arn = find_execution_arn(incoming_event)
    if arn:
        detail["execution"] = arn
    for key in CARRIED_KEYS:
        if key in incoming and key not in detail:
            detail[key] = incoming[key]
    detail["meta"] = _meta(incoming_event, detail_type, source=source, fn=fn)
    detail["meta"]["emittedAt"] = round(clock() * 1000)
    return detail


def put_event(
    incoming_event: dict[str, Any],
    detail_type: str,
    payload: dict[str, Any],
    *,
    client: Any = None,
    bus_name: str | None = None,
    source: str | None = None,
    fn: str | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """Send the event built by `event_detail` with `events.put_events`; returns its event id."""
    detail = event_detail(incoming_event, detail_type, payload, source=source, fn=fn, clock=clock)
    entry = {
        "Source": detail["meta"]["outgoing"]["source"],
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "EventBusName": bus_name or os.environ.get("EDOBS_BUS_NAME") or "default",
    }
    response = (client or events_client()).put_events(Entries=[entry])
    return _event_id(response, detail_type)


def events_client(region_name: str | None = None) -> Any:
    """A boto3 EventBridge client; honours `AWS_ENDPOINT_URL` (an emulator) when it is set."""
    import boto3  # the kit's only dependency, imported late so the module loads without it

    return boto3.client(
        "events",
        region_name=region_name,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
    )


def resolve_source(incoming_event: dict[str, Any], source: str | None = None) -> str:
    """`source`, else `EDOBS_EVENT_SOURCE`, else the incoming event's (never an `aws.` one)."""
    found = source or os.environ.get("EDOBS_EVENT_SOURCE") or incoming_event.get("source")
    if not isinstance(found, str) or not found:
        raise ValueError("no event source: pass source= or set EDOBS_EVENT_SOURCE")
    if found.startswith("aws."):
        raise ValueError(
            f"custom events cannot use the source {found!r}: pass source= or set EDOBS_EVENT_SOURCE"
        )
    return found


def resolve_fn(fn: str | None = None) -> str:
    """`fn`, else the Lambda's own name from `AWS_LAMBDA_FUNCTION_NAME`."""
    found = fn or os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if not found:
        raise ValueError("no function name: pass fn= or set AWS_LAMBDA_FUNCTION_NAME")
    return found


def _meta(
    incoming_event: dict[str, Any], detail_type: str, *, source: str | None, fn: str | None
) -> dict[str, Any]:
    ref = parse_execution_arn(find_execution_arn(incoming_event))
    return {
        "incoming": {
            "account": incoming_event.get("account"),
            "source": incoming_event.get("source"),
            "detailType": incoming_event.get("detail-type"),
            "id": incoming_event.get("id"),
        },
        "outgoing": {"source": resolve_source(incoming_event, source), "detailType": detail_type},
        "fn": resolve_fn(fn),
        "stateMachine": ref.state_machine if ref else os.environ.get("EDOBS_STATE_MACHINE"),
        "job": ref.name if ref else find_execution_name(incoming_event),
    }


def _detail_of(event: dict[str, Any]) -> dict[str, Any]:
    """The envelope's `detail`; a payload without one (direct invocation) is its own detail."""
    if not isinstance(event, dict):
        return {}
    detail = event.get("detail", event)
    return detail if isinstance(detail, dict) else {}


def _warn_reserved(payload: dict[str, Any]) -> None:
    dropped = sorted(RESERVED_KEYS & payload.keys())
    if dropped:
        logger.warning("payload keys %s are the kit's own and were dropped", dropped)


def _event_id(response: dict[str, Any], detail_type: str) -> str:
    entries = response.get("Entries") or [{}]
    if response.get("FailedEntryCount") or "EventId" not in entries[0]:
        entry = entries[0]
        raise PutEventFailed(
            f"EventBridge refused the {detail_type!r} event: "
            f"{entry.get('ErrorCode', 'unknown error')}: {entry.get('ErrorMessage', '')}".rstrip()
        )
    return entries[0]["EventId"]

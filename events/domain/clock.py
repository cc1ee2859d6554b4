"""When an event happened, to the millisecond: the best clock it carries (DESIGN section 9). Pure.

EventBridge's `time` has whole seconds, while Lambdas run for milliseconds. In this order:
1. `producer`: `detail.meta.emittedAt` (epoch ms), stamped by the instrumentation kit;
2. `stepfunctions`: a Step Functions status event's `startDate` (RUNNING) or `stopDate`
   (terminal), epoch ms;
3. `delivery`: SQS's `SentTimestamp`, when EventBridge delivered the message;
4. `envelope`: `time` itself.
Every value is producer-controlled or may be missing, so a clock is used only when it is a real
number (no bool, NaN or infinity) and plausible next to the envelope's `time`: within a day for
the event's own clocks (a replay keeps them and its `time`), and within the envelope's second
(with a little skew) for delivery, which a replay or a retried delivery makes late. Anything
else falls through to the next clock.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

PRODUCER, STEPFUNCTIONS, DELIVERY, ENVELOPE = "producer", "stepfunctions", "delivery", "envelope"
SOURCES = (PRODUCER, STEPFUNCTIONS, DELIVERY, ENVELOPE)
STATUS_SOURCE = "aws.states"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
PLAUSIBLE = timedelta(days=1)
DELIVERY_EARLY = timedelta(seconds=1)  # clock skew between EventBridge and SQS
DELIVERY_LATE = timedelta(seconds=2)  # the envelope's second, plus ordinary delivery latency


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_epoch_ms(value: Any) -> datetime | None:
    """The UTC instant of an epoch-ms number, else None (strings and bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        return EPOCH + timedelta(milliseconds=round(value))
    except OverflowError:  # past year 9999 either way
        return None


def _near(value: datetime | None, time: datetime, early: timedelta, late: timedelta) -> bool:
    return value is not None and time - early <= value <= time + late


def _producer(detail: dict[str, Any]) -> Any:
    meta = detail.get("meta")
    return meta.get("emittedAt") if isinstance(meta, dict) else None


def _stepfunctions(detail: dict[str, Any], source: str) -> Any:
    if source != STATUS_SOURCE or not isinstance(detail.get("status"), str):
        return None
    status = detail["status"].upper()
    if status == "RUNNING":
        return detail.get("startDate")
    return detail.get("stopDate") if status in TERMINAL else None


def best_clock(
    *, time: datetime, detail: dict[str, Any], source: str, delivered_at: Any = None,
    replayed: bool = False,
) -> tuple[datetime, str]:  # fmt: skip
    """(`at`, `at_source`) of an event whose envelope `time`, `detail` and `source` are given;
    `delivered_at` is SQS's SentTimestamp (epoch ms) or a datetime, when known."""
    for name, value in (
        (PRODUCER, _producer(detail)),
        (STEPFUNCTIONS, _stepfunctions(detail, source)),
    ):
        at = from_epoch_ms(value)
        if _near(at, time, PLAUSIBLE, PLAUSIBLE):
            return at, name
    if not replayed:
        at = delivered_at if isinstance(delivered_at, datetime) else from_epoch_ms(delivered_at)
        if _near(at, time, DELIVERY_EARLY, DELIVERY_LATE):
            return at.astimezone(UTC), DELIVERY
    return time, ENVELOPE


def ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime, exactly (no float rounding)."""
    return (value - EPOCH) // timedelta(milliseconds=1)

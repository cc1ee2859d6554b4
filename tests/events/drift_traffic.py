"""Generated traffic whose shape changes over time: the drift tests' ground truth.

An `orders` producer puts `OrderPlaced` events, one job each, every 30 s. In the base hour the
detail is `{orderId: number, total: number, customer: {name, tier}, legacyCode: string}`. In the
current hour, from the start, `legacyCode` is gone; from the 5th event (index 4) `coupon` is
added; from the 8th (index 7) `orderId` becomes a string; and from the 10th (index 9) a new
producer `shipping` puts `OrderShipped`. `first` names the envelope ids where each change began.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

ACCOUNT = "123456789012"
MACHINE = "OrderMachine"
PER_HOUR = 20
STEP = timedelta(seconds=30)


@dataclass
class Traffic:
    base_since: datetime
    since: datetime
    until: datetime
    base: list[dict] = field(default_factory=list)
    current: list[dict] = field(default_factory=list)
    first: dict[str, dict] = field(default_factory=dict)

    @property
    def envelopes(self) -> list[dict]:
        return self.base + self.current


def _envelope(source: str, detail_type: str, when: datetime, detail: dict, account: str) -> dict:
    name = f"order-{uuid.uuid4().hex[:10]}"
    arn = f"arn:aws:states:us-east-1:{account}:execution:{MACHINE}:{name}"
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
        "account": account, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-east-1",
        "resources": [], "detail": {"execution": arn, **detail},
    }  # fmt: skip


def _order(index: int, *, current: bool) -> dict:
    detail = {
        "orderId": 1000 + index,
        "total": 12.5 + index,
        "customer": {"name": f"customer {index}", "tier": "gold"},
    }
    if not current:
        detail["legacyCode"] = f"L{index}"
        return detail
    if index >= 4:
        detail["coupon"] = "WINTER"
    if index >= 7:
        detail["orderId"] = f"ord-{1000 + index}"
    return detail


def drift_traffic(until: datetime | None = None, account: str = ACCOUNT) -> Traffic:
    until = (until or datetime.now(UTC)).replace(microsecond=0)
    since = until - timedelta(hours=1)
    traffic = Traffic(base_since=since - timedelta(hours=1), since=since, until=until)
    for index in range(PER_HOUR):
        when = traffic.base_since + STEP * (index + 1)
        traffic.base.append(
            _envelope("orders", "OrderPlaced", when, _order(index, current=False), account)
        )
    for index in range(PER_HOUR):
        when = since + STEP * (index + 1)
        order = _envelope("orders", "OrderPlaced", when, _order(index, current=True), account)
        traffic.current.append(order)
        if index >= 9:
            shipped = {"orderId": f"ord-{1000 + index}", "carrier": "DHL"}
            traffic.current.append(
                _envelope("shipping", "OrderShipped", when + timedelta(seconds=1), shipped, account)
            )
    placed = [e for e in traffic.current if e["detail-type"] == "OrderPlaced"]
    shipped = [e for e in traffic.current if e["detail-type"] == "OrderShipped"]
    traffic.first = {
        "removed": placed[0], "added": placed[4], "changed": placed[7], "new": shipped[0]
    }  # fmt: skip
    return traffic

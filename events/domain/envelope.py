"""Parse and validate EventBridge envelopes into normalised events (pure, no I/O).

DESIGN section 2. Every string in an envelope is attacker-controlled: this module only checks
shapes and types; escaping is the job of whatever shows them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from events.domain.clock import ENVELOPE, best_clock, ms
from events.domain.correlation import Correlation, correlate

# SQS bodies are at most 256 KiB by default (1 MiB when raised); anything larger is hostile.
MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 64
REQUIRED_STRINGS = ("id", "detail-type", "source", "time", "region")
# An AWS account id: exactly 12 ASCII digits. str.isdigit() and a plain `\d` also take other
# scripts' digits ("١١١١١١١١١١١١", "²²²"), which no account has.
ACCOUNT_ID = re.compile(r"[0-9]{12}")
# Window parameters (since/until/base_since/base_until) stay well inside what datetime holds, so
# that a window's arithmetic (its previous period, buckets, epochs) never overflows.
WINDOW_MIN = datetime(1970, 1, 1, tzinfo=UTC)
WINDOW_MAX = datetime(3000, 1, 1, tzinfo=UTC)


class MalformedEvent(ValueError):
    """A permanent problem with a message body: quarantine it, never retry it."""


class WindowOutOfRange(MalformedEvent):
    """A window bound too near the calendar's ends (parse_window_time): a 400 everywhere."""


@dataclass(frozen=True)
class NormalisedEvent:
    id: str
    source: str
    detail_type: str
    account: str
    region: str
    time: datetime
    resources: list[Any]
    detail: dict[str, Any]
    raw: dict[str, Any]
    correlation: Correlation
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # When it happened, from the best clock it carries (events.domain.clock); `time` when unset.
    at: datetime | None = None
    at_source: str = ENVELOPE

    def __post_init__(self) -> None:
        if self.at is None:
            object.__setattr__(self, "at", self.time)

    @property
    def job(self) -> str | None:
        return self.correlation.job

    @property
    def fn(self) -> str | None:
        return self.correlation.fn

    @property
    def incoming(self) -> dict[str, str] | None:
        return self.correlation.incoming

    @property
    def outgoing(self) -> dict[str, str] | None:
        return self.correlation.outgoing

    @property
    def time_ms(self) -> int:
        return ms(self.time)

    @property
    def at_ms(self) -> int:
        return ms(self.at)

    def as_dict(self) -> dict[str, Any]:
        """The normalised event of DESIGN section 2, JSON-ready."""
        return {
            "id": self.id,
            "source": self.source,
            "detail_type": self.detail_type,
            "account": self.account,
            "region": self.region,
            "time": iso(self.time),
            "at": iso_ms(self.at),
            "at_source": self.at_source,
            "received_at": iso(self.received_at),
            "resources": self.resources,
            "detail": self.detail,
            "job": self.job,
            "fn": self.fn,
            "incoming": self.incoming,
            "outgoing": self.outgoing,
            "raw": self.raw,
        }


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC: whole seconds, milliseconds or microseconds, as precise as the value."""
    if value is None:
        return None
    spec = "milliseconds" if value.microsecond % 1000 == 0 and value.microsecond else "auto"
    return value.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def iso_ms(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with milliseconds, always (what `at` is written as)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any, field_name: str = "time") -> datetime:
    if not isinstance(value, str):
        raise MalformedEvent(f"'{field_name}' must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedEvent(f"'{field_name}' is not an ISO-8601 time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01 ahead of UTC, 9999-12-31 behind it: no UTC instant
        raise MalformedEvent(f"'{field_name}' is out of range: {value[:40]!r}") from None


def parse_window_time(value: Any, field_name: str) -> datetime:
    """A window bound (`since`, `until`, ...): parse_time, and between WINDOW_MIN and
    WINDOW_MAX, else WindowOutOfRange (a 400 to whoever asked, page or API)."""
    parsed = parse_time(value, field_name)
    if not WINDOW_MIN <= parsed < WINDOW_MAX:
        raise WindowOutOfRange(
            f"'{field_name}' must be from {WINDOW_MIN:%Y-%m-%d} to before {WINDOW_MAX:%Y-%m-%d}"
        )
    return parsed


def is_account(value: Any) -> bool:
    """Whether `value` is an AWS account id: a string of exactly 12 ASCII digits."""
    return isinstance(value, str) and ACCOUNT_ID.fullmatch(value) is not None


def decode_body(body: str | bytes) -> dict[str, Any]:
    """The JSON object of an SQS body, or MalformedEvent saying why not."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if not body or not body.strip():
        raise MalformedEvent("empty body")
    if len(body.encode("utf-8")) > MAX_BODY_BYTES:
        raise MalformedEvent(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        value = json.loads(body)
    except RecursionError:
        raise MalformedEvent("body nested too deeply") from None
    except ValueError as exc:
        raise MalformedEvent(f"body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedEvent(f"envelope must be a JSON object, got {type(value).__name__}")
    if _depth(value) > MAX_DEPTH:
        raise MalformedEvent(f"envelope nested deeper than {MAX_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """Nesting depth, iteratively so hostile input cannot exhaust the stack."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest


def validate_envelope(envelope: dict[str, Any]) -> None:
    for key in REQUIRED_STRINGS:
        if key not in envelope:
            raise MalformedEvent(f"missing required field '{key}'")
        if not isinstance(envelope[key], str) or not envelope[key]:
            raise MalformedEvent(f"'{key}' must be a non-empty string")
    if "detail" not in envelope:
        raise MalformedEvent("missing required field 'detail'")
    if not isinstance(envelope["detail"], dict):
        raise MalformedEvent("'detail' must be a JSON object")
    if not isinstance(envelope.get("resources", []), list):
        raise MalformedEvent("'resources' must be a list")
    account = envelope.get("account")
    if account is not None and not is_account(account):
        raise MalformedEvent("'account' must be 12 ASCII digits")
    if ":" in envelope["region"]:
        raise MalformedEvent("'region' must not contain ':'")  # it is part of the job id
    if len(envelope["id"]) > 128:
        raise MalformedEvent("'id' is longer than 128 characters")


def with_account(event: NormalisedEvent, account: str) -> NormalisedEvent:
    """The event stored under another account (a replay's original one, events.replay.send): its
    correlation, whose job id holds the account, is worked out again."""
    correlation = correlate(event.detail, source=event.source, account=account, region=event.region)
    return replace(event, account=account, correlation=correlation)


def stored_event(
    raw: dict[str, Any], *, id: str, source: str, detail_type: str, account: str, region: str,
    time: datetime, received_at: datetime, at: datetime | None = None, at_source: str | None = None,
) -> NormalisedEvent:  # fmt: skip
    """A stored envelope back as a normalised event (it was validated when it was ingested).

    `at` and `at_source` as stored; without them (a row stored before they existed) they are
    worked out again from the envelope, which only the delivery clock is missing from.
    """
    detail = raw.get("detail") if isinstance(raw.get("detail"), dict) else {}
    if at is None or at_source is None:
        at, at_source = best_clock(
            time=time, detail=detail, source=source, replayed="replay-name" in raw
        )
    return NormalisedEvent(
        id=id,
        source=source,
        detail_type=detail_type,
        account=account,
        region=region,
        time=time,
        resources=raw.get("resources") or [],
        detail=detail,
        raw=raw,
        correlation=correlate(detail, source=source, account=account, region=region),
        received_at=received_at,
        at=at,
        at_source=at_source,
    )


def parse_envelope(
    body: str | bytes | dict[str, Any],
    *,
    default_account: str,
    received_at: datetime | None = None,
    delivered_at: int | datetime | None = None,
) -> NormalisedEvent:
    """Validate one envelope (an SQS body or an already decoded dict) and normalise it.

    `delivered_at` is when SQS got the message from EventBridge (`SentTimestamp`, epoch ms).
    """
    envelope = body if isinstance(body, dict) else decode_body(body)
    validate_envelope(envelope)
    account = envelope.get("account") or default_account
    time = parse_time(envelope["time"])
    at, at_source = best_clock(
        time=time, detail=envelope["detail"], source=envelope["source"],
        delivered_at=delivered_at, replayed="replay-name" in envelope,
    )  # fmt: skip
    return NormalisedEvent(
        id=envelope["id"],
        source=envelope["source"],
        detail_type=envelope["detail-type"],
        account=account,
        region=envelope["region"],
        time=time,
        resources=envelope.get("resources", []),
        detail=envelope["detail"],
        raw=envelope,
        correlation=correlate(
            envelope["detail"],
            source=envelope["source"],
            account=account,
            region=envelope["region"],
        ),  # fmt: skip
        received_at=received_at or datetime.now(UTC),
        at=at,
        at_source=at_source,
    )

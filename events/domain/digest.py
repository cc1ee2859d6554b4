"""Digests of JSON values that say whether two are the same content, whichever way they were
written: keys sorted, and a number as the same number whatever a database or a bus gave back
(PostgreSQL's jsonb writes 1e300 as digits, and 1.0 may come back as 1)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

FLOAT_EXACT = 2**53  # integers up to this are the same number as a float or an int


def json_digest(value: Any) -> str:
    """SHA-256 of the value's canonical JSON."""
    text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _canonical(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        number = float(value) if abs(value) > FLOAT_EXACT else value
        if isinstance(number, float) and number.is_integer() and abs(number) <= FLOAT_EXACT:
            return int(number)
        return number
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value

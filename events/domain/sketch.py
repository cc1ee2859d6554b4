"""A mergeable latency sketch: DDSketch (DataDog's, `ddsketch`) with a sparse store. Pure.

A value goes to the bin `LogarithmicMapping(RELATIVE_ACCURACY).key(value)` of the ddsketch
library, whose representative value is within RELATIVE_ACCURACY of every value in the bin. A
sketch is kept as `{bin: count}` (JSON-friendly: bins as strings, `"z"` for zero, `"-<bin>"` for
a negative value), so merging two sketches is adding their counts, and a rollup row stores it
as JSON without protobuf. The quantile is the nearest-rank one of
events.domain.architecture.percentile (the value at rank ceil(q * n)), read from the bins: the same
rank as the exact computation, its value within RELATIVE_ACCURACY of the exact one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from ddsketch import LogarithmicMapping

RELATIVE_ACCURACY = 0.01
MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
ZERO = "z"

Sketch = dict[str, int]


def bin_of(value: float) -> str:
    """The bin of one value (a latency in ms)."""
    if value > MAPPING.min_possible:
        return str(MAPPING.key(value))
    if value < -MAPPING.min_possible:
        return f"-{MAPPING.key(-value)}"
    return ZERO


def sketch_of(values: Iterable[float]) -> Sketch:
    sketch: Sketch = {}
    for value in values:
        add(sketch, value)
    return sketch


def add(sketch: Sketch, value: float) -> None:
    key = bin_of(value)
    sketch[key] = sketch.get(key, 0) + 1


def merge(into: Sketch, other: Mapping[str, int]) -> Sketch:
    """Adds `other`'s counts to `into` (changed in place) and returns it."""
    for key, count in other.items():
        into[key] = into.get(key, 0) + count
    return into


def _value(key: str) -> float:
    if key == ZERO:
        return 0.0
    if key.startswith("-"):
        return -MAPPING.value(int(key[1:]))
    return MAPPING.value(int(key))


def _order(key: str) -> tuple[int, int]:
    if key == ZERO:
        return (1, 0)
    if key.startswith("-"):
        return (0, -int(key[1:]))
    return (2, int(key))


def quantiles(sketch: Mapping[str, int], shares: Iterable[float]) -> list[int | None]:
    """Nearest-rank quantiles (rounded to whole ms), None for an empty sketch."""
    ordered = sorted(
        ((key, count) for key, count in sketch.items() if count), key=lambda kc: _order(kc[0])
    )
    total = sum(count for _, count in ordered)
    answers: list[int | None] = []
    for share in shares:
        if not total:
            answers.append(None)
            continue
        rank = max(1, math.ceil(share * total))
        seen = 0
        for key, count in ordered:
            seen += count
            if seen >= rank:
                answers.append(round(_value(key)))
                break
    return answers

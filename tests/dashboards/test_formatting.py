"""Span labels show the precision their clocks had (dashboards.formatting; timeline.js too)."""

from __future__ import annotations

import pytest

from dashboards.formatting import span_duration


@pytest.mark.parametrize(
    ("duration_ms", "approx", "label"),
    [
        (350, False, "350 ms"),
        (7, False, "7 ms"),
        (1234, False, "1.2 s"),
        (2000, True, "~2 s"),
        (0, True, "< 1 s"),
        (42_000, True, "~42 s"),
        (185_000, True, "~3 min 5 s"),
    ],
)
def test_it_labels_a_span_with_the_precision_it_has(duration_ms, approx, label):
    assert span_duration({"duration_ms": duration_ms, "approx": approx}) == label

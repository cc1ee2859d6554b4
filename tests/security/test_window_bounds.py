"""Window parameters near the calendar's ends: a 400 on every endpoint and page that takes a
window, never a 500 anywhere (it was an OverflowError in events/domain/rollups.py)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.events.conftest import ingest_bodies, sample_lines

JOB = "123456789012:us-east-1:EventDrivenMachine:a6a3a450-6513-470e-a69e-0d37f2a74de4"
ARGUMENTS = {
    "job_id": JOB, "name": "EventDrivenMachine", "event_id": "9c1caaf7-5e87-46ed-88da-f4016b4013ef",
    "source": "project", "detail_type": "start", "pk": 1,
}  # fmt: skip
WINDOW_PARAMETERS = ("since", "until", "base_since", "base_until")
# What each page needs besides the bounds to read them (custom windows, a comparison).
MODES = {"window": "custom", "compare": "custom", "a": JOB, "b": JOB}
NEAR_THE_ENDS = [
    "9999-12-31T23:59:59Z", "9999-12-31T00:00:00+00:00", "9000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z", "0001-01-01T23:59:59+00:00", "1000-01-01T00:00:00Z",
]  # fmt: skip
# Every URL pattern that takes a window; the test fails when another one starts to.
WINDOWED = {
    "api-architecture", "api-architecture-diff", "api-state-machine-metrics", "api-events",
    "api-schemas", "api-schema-detail", "home", "architecture", "events", "state-machine",
    "schemas", "schema-detail", "api-failures", "failures",
}  # fmt: skip

pytestmark = pytest.mark.django_db


def named_patterns(resolver=None):
    """(name, parameter names) of every named URL pattern but the admin's."""
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            if "admin" not in str(pattern.pattern):
                yield from named_patterns(pattern)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield pattern.name, tuple(pattern.pattern.regex.groupindex)


def url_of(name: str, parameters: tuple[str, ...], value: str, which: tuple[str, ...]) -> str:
    path = reverse(name, kwargs={key: ARGUMENTS[key] for key in parameters})
    return f"{path}?{urlencode({**MODES, **dict.fromkeys(which, value)})}"


@pytest.fixture
def signed_in(client, django_user_model):
    superuser = django_user_model.objects.create_superuser("root", "root@example.com", "pw-r00t")
    ingest_bodies(sample_lines())
    client.force_login(superuser)
    return client


@pytest.mark.parametrize("value", NEAR_THE_ENDS)
def test_a_window_near_the_calendars_ends_is_a_400_on_every_url_that_takes_one(signed_in, value):
    refused, answers = set(), {}
    for name, parameters in named_patterns():
        for which in [WINDOW_PARAMETERS, *((one,) for one in WINDOW_PARAMETERS)]:
            status = signed_in.get(url_of(name, parameters, value, which)).status_code
            answers[name, which] = status
            if status == 400:
                refused.add(name)
    assert not [key for key, status in answers.items() if status >= 500], answers
    assert refused == WINDOWED, answers


def test_the_widest_window_allowed_is_never_a_500(signed_in):
    failures = {}
    for name, parameters in named_patterns():
        path = reverse(name, kwargs={key: ARGUMENTS[key] for key in parameters})
        query = {
            **MODES,
            "since": "1970-01-01T00:00:00Z",
            "until": "2999-12-31T23:59:59Z",
            "base_since": "1970-01-01T00:00:00Z",
            "base_until": "2999-12-31T23:59:59Z",
        }
        status = signed_in.get(f"{path}?{urlencode(query)}").status_code
        if status >= 500:
            failures[name] = status
    assert not failures


def test_a_window_within_the_calendar_is_still_answered(signed_in):
    for name, parameters in named_patterns():
        if name in WINDOWED:
            url = url_of(name, parameters, "2026-11-20T09:00:00Z", ("since",))
            assert signed_in.get(url).status_code == 200, url

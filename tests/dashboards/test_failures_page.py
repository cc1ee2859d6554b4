"""The failures page and the job page's "N similar failures" link, through Django's test client:
login, team scoping, the one-group view, escaping (issue 27, failure groups)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import caches

from dashboards.failures import sparkline_points
from events.domain.failures import fingerprint
from tests.events.conftest import ingest_bodies, member, outsider, superuser  # noqa: F401
from tests.events.failure_traffic import ACCOUNT_B, checkout_job, job_id, traffic

pytestmark = pytest.mark.django_db
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Failed states are cached per process (events.read.failures): each test reads its own."""
    caches["default"].clear()


@pytest.fixture
def now():
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def failing(now):
    hostile = checkout_job("x-1", start=now - timedelta(minutes=10), order=5,
                           message="Order {} " + SCRIPT)  # fmt: skip
    ingest_bodies(json.dumps(event) for event in [*traffic(now), *hostile])


def groups(response) -> list[str]:
    return [row["group"].id for row in response.context["rows"]]


def test_it_needs_a_login(client):
    response = client.get("/failures/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_member_sees_its_accounts_groups_with_the_cause_escaped(client, member, failing):  # noqa: F811
    client.force_login(member)
    response = client.get("/failures/")
    html = response.content.decode()

    assert response.status_code == 200
    rows = response.context["rows"]
    assert [(r["group"].state, r["group"].count) for r in rows] == [
        ("Charge", 3), ("Charge", 1), ("Ship", 1),
    ]  # fmt: skip
    assert SCRIPT not in html and "&lt;script&gt;alert(&lt;n&gt;)&lt;/script&gt;" in html
    assert job_id("b-1", ACCOUNT_B) not in html
    assert 'aria-current="page">Failures' in html


def test_an_outsider_sees_only_its_own(client, outsider, failing):  # noqa: F811
    client.force_login(outsider)
    rows = client.get("/failures/").context["rows"]

    assert [r["group"].sample_jobs for r in rows] == [[job_id("b-1", ACCOUNT_B)]]


def test_the_job_page_links_to_its_group_over_the_last_day(client, member, failing):  # noqa: F811
    client.force_login(member)
    response = client.get(f"/jobs/{job_id('c-1')}/")
    similar = response.context["similar"]

    assert (similar["count"], similar["capped"]) == (3, False)
    assert 'id="similar-failures"' in response.content.decode()
    query = parse_qs(urlsplit(similar["href"]).query)
    cause = "OrderNotFound: Order <n> not found in table checkout-orders"
    assert query["group"] == [fingerprint("Checkout", "Charge", "OrderNotFound", cause)]
    page = client.get(similar["href"])
    assert groups(page) == query["group"]
    assert page.context["rows"][0]["group"].count == 3


def test_an_older_failure_counts_its_group_over_the_day_up_to_it(client, member, now):  # noqa: F811
    old = [checkout_job(f"old-{n}", start=now - timedelta(hours=30 + n), order=n) for n in range(2)]
    new = checkout_job("new", start=now - timedelta(minutes=10), order=9)
    ingest_bodies(json.dumps(e) for job in [*old, new] for e in job)
    client.force_login(member)
    similar = client.get(f"/jobs/{job_id('old-0')}/").context["similar"]

    assert similar["count"] == 2  # old-0 and old-1, not the new one
    assert client.get(similar["href"]).context["rows"][0]["group"].count == 2


def test_a_job_that_did_not_fail_has_no_link(client, member, failing):  # noqa: F811
    client.force_login(member)
    response = client.get(f"/jobs/{job_id('ok-1')}/")

    assert response.context["similar"] is None
    assert 'id="similar-failures"' not in response.content.decode()


def test_an_unknown_group_shows_none_and_a_way_back(client, member, failing):  # noqa: F811
    client.force_login(member)
    response = client.get("/failures/", {"group": "0123456789abcdef", "window": "7d"})

    assert groups(response) == []
    assert 'id="failures-empty"' in response.content.decode()
    assert response.context["all_link"] == "?window=7d"


def test_sparkline_points_scale_to_the_highest_count():
    assert sparkline_points([0, 2, 1], width=100, height=22) == "0.0,21.0 50.0,1.0 100.0,11.0"
    assert sparkline_points([0, 0], width=10, height=12) == "0.0,11.0 10.0,11.0"

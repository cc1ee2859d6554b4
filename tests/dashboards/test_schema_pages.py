"""The schema pages through Django's test client: the list, a type's fields and drift, the
first-event links, window pickers, scoping, and hostile field paths escaped."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest

from events.ingest.services import InboundMessage, event_ingest
from events.models import Team, TeamAccount
from tests.events.drift_traffic import ACCOUNT, drift_traffic

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


def ingest(envelopes: list[dict]) -> None:
    event_ingest(messages=[InboundMessage(body=json.dumps(e)) for e in envelopes])


@pytest.fixture
def member(django_user_model):
    user = django_user_model.objects.create_user("alice", password="pw-alice-123")
    team = Team.objects.create(name="A")
    team.members.add(user)
    TeamAccount.objects.create(team=team, account=ACCOUNT)
    return user


@pytest.fixture
def traffic():
    traffic = drift_traffic()
    ingest(traffic.envelopes)
    return traffic


def test_the_list_shows_types_counts_and_drift_badges(client, member, traffic):
    client.force_login(member)

    response = client.get("/schemas/", {"window": "1h"})

    html = response.content.decode()
    assert response.status_code == 200
    assert 'href="/schemas/orders/OrderPlaced/?window=1h"' in html
    assert "3 drifted" in html
    assert 'drift-new">new</span>' in html
    assert 'aria-current="page">Schemas</a>' in html


def test_a_type_page_shows_fields_presence_and_drift_with_first_event_links(
    client, member, traffic
):
    client.force_login(member)

    response = client.get("/schemas/orders/OrderPlaced/", {"window": "1h"})

    html = response.content.decode()
    assert response.status_code == 200
    changed = traffic.first["changed"]
    job = f"{ACCOUNT}:us-east-1:OrderMachine:{changed['detail']['execution'].rsplit(':', 1)[1]}"
    assert f'href="/jobs/{job}/#span={changed["id"]}"' in html
    assert f'href="/jobs/{job}/#span={traffic.first["added"]["id"]}"' not in html  # other job
    assert '<code class="field-path">coupon</code>' in html
    assert '<code class="field-path">legacyCode</code>' in html
    assert 'data-percent="80"' in html  # coupon: in 16 of the 20 events (schema.js: width)
    assert "Inferred JSON Schema" in html


def test_the_shared_quick_ranges_and_a_carried_custom_window_set_the_compared_windows(
    client, member, traffic
):
    client.force_login(member)

    week = client.get("/schemas/", {"window": "7d"})
    carried = client.get(
        "/schemas/orders/OrderPlaced/",
        {
            "since": f"{traffic.since:%Y-%m-%dT%H:%M:%SZ}",
            "until": f"{traffic.until:%Y-%m-%dT%H:%M}",
        },
    )

    windows = week.context["windows"]
    assert (
        windows.until - windows.since == timedelta(days=7) and windows.base_until == windows.since
    )
    assert week.context["choice"] == "7d" and 'href="?window=24h"' in week.content.decode()
    windows = carried.context["windows"]  # a page's since/until without window=custom
    assert (windows.since, windows.until, windows.base_until) == (
        traffic.since,
        traffic.until.replace(second=0),
        traffic.since,
    )
    inputs = carried.context["inputs"]  # as a datetime-local input holds them: UTC, no zone
    assert (inputs["since"], inputs["until"]) == (
        f"{traffic.since:%Y-%m-%dT%H:%M:%S}",
        f"{traffic.until:%Y-%m-%dT%H:%M:00}",
    )


def test_a_custom_window_without_the_change_shows_no_drift(client, member, traffic):
    client.force_login(member)
    before = traffic.base_since - timedelta(hours=1)
    query = {
        "window": "custom", "since": traffic.since.isoformat(), "until": traffic.until.isoformat(),
        "base_since": traffic.since.isoformat(), "base_until": traffic.until.isoformat(),
    }  # fmt: skip

    html = client.get("/schemas/orders/OrderPlaced/", query).content.decode()
    bad = client.get("/schemas/", {"window": "custom", "since": traffic.until.isoformat(),
                                   "until": before.isoformat()})  # fmt: skip

    assert 'id="drift-count">0</span>' in html
    assert bad.status_code == 200 and "until must be after since" in bad.content.decode()


def test_an_outsider_sees_no_type_of_another_team(client, django_user_model, traffic):
    bob = django_user_model.objects.create_user("bob", password="pw-bob-123")
    client.force_login(bob)

    assert "OrderPlaced" not in client.get("/schemas/", {"window": "1h"}).content.decode()
    assert client.get("/schemas/orders/OrderPlaced/", {"window": "1h"}).status_code == 404


def test_the_pages_need_a_login(client, traffic):
    for url in ("/schemas/", "/schemas/orders/OrderPlaced/"):
        assert client.get(url).status_code == 302


def test_hostile_types_and_field_paths_are_escaped(client, member):
    envelope = drift_traffic().current[-1]
    envelope.update({"id": str(uuid.uuid4()), "source": IMG, "detail-type": SCRIPT})
    envelope["detail"] = {IMG: {SCRIPT: 1}, "ok": True}
    ingest([envelope])
    client.force_login(member)

    listing = client.get("/schemas/", {"window": "1h"}).content.decode()
    page = client.get(f"/schemas/{quote(IMG)}/{quote(SCRIPT)}/", {"window": "1h"})

    html = page.content.decode()
    assert page.status_code == 200
    for text in (listing, html):
        assert SCRIPT not in text and IMG not in text
    assert "&lt;img src=x onerror=alert(1)&gt;.&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.fixture
def wide_event(member):
    """One event of 50,000 top-level keys (about 0.7 MB, under the 1 MiB body cap) in the last
    hour, and a base window holding one narrow event of the same type."""
    from datetime import UTC, datetime

    now = datetime.now(UTC).replace(microsecond=0)
    narrow = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Wide", "source": "wide",
              "account": ACCOUNT, "time": (now - timedelta(minutes=90)).isoformat(),
              "region": "us-east-1", "resources": [], "detail": {"k00000": 0}}  # fmt: skip
    wide = {**narrow, "id": str(uuid.uuid4()), "time": (now - timedelta(minutes=5)).isoformat(),
            "detail": {f"k{n:05d}": n for n in range(50_000)}}  # fmt: skip
    ingest([narrow, wide])
    return wide


def test_a_type_of_50000_fields_gives_bounded_pages_and_answers_that_say_n_more(
    client, member, wide_event
):
    client.force_login(member)
    page = client.get("/schemas/wide/Wide/", {"window": "1h"})
    listing = client.get("/schemas/", {"window": "1h"})
    api = client.get("/api/schemas/wide/Wide")
    api_list = client.get("/api/schemas")

    assert [r.status_code for r in (page, listing, api, api_list)] == [200] * 4
    # before the cap: a 4 MB page and a 1.4 MB answer (the JSON Schema kept every key)
    assert len(page.content) < 600_000, len(page.content)  # 500 fields, 499 added: ~430 KB
    assert len(api.content) < 300_000, len(api.content)
    assert len(listing.content) < 100_000 and len(api_list.content) < 100_000
    html = page.content.decode()
    assert "and 49500 more" in html and "49500 more properties left out" in html
    assert "+49500 more" in listing.content.decode()
    body = api.json()
    assert body["field_cap"] == 500 and len(body["fields"]) == 500
    assert body["fields_more"] == 49_500
    assert len(body["schema"]["properties"]) == 500 and body["schema_more"] == 49_500
    assert set(body["schema"]["required"]) <= set(body["schema"]["properties"])
    assert "49500 more properties" in body["schema"]["$comment"]
    assert len(body["drift"]["added"]) <= 500
    (wide,) = [t for t in api_list.json()["types"] if t["source"] == "wide"]
    assert wide["fields_more"] == 49_500 and len(wide["fields"]) == 500

"""Issue 27 through Django's test client: the links out to AWS, the shared time window, the
per-user time zone, the admin's 24-hour UTC times and its "Alert deliveries"."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.contrib.auth import get_user_model

from events.domain import console
from events.models import AlertDelivery, Team, TeamAccount, UserPreference
from tests.dashboards.test_pages import ACCOUNT_A, MACHINE, hostile_envelope, ingest, sample_bodies

db = pytest.mark.django_db
ARN = f"arn:aws:states:eu-west-1:{ACCOUNT_A}:execution:{MACHINE}:order-7f3a"
START = datetime(2026, 11, 20, 9, 1, 54, tzinfo=UTC)
END = START + timedelta(seconds=42)


def insights_detail(url: str) -> str:
    """The query detail of a Logs Insights URL, decoded as the console decodes it."""
    fragment = urlsplit(url).fragment
    assert fragment.startswith("logsV2:logs-insights$3FqueryDetail$3D~(")
    return fragment.removeprefix("logsV2:logs-insights$3FqueryDetail$3D")


def insights_value(detail: str, key: str) -> str:
    """One text value of the detail (`~key~'value`), with the console's `*` escapes undone."""
    match = re.search(rf"[~(]{key}~'([^~)]*)", detail)
    assert match, (key, detail)
    return unquote(match.group(1).replace("*", "%"))


# ---- the links (pure) ---------------------------------------------------------------------------


def test_the_console_link_opens_the_execution_in_its_region():
    url = console.execution_url(ARN)

    assert url == (
        "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1"
        "#/v2/executions/details/arn%3Aaws%3Astates%3Aeu-west-1%3A123456789012%3Aexecution"
        "%3AEventDrivenMachine%3Aorder-7f3a"
    )


def test_an_express_execution_and_a_map_run_child_get_their_links():
    express = f"arn:aws:states:us-east-1:{ACCOUNT_A}:express:Fast:run-1:4c7f0f2e"
    child = f"arn:aws:states:us-east-1:{ACCOUNT_A}:execution:{MACHINE}/run-9:child-1"

    assert console.execution_url(express).startswith("https://us-east-1.console.aws.amazon.com/")
    assert console.execution_url(child).endswith("EventDrivenMachine%2Frun-9%3Achild-1")


@pytest.mark.parametrize("arn", [
    None, "", 42, "not an arn",
    f"arn:aws:lambda:us-east-1:{ACCOUNT_A}:function:priceFn",
    f"arn:aws:states:us-east-1:{ACCOUNT_A}:stateMachine:{MACHINE}",
    f"arn:aws:states:evil.example/#:{ACCOUNT_A}:execution:{MACHINE}:x",
    f"arn:aws:states:us-east-1:12345:execution:{MACHINE}:x",
    f"arn:other:states:us-east-1:{ACCOUNT_A}:execution:{MACHINE}:x",
    f"arn:aws:states:us-east-1:{ACCOUNT_A}:execution:{MACHINE}:x:extra",
])  # fmt: skip
def test_no_link_from_an_arn_that_is_not_a_real_execution(arn):
    assert console.execution_url(arn) is None
    assert console.logs_insights_url(arn, "priceFn", START, END) is None


def test_a_hostile_execution_name_is_encoded_and_cannot_leave_its_place():
    hostile = "a'~)(\"<script>&x=1#frag*"
    arn = f"arn:aws:states:us-east-1:{ACCOUNT_A}:execution:{MACHINE}:{hostile}"

    url = console.execution_url(arn)
    logs = console.logs_insights_url(arn, "priceFn", START, END)

    assert url.count("#") == 1 and "<" not in url and "'" not in url and "&x" not in url
    detail = insights_detail(logs)
    assert logs.count("#") == 1 and "<" not in logs and '"' not in logs
    # the fragment keeps its shape: the name's marks are all escaped inside one value
    assert insights_value(detail, "editorString") == console.logs_query(hostile)
    assert 'filter @message like "a\'~)(\\"<script>&x=1#frag*"' in console.logs_query(hostile)
    assert detail.endswith("~source~(~'*2Faws*2Flambda*2FpriceFn))")


def test_the_logs_insights_link_queries_the_functions_log_group_for_the_trace_token():
    url = console.logs_insights_url(ARN, "priceFn", START, END)

    parts = urlsplit(url)
    assert parts.netloc == "eu-west-1.console.aws.amazon.com"
    assert parse_qs(parts.query) == {"region": ["eu-west-1"]}
    detail = insights_detail(url)
    # the kit stamps the execution name on every line (infra/instrument/logfilter.py)
    query = insights_value(detail, "editorString")
    assert 'filter @message like "order-7f3a"' in query
    assert insights_value(detail, "start") == "2026-11-20T08:56:54.000Z"  # 5 min before
    assert insights_value(detail, "end") == "2026-11-20T09:07:36.000Z"  # 5 min after
    assert "~timeType~'ABSOLUTE~tz~'UTC" in detail
    assert detail.endswith("~source~(~'*2Faws*2Flambda*2FpriceFn))")


@pytest.mark.parametrize("function", [None, "", "a b", "fn/../x", "x" * 65, "fn'~)"])
def test_no_logs_link_for_a_function_name_lambda_would_not_allow(function):
    assert console.logs_insights_url(ARN, function, START, END) is None


def test_without_a_start_the_logs_link_covers_the_last_day():
    detail = insights_detail(console.logs_insights_url(ARN, "priceFn", None, None))

    assert "end~0~start~-86400~timeType~'RELATIVE~unit~'seconds" in detail


# ---- the pages ----------------------------------------------------------------------------------

@pytest.fixture
def member(django_user_model):
    user = django_user_model.objects.create_user(username="tia", password="pw-123456789")
    team = Team.objects.create(name="alpha")
    team.members.add(user)
    TeamAccount.objects.create(team=team, account=ACCOUNT_A)
    return user


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


def first_job(client) -> str:
    return client.get("/api/jobs").json()["results"][0]["id"]


@db
def test_the_job_page_links_the_execution_to_the_console(member_client):
    ingest(sample_bodies())
    job = first_job(member_client)

    html = member_client.get(f"/jobs/{job}/").content.decode()

    link = re.search(r'<a class="btn btn-small" id="aws-console" href="([^"]+)"([^>]*)>', html)
    assert link, "no console link"
    arn = member_client.get(f"/api/jobs/{job}/timeline").json()["job"]["execution_arn"]
    assert unescape(link.group(1)) == console.execution_url(arn)
    assert 'rel="noopener noreferrer"' in link.group(2)
    logs = re.search(r'<script id="logs-links" type="application/json">(.*?)</script>', html, re.S)
    links = json.loads(logs.group(1))
    assert links and all(url.startswith("https://us-east-1.console.aws.amazon.com/cloudwatch/")
                         for url in links.values())  # fmt: skip


@db
def test_a_hostile_job_gets_escaped_links_or_none(member_client):
    envelope = hostile_envelope(name="hostile-links")
    ingest([json.dumps(envelope)])
    job = f"{ACCOUNT_A}:us-east-1:{MACHINE}:hostile-links"

    html = member_client.get(f"/jobs/{job}/").content.decode()

    assert "<script>alert(1)</script>" not in html
    assert 'id="aws-console"' in html  # the ARN is real
    logs = re.search(r'<script id="logs-links" type="application/json">(.*?)</script>', html, re.S)
    assert logs.group(1) == "{}"  # its fn is "<script>…": not a Lambda name, no logs link


@db
def test_quick_ranges_write_the_window_into_the_url_and_the_header_carries_it(member_client):
    html = member_client.get("/events/?window=1h&source=shop").content.decode()

    picker = re.search(r'<nav class="quick-ranges".*?</nav>', html, re.S).group(0)
    hrefs = dict(re.findall(r'href="([^"]+)" data-window="(\w+)"', picker))
    assert {v: unescape(k) for k, v in hrefs.items()} == {
        "15m": "?source=shop&window=15m", "1h": "?source=shop&window=1h",
        "24h": "?source=shop&window=24h", "7d": "?source=shop&window=7d",
    }  # fmt: skip
    assert re.search(r'data-window="1h" aria-current="true"', picker)
    for page in ("/", "/architecture/", "/events/", "/schemas/"):
        assert f'href="{page}?window=1h"' in html


@db
def test_a_custom_window_is_carried_too(member_client):
    html = member_client.get("/?since=2026-11-20T09:00&until=2026-11-20T10:00").content.decode()

    carried = "window=custom&amp;since=2026-11-20T09%3A00&amp;until=2026-11-20T10%3A00"
    assert f'href="/architecture/?{carried}"' in html


@db
def test_a_quick_range_filters_the_events(member_client):
    ingest(sample_bodies())  # the samples are of 2026-11-20: long before the last 15 minutes

    everything = member_client.get("/events/?window=7d&source=aws.states").content.decode()
    html = member_client.get("/events/?window=15m&source=aws.states").content.decode()

    assert "No events match these filters." in html and 'class="event-row"' not in html
    assert 'class="event-row"' not in everything  # 2026-11-20 is more than 7 days ago too
    assert 'class="event-row"' in member_client.get("/events/?source=aws.states").content.decode()


@db
def test_the_time_zone_is_chosen_once_per_user(member_client, member, client):
    assert 'data-tz="utc"' in member_client.get("/").content.decode()

    answer = member_client.put("/api/preferences", {"time_zone": "local"},
                               content_type="application/json")  # fmt: skip

    assert answer.status_code == 200 and answer.json() == {"time_zone": "local"}
    assert UserPreference.objects.get(user=member).time_zone == "local"
    html = member_client.get("/events/").content.decode()
    assert 'data-tz="local"' in html
    assert member_client.get("/api/preferences").json() == {"time_zone": "local"}
    # another user's pages keep UTC
    other = get_user_model().objects.create_user(username="uma", password="pw-123456789")
    client.force_login(other)
    assert 'data-tz="utc"' in client.get("/").content.decode()


@db
def test_a_wrong_time_zone_is_refused_and_a_signed_out_user_cannot_set_one(member_client, client):
    answer = member_client.put("/api/preferences", {"time_zone": "Europe/Paris"},
                               content_type="application/json")  # fmt: skip
    assert answer.status_code == 400
    client.logout()
    assert client.put("/api/preferences", {"time_zone": "local"},
                      content_type="application/json").status_code in (401, 403)  # fmt: skip
    assert not UserPreference.objects.exists()


@db
def test_the_admin_says_alert_deliveries_and_shows_times_in_24_hour_utc(admin_client):
    assert AlertDelivery._meta.verbose_name_plural == "alert deliveries"
    index = admin_client.get("/admin/").content.decode()
    assert "Alert deliveries" in index and "Alert deliverys" not in index

    ingest(sample_bodies())
    listing = admin_client.get("/admin/events/event/").content.decode()

    assert re.search(r"\b2026-11-20 \d\d:\d\d:\d\d UTC\b", listing)
    assert not re.search(r"\b[ap]\.m\.", listing)

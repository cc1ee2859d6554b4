"""Replay through moto's server: a job's events go back on the bus, come back through the rule
and the queue (provisioned by infra.provision), and are stored as a new job linked to the
original. Dry runs send nothing; the permission is enforced; every replay is recorded."""

from __future__ import annotations

import io
import json
import uuid

import boto3
import pytest
from django.contrib.auth.models import Permission
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection

from events.models import Event, Replay
from events.replay import send as replay
from events.stores import get_store, reset_stores
from infra.provision import Plan, provision
from infra.table import ensure_table

from .conftest import ACCOUNT_A, ingest_bodies, queue_depth, sample_lines

JOB_NAME = "a6a3a450-6513-470e-a69e-0d37f2a74de4"
JOB = f"{ACCOUNT_A}:us-east-1:EventDrivenMachine:{JOB_NAME}"
EVENT = "9c1caaf7-5e87-46ed-88da-f4016b4013ef"  # a Lambda event of JOB
QUEUE = "edobs-replay"

pytestmark = pytest.mark.django_db
through_the_worker = pytest.mark.django_db(transaction=True)
OTHER_ACCOUNT = "111111111111"  # team A's account, not EDOBS_ACCOUNT
OTHER_JOB = f"{OTHER_ACCOUNT}:us-east-1:EventDrivenMachine:{JOB_NAME}"


@pytest.fixture(autouse=True)
def fresh_throttle():
    """The replay throttle counts in the shared cache (a database table), which a flush of a
    transactional test does not empty."""
    caches["interprocess"].clear()


@pytest.fixture
def bus(moto_endpoint, settings):
    """The default bus with the project's rule to an SQS queue, on moto's server; the samples
    stored. Yields the SQS client and queue URL."""
    settings.AWS_ENDPOINT_URL = moto_endpoint
    settings.AWS_DEFAULT_REGION = "us-east-1"
    clients = {
        name: boto3.client(name, endpoint_url=moto_endpoint, region_name="us-east-1")
        for name in ("sqs", "events")
    }
    # moto's backends outlive its server within a process: a queue of this test's own.
    queue = f"{QUEUE}-{uuid.uuid4().hex[:8]}"
    provision(Plan(queue_name=queue, bus_name="default", sources=["project"]), **clients)
    url = clients["sqs"].get_queue_url(QueueName=queue)["QueueUrl"]
    settings.EDOBS_QUEUE_URL = url
    ingest_bodies(sample_lines())
    return clients["sqs"], url


def _user(django_user_model, name: str, *, account: str = ACCOUNT_A, allowed: bool = True):
    from events.models import Team, TeamAccount

    user = django_user_model.objects.create_user(name, password=f"pw-{name}-123")
    team = Team.objects.create(name=f"team {name}")
    team.members.add(user)
    TeamAccount.objects.create(team=team, account=account)
    if allowed:
        user.user_permissions.add(Permission.objects.get(codename="replay_event"))
    return user


@pytest.fixture
def operator(django_user_model):
    return _user(django_user_model, "olga")


def post(client, url: str, body: dict):
    return client.post(url, json.dumps(body), content_type="application/json")


def consume() -> str:
    out = io.StringIO()
    call_command("consume_events", "--once", "--wait", "0", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def original_events() -> list:
    return list(Event.objects.filter(job_id=JOB).order_by("at", "seq"))


@through_the_worker
def test_a_replayed_job_comes_back_through_the_queue_as_a_new_linked_job(client, bus, operator):
    originals = [e for e in original_events() if e.source != "aws.states"]
    client.force_login(operator)

    response = post(client, f"/api/jobs/{JOB}/replay", {"bus": "default"})

    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["count"] == answer["sent"] == len(originals) and answer["failed"] == 0
    assert answer["skipped"] == 2  # Step Functions' own status events
    assert answer["replay_of"] == JOB and answer["entries"] == []
    new_job = answer["new_job"]
    assert new_job.startswith(f"{JOB}-replay-")
    summary = consume()
    assert f"stored={len(originals)}" in summary, summary
    replayed = list(Event.objects.filter(job_id=new_job).order_by("at", "seq"))
    assert len(replayed) == len(originals)
    assert {e.event_id for e in replayed}.isdisjoint({e.event_id for e in originals})
    assert sorted(e.detail_type for e in replayed) == sorted(e.detail_type for e in originals)
    by_original = {e.raw["detail"]["meta"]["replayOf"]["event"]: e for e in replayed}
    assert set(by_original) == {e.event_id for e in originals}
    for original in originals:
        meta = by_original[original.event_id].raw["detail"]["meta"]["replayOf"]
        assert meta["job"] == JOB and meta["account"] == ACCOUNT_A
    # The original job is untouched, and the new one links back to it.
    assert Event.objects.filter(job_id=JOB).count() == len(original_events())
    timeline = client.get(f"/api/jobs/{new_job}/timeline").json()
    assert timeline["job"]["replay_of"] == JOB
    # Triggers were relinked to their replays' new ids: spans pair as in the original.
    before = client.get(f"/api/jobs/{JOB}/timeline").json()["spans"]
    assert len(timeline["spans"]) == len(before)
    assert sum(s["open"] for s in timeline["spans"]) == sum(s["open"] for s in before)
    replayed_ids = {e.event_id for e in replayed}
    starts = [s["start_event"] for s in timeline["spans"] if s["start_event"]]
    assert starts and set(starts) <= replayed_ids
    listed = {job["id"]: job for job in client.get("/api/jobs").json()["results"]}
    assert listed[new_job]["replay_of"] == JOB and listed[JOB]["replay_of"] is None
    page = client.get(f"/jobs/{new_job}/").content.decode()
    assert f'Replay of <a href="/jobs/{JOB}/">{JOB}</a>' in page
    record = Replay.objects.get()
    assert (record.username, record.job_id, record.new_job, record.bus) == (
        "olga", JOB, new_job, "default",
    )  # fmt: skip
    assert (record.sent, record.failed, record.dry_run, record.error) == (
        len(originals), 0, False, "",
    )  # fmt: skip


def test_a_dry_run_answers_the_entries_and_sends_nothing(client, bus, operator):
    sqs, url = bus
    client.force_login(operator)

    answer = post(client, f"/api/events/{EVENT}/replay", {"bus": "default", "dry_run": True})

    body = answer.json()
    assert answer.status_code == 200 and body["dry_run"] is True
    assert body["count"] == 1 and body["sent"] == 0
    [entry] = body["entries"]
    detail = json.loads(entry["Detail"])
    assert detail["meta"]["replayOf"]["event"] == EVENT
    assert detail["execution"].endswith(
        f":{JOB_NAME}-replay-{detail['meta']['replayOf']['replay']}"
    )
    assert queue_depth(sqs, url) == 0
    record = Replay.objects.get()
    assert record.dry_run and record.sent == 0 and record.event_id == EVENT


def test_it_refuses_without_the_permission_and_records_nothing(client, bus, django_user_model):
    sqs, url = bus
    client.force_login(_user(django_user_model, "nick", allowed=False))

    for url_ in (f"/api/jobs/{JOB}/replay", f"/api/events/{EVENT}/replay"):
        response = post(client, url_, {"bus": "default"})
        assert response.status_code == 403 and set(response.json()) == {"error"}
        assert "events.replay_event" in response.json()["error"]

    assert Replay.objects.count() == 0 and queue_depth(sqs, url) == 0


def test_an_outsider_with_the_permission_gets_404(client, bus, django_user_model):
    client.force_login(_user(django_user_model, "otto", account="210987654321"))

    for url in (f"/api/jobs/{JOB}/replay", f"/api/events/{EVENT}/replay"):
        response = post(client, url, {"bus": "default"})
        assert response.status_code == 404 and set(response.json()) == {"error"}

    assert Replay.objects.count() == 0


@pytest.mark.parametrize(
    "body", [{}, {"bus": ""}, {"bus": "x" * 2000}, {"bus": 3, "dry_run": "maybe"}]
)
def test_it_refuses_a_bad_body_with_400(client, bus, operator, body):
    client.force_login(operator)

    response = post(client, f"/api/jobs/{JOB}/replay", body)

    assert response.status_code == 400 and set(response.json()) == {"error"}


@through_the_worker
def test_a_bus_that_does_not_exist_is_recorded_as_failed(client, bus, operator, settings):
    settings.EDOBS_REPLAY_BUSES = ["default", "no-such-bus"]
    client.force_login(operator)

    body = post(client, f"/api/jobs/{JOB}/replay", {"bus": "no-such-bus"}).json()

    assert body["sent"] == 0 and body["failed"] == body["count"] > 0
    record = Replay.objects.get()
    assert record.failed == record.entries and "no-such-bus" in record.error
    assert consume().count("stored=0") == 1


def test_an_entry_too_large_fails_alone_and_the_rest_is_sent(client, bus, operator):
    big = json.loads(next(line for line in sample_lines() if EVENT in line))
    big["id"], big["detail"]["blob"] = "big-one", "x" * (300 * 1024)
    ingest_bodies([json.dumps(big)])
    client.force_login(operator)

    body = post(client, f"/api/jobs/{JOB}/replay", {"bus": "default"}).json()

    assert body["failed"] == 1 and body["sent"] == body["count"] - 1
    assert "over 262144 bytes" in Replay.objects.get().error


def test_batches_hold_ten_entries_256_kib_and_never_an_entry_with_its_trigger():
    def entry(size: int) -> dict:
        return {"Source": "s", "DetailType": "t", "Detail": "x" * size, "Resources": []}

    sizes = [100_000] * 5 + [2] * 12 + [300_000] + [2, 2]
    outcome = replay.Outcome([entry(size) for size in sizes], 0, None)
    outcome.originals = [f"e{i}" for i in range(len(sizes))]
    outcome.details = [{"meta": {}} for _ in sizes]
    outcome.details[-1] = {"meta": {"incoming": {"id": "e18"}}}  # its trigger: the one before

    groups, too_large = replay.batches(outcome)

    assert too_large == 1
    assert groups == [[0, 1], [2, 3], [4, *range(5, 14)], [14, 15, 16, 18], [19]]


def test_the_admin_shows_replays_read_only(client, bus, operator, admin_user):
    client.force_login(operator)
    post(client, f"/api/jobs/{JOB}/replay", {"bus": "default", "dry_run": True})
    record = Replay.objects.get()
    client.force_login(admin_user)

    listing = client.get("/admin/events/replay/")
    change = client.get(f"/admin/events/replay/{record.pk}/change/")

    assert listing.status_code == 200 and "olga" in listing.content.decode()
    assert change.status_code == 200 and 'name="bus"' not in change.content.decode()
    assert client.get("/admin/events/replay/add/").status_code == 403
    assert get_store() is not None


def test_the_job_page_offers_replay_only_with_the_permission(client, django_user_model):
    ingest_bodies(sample_lines())
    allowed, not_allowed = (
        _user(django_user_model, "olga"),
        _user(django_user_model, "nick", allowed=False),
    )

    pages = {}
    for user in (allowed, not_allowed):
        client.force_login(user)
        pages[user.username] = client.get(f"/jobs/{JOB}/").content.decode()

    assert 'id="replay-form"' in pages["olga"] and f"/api/jobs/{JOB}/replay" in pages["olga"]
    assert 'id="replay-form"' not in pages["nick"] and "Replay of" not in pages["nick"]


def test_a_session_post_without_the_csrf_token_is_refused(bus, operator):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)

    response = post(client, f"/api/jobs/{JOB}/replay", {"bus": "default"})

    assert response.status_code == 403 and "CSRF" in response.json()["error"]
    assert Replay.objects.count() == 0


def test_the_command_replays_as_a_user_with_the_permission(bus, operator, django_user_model):
    from django.core.management.base import CommandError

    sqs, url = bus
    _user(django_user_model, "nick", allowed=False)
    out = io.StringIO()

    call_command("replay", "--job", JOB, "--user", "olga", "--dry-run", stdout=out)
    with pytest.raises(CommandError, match="may not replay"):
        call_command("replay", "--job", JOB, "--user", "nick")
    with pytest.raises(CommandError, match="not found"):
        call_command("replay", "--event", "no-such-event", "--user", "olga")

    assert "would put 20 events on default (skipped 2, failed 0)" in out.getvalue()
    assert Replay.objects.get().username == "olga" and queue_depth(sqs, url) == 0


def in_account(account: str) -> list[str]:
    """The samples as sent from another account."""
    return [json.dumps({**json.loads(line), "account": account}) for line in sample_lines()]


def put_forged(events_client, *, replay_of: dict) -> str:
    """A producer's own PutEvents whose detail claims to be a replay."""
    answer = events_client.put_events(Entries=[{
        "Source": "project", "DetailType": "forged", "EventBusName": "default",
        "Detail": json.dumps({"execution": f"arn:aws:states:us-east-1:{ACCOUNT_A}:execution:"
                              "EventDrivenMachine:forged", "meta": {"replayOf": replay_of}}),
    }])  # fmt: skip
    return answer["Entries"][0]["EventId"]


@pytest.fixture(params=["orm", "dynamodb"])
def store_name(request, settings, moto_endpoint):
    """Replays live in the ORM database whatever the store: the check must hold on both."""
    if request.param == "dynamodb":
        settings.EDOBS_STORE = "dynamodb"
        settings.EDOBS_TABLE_NAME = f"edobs-replay-{uuid.uuid4().hex[:8]}"
        client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
        ensure_table(client, settings.EDOBS_TABLE_NAME)
    reset_stores()
    yield request.param
    reset_stores()


def stored(event_id: str):
    [event] = get_store().get_events(event_id, accounts=frozenset({ACCOUNT_A, OTHER_ACCOUNT}))
    return event


@through_the_worker
def test_a_replay_is_stored_under_the_original_account_and_a_forged_one_is_not(
    client, bus, moto_endpoint, django_user_model, store_name
):
    """moto delivers a replayed event without `account`, as AWS delivers it with the account
    PutEvents ran in: either way it used to be stored under EDOBS_ACCOUNT, readable by whoever
    holds that account, and the replaying team got 404 for its own replay."""
    ingest_bodies(in_account(OTHER_ACCOUNT))
    team_a = _user(django_user_model, "alice", account=OTHER_ACCOUNT)
    holder = _user(django_user_model, "hugo", account=ACCOUNT_A, allowed=False)
    client.force_login(team_a)

    answer = post(client, f"/api/jobs/{OTHER_JOB}/replay", {"bus": "default"}).json()
    short = Replay.objects.get().short
    events_client = boto3.client("events", endpoint_url=moto_endpoint, region_name="us-east-1")
    claim = {"replay": short, "account": OTHER_ACCOUNT, "job": OTHER_JOB}
    sent = Replay.objects.get().originals[0]
    forged = [
        put_forged(events_client, replay_of={**claim, "event": "not-an-event-it-sent"}),
        put_forged(events_client, replay_of={**claim, "replay": "feedf00d", "event": EVENT}),
        # The whole claim of an event this replay did send, copied (the replayed events cross
        # the bus, where other producers' rules may read them) onto content of one's own.
        put_forged(events_client, replay_of={**claim, "event": sent}),
    ]
    summary = consume()

    assert answer["sent"] == answer["count"] > 0 and answer["failed"] == 0, answer
    assert f"stored={answer['count'] + len(forged)}" in summary, summary
    new_job = answer["new_job"]
    assert new_job.startswith(f"{OTHER_JOB}-replay-{short}")
    replayed = client.get(f"/api/jobs/{new_job}/events?limit=500").json()["results"]
    assert len(replayed) == answer["count"]
    assert {event["account"] for event in replayed} == {OTHER_ACCOUNT}
    assert client.get(f"/api/jobs/{new_job}/timeline").json()["job"]["replay_of"] == OTHER_JOB
    # Whoever holds EDOBS_ACCOUNT sees none of it.
    client.force_login(holder)
    assert client.get(f"/api/jobs/{new_job}/timeline").status_code == 404
    seen = [event["id"] for event in client.get("/api/events?limit=500").json()["results"]]
    assert not set(seen) & {event["id"] for event in replayed}
    # A replayOf naming no recorded replay of that event, or of other content than the replay
    # sent: the envelope's account, as before.
    for event_id in forged:
        assert stored(event_id).account == ACCOUNT_A


def test_a_bus_not_in_the_setting_is_a_400_naming_it(client, bus, operator, settings):
    sqs, url = bus
    client.force_login(operator)
    foreign = "arn:aws:events:us-east-1:999999999999:event-bus/default"

    responses = [
        post(client, f"/api/jobs/{JOB}/replay", {"bus": foreign}),
        post(client, f"/api/events/{EVENT}/replay", {"bus": "someone-elses-bus"}),
    ]

    for response in responses:
        assert response.status_code == 400 and set(response.json()) == {"error"}
        assert "EDOBS_REPLAY_BUSES" in response.json()["error"]
    with pytest.raises(Exception, match="EDOBS_REPLAY_BUSES"):
        call_command("replay", "--job", JOB, "--user", "olga", "--bus", foreign)
    assert Replay.objects.count() == 0 and queue_depth(sqs, url) == 0
    settings.EDOBS_REPLAY_BUSES = ["default", foreign]
    allowed = post(client, f"/api/jobs/{JOB}/replay", {"bus": foreign, "dry_run": True})
    assert allowed.status_code == 200, allowed.content


def test_the_eleventh_replay_in_a_minute_is_a_429_counted_in_the_shared_cache(
    client, bus, operator, django_user_model
):
    client.force_login(operator)
    url = f"/api/events/{EVENT}/replay"

    statuses = [post(client, url, {"bus": "default", "dry_run": True}).status_code
                for _ in range(11)]  # fmt: skip

    assert statuses == [200] * 10 + [429]
    refused = post(client, f"/api/jobs/{JOB}/replay", {"bus": "default", "dry_run": True})
    assert refused.status_code == 429 and set(refused.json()) == {"error"}
    assert Replay.objects.count() == 10
    # Counted where every server process reads it: the database cache's table, not memory.
    with connection.cursor() as cursor:
        cursor.execute("SELECT cache_key FROM edobs_shared_cache")
        assert any("replay" in key for (key,) in cursor.fetchall())
    # Another user has a rate of their own.
    client.force_login(_user(django_user_model, "olivia"))
    assert post(client, url, {"bus": "default", "dry_run": True}).status_code == 200


@pytest.mark.parametrize(
    "name, value, check_id",
    [
        ("EDOBS_REPLAY_BUSES", ["default", "bad bus!"], "events.E025"),
        ("EDOBS_REPLAY_BUSES", ["arn:aws:events:us-east-1:12:event-bus/x"], "events.E025"),
        ("EDOBS_REPLAY_BUSES", [], "events.E025"),
        ("EDOBS_REPLAY_RATE", "ten/min", "events.E026"),
        ("EDOBS_REPLAY_RATE", "10/fortnight", "events.E026"),
        ("EDOBS_REPLAY_RATE", "0/min", "events.E026"),
        ("EDOBS_REPLAY_RATE", "", "events.E026"),
    ],
)
def test_the_replay_settings_are_checked(settings, name, value, check_id):
    from events.checks import check_replay

    assert check_replay(None) == []
    setattr(settings, name, value)
    assert [error.id for error in check_replay(None)] == [check_id]
    settings.EDOBS_REPLAY_BUSES = ["default", "arn:aws:events:us-east-1:123456789012:event-bus/b"]
    settings.EDOBS_REPLAY_RATE = "100/hour"
    assert check_replay(None) == []

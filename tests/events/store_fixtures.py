"""Store fixtures for the contract suite: the same tests on SQLite, PostgreSQL and DynamoDB (moto).

PostgreSQL: a second database alias `pg` is added at runtime, pointing at the session server of
tests/conftest.py (`postgres_url`), migrated once; the ORM store runs on it with `using="pg"`.
Its tables are truncated around each test (no wrapping transaction: commits are real).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import dj_database_url
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from moto import mock_aws

from events.domain.envelope import NormalisedEvent, parse_envelope
from events.stores.dynamodb.store import DynamoStore
from events.stores.orm.store import OrmStore
from infra.table import ensure_table

ACCOUNT_A = "111111111111"
ACCOUNT_B = "222222222222"
TABLE = "edobs-contract"
BACKENDS = [pytest.param("sqlite", marks=pytest.mark.django_db), "postgres", "dynamodb"]


def now_second() -> datetime:
    """An hour ago, to the second: well inside the retention, never in the future."""
    return (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


def arn(job: str, machine: str = "Machine", account: str = ACCOUNT_A) -> str:
    return f"arn:aws:states:us-east-1:{account}:execution:{machine}:{job}"


def envelope(
    *,
    at: datetime,
    job: str | None = "job-1",
    machine: str = "Machine",
    account: str = ACCOUNT_A,
    detail_type: str = "step",
    event_id: str | None = None,
    status: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An EventBridge envelope: a custom event of `job`, or its aws.states status change."""
    body = dict(detail or {})
    source = "project"
    if job and status:
        source, detail_type = "aws.states", "Step Functions Execution Status Change"
        body.update(executionArn=arn(job, machine, account), name=job, status=status)
        body.update(startDate=int(at.timestamp() * 1000), stopDate=None)
        if status != "RUNNING":
            body.update(stopDate=int(at.timestamp() * 1000), error="Boom", cause="it broke")
    elif job:
        body["execution"] = arn(job, machine, account)
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": at.isoformat().replace("+00:00", "Z"),
        "region": "us-east-1",
        "resources": [],
        "detail": body,
    }


def make_event(*, received_at: datetime | None = None, **kwargs: Any) -> NormalisedEvent:
    """A parsed event; `received_at` (default now) is when it arrived."""
    return parse_envelope(envelope(**kwargs), default_account=ACCOUNT_A, received_at=received_at)


def job_id(job: str = "job-1", machine: str = "Machine", account: str = ACCOUNT_A) -> str:
    return f"{account}:us-east-1:{machine}:{job}"


@pytest.fixture(scope="session", name="pg_alias")
def pg_alias_fixture(postgres_url, django_db_setup, django_db_blocker):
    """The `pg` database alias on the session PostgreSQL server, migrated."""
    config = dj_database_url.parse(postgres_url, conn_max_age=0)
    settings.DATABASES["pg"] = config
    default = connections.settings["default"]
    connections.settings["pg"] = connections.configure_settings({"default": default, "pg": config})[
        "pg"
    ]
    with django_db_blocker.unblock():
        call_command("migrate", database="pg", verbosity=0, interactive=False)
        assert connections["pg"].vendor == "postgresql"
    yield "pg"
    with django_db_blocker.unblock():
        connections["pg"].close()
    connections.settings.pop("pg", None)  # often the same dict as settings.DATABASES
    settings.DATABASES.pop("pg", None)


def _truncate(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "TRUNCATE events_event, events_job, events_architecturerollup, events_pendingspan"
            " RESTART IDENTITY CASCADE"
        )


def postgres_store(request) -> OrmStore:
    alias = request.getfixturevalue("pg_alias")
    blocker = request.getfixturevalue("django_db_blocker")
    blocker.unblock()

    def finish():
        _truncate(alias)
        blocker.restore()

    request.addfinalizer(finish)
    _truncate(alias)
    return OrmStore(using=alias)


def dynamo_store(request, **kwargs: Any) -> DynamoStore:
    """A DynamoStore on a fresh moto table (mock_aws for the test's duration)."""
    mock = mock_aws()
    mock.start()
    request.addfinalizer(mock.stop)
    client = boto3.client("dynamodb", region_name="us-east-1")
    ensure_table(client, TABLE)
    return DynamoStore(client=client, table_name=TABLE, retention_hours=24, **kwargs)


@pytest.fixture(params=BACKENDS, name="store")
def store_fixture(request):
    """The store under contract, one test per backend."""
    if request.param == "sqlite":  # the django_db mark gives it the test database
        return OrmStore()
    if request.param == "postgres":
        return postgres_store(request)
    return dynamo_store(request)

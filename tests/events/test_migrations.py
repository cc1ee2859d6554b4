"""Migration 0003: jobs that mixed two accounts under one `STATE_MACHINE:NAME` come apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def back_to_latest():
    """Leave the schema as every other test expects it: every migration applied."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


BEFORE, AFTER = [("events", "0002_rejected_once")], [("events", "0003_job_per_account")]
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _raw(account: str, n: int, status: str | None) -> dict:
    arn = f"arn:aws:states:us-east-1:{account}:execution:orders:run-42"
    detail = {"execution": arn, "n": n}
    source, detail_type = "project", "step"
    if status:
        source, detail_type = "aws.states", "Step Functions Execution Status Change"
        detail = {"executionArn": arn, "status": status, "error": f"{account}-error"}
    return {
        "version": "0", "id": f"id-{n}", "source": source, "detail-type": detail_type,
        "account": account, "time": (T0 + timedelta(seconds=n)).isoformat(),
        "region": "us-east-1", "resources": [], "detail": detail,
    }  # fmt: skip


def test_it_splits_an_old_shared_job_into_one_job_per_account():
    apps = _migrate(BEFORE)
    Event, Job = apps.get_model("events", "Event"), apps.get_model("events", "Job")
    mixed = Job.objects.create(
        id="orders:run-42", state_machine="orders", name="run-42", account="111111111111",
        region="us-east-1", status="FAILED", event_count=4,
    )  # fmt: skip
    rows = [("111111111111", 0, None), ("222222222222", 1, None), ("111111111111", 2, "SUCCEEDED"),
            ("222222222222", 3, "FAILED")]  # fmt: skip
    for account, n, status in rows:
        raw = _raw(account, n, status)
        Event.objects.create(
            event_id=f"{account}-{n}", job=mixed, source=raw["source"],
            detail_type=raw["detail-type"], account=account, region="us-east-1",
            time=T0 + timedelta(seconds=n), received_at=T0, raw=raw,
            batch="00000000-0000-0000-0000-000000000000",
        )  # fmt: skip

    apps = _migrate(AFTER)
    Event, Job = apps.get_model("events", "Event"), apps.get_model("events", "Job")

    jobs = {job.id: job for job in Job.objects.all()}
    assert set(jobs) == {
        "111111111111:us-east-1:orders:run-42",
        "222222222222:us-east-1:orders:run-42",
    }
    dev, prod = (
        jobs["111111111111:us-east-1:orders:run-42"],
        jobs["222222222222:us-east-1:orders:run-42"],
    )
    assert (dev.account, dev.status, dev.error, dev.event_count) == (
        "111111111111", "SUCCEEDED", "111111111111-error", 2,
    )  # fmt: skip
    assert (prod.account, prod.status, prod.event_count) == ("222222222222", "FAILED", 2)
    assert prod.latest_event.event_id == "222222222222-3"
    for job in (dev, prod):
        assert set(Event.objects.filter(job=job).values_list("account", flat=True)) == {job.account}

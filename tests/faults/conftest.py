"""Fixtures of the fault-injection suite: moto's server, a migrated SQLite file, workers."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest

from tests.conftest import need
from tests.services import PostgresServer, RedisServer

from .harness import Queues, Workers, make_queues, manage, worker_env


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """One migrated SQLite file per session; each test works on a copy."""
    folder = tmp_path_factory.mktemp("faults-template")
    db = folder / "db.sqlite3"
    offline = Queues(endpoint="http://127.0.0.1:9", url="http://127.0.0.1:9/none", dlq_url="")
    manage(
        "migrate",
        "--noinput",
        env=worker_env(queues=offline, var_dir=folder, database_url=f"sqlite:///{db}"),
    )
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


@pytest.fixture
def sqlite_url(migrated_sqlite, tmp_path) -> str:
    db = tmp_path / "db.sqlite3"
    shutil.copy(migrated_sqlite, db)
    return f"sqlite:///{db}"


@pytest.fixture
def start_workers(tmp_path):
    """start_workers(env, count) -> Workers; every one is killed at the end of the test."""
    made: list[Workers] = []

    def start(env: dict, count: int = 1) -> Workers:
        logs = tmp_path / f"logs-{len(made)}"
        logs.mkdir()
        workers = Workers(env=env, logs=logs)
        made.append(workers)
        workers.start(count)
        return workers

    try:
        yield start
    finally:
        for workers in made:
            workers.kill_all()


@pytest.fixture
def queues_factory(moto_endpoint):
    def make(*, visibility: int = 2):
        # moto's backend outlives a server in the same process: a fresh name per test.
        name = f"edobs-faults-{uuid.uuid4().hex[:8]}"
        return make_queues(moto_endpoint, name=name, visibility=visibility)

    return make


@pytest.fixture
def own_postgres():
    """A PostgreSQL of this test's own, which it may stop and start (not the session one)."""
    server = need(PostgresServer)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def own_redis():
    server = need(RedisServer)
    try:
        server.start()
        yield server
    finally:
        server.close()

"""Shared fixtures: fake AWS credentials for every test, and real Redis/PostgreSQL/Chromium.

The service fixtures skip with a loud reason when the binary is missing, except under CI=true,
where `.ci/run` installs them, so a missing one is a failure.  See tests/services.py.
"""

import os

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from tests.services import (
    CHROMIUM_ARGS,
    CHROMIUM_HEADLESS_FLAGS,
    PostgresServer,
    RedisServer,
    ServiceUnavailable,
    chromium_binary,
    promtool_binary,
)

__all__ = ["CHROMIUM_ARGS", "CHROMIUM_HEADLESS_FLAGS"]

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(factory):
    """factory(), or a loud skip (a failure under CI=true) when its binary is missing."""
    try:
        return factory()
    except ServiceUnavailable as exc:
        problem = exc  # skip/fail outside the except block: no chained traceback
    reason = f"SERVICE MISSING: {problem}"
    if IN_CI:
        pytest.fail(f"{reason}; CI=true, so .ci/run should have installed it", pytrace=False)
    pytest.skip(f"{reason}; run `make test` as root to install it")


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch):
    """No test can reach real AWS: fake credentials, fixed region, no endpoint override."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session", autouse=True)
def no_collected_static(tmp_path_factory):
    """An empty STATIC_ROOT for the in-process tests: what `make run` collected into var/static
    (a manifest of hashed names) must not change the pages they read. A test that wants hashed
    files collects into a root of its own."""
    from django.test import override_settings

    override = override_settings(STATIC_ROOT=str(tmp_path_factory.mktemp("static")))
    override.enable()
    yield
    override.disable()


class OneRoundPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 with one round: a hash made in a test costs microseconds, not the 0.4 s of
    CPU a million rounds cost (the suite makes thousands of users and logins). Its hashes are
    ordinary `pbkdf2_sha256$1$...` strings, so the servers the tests start, on the product's own
    hashers, verify them too (Django reads the rounds from the hash)."""

    iterations = 1


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashes():
    """The in-process tests hash passwords with OneRoundPBKDF2PasswordHasher (Django's advice for
    test settings); the product's list follows, for hashes other processes made."""
    from django.conf import settings
    from django.test import override_settings

    quick = f"{__name__}.OneRoundPBKDF2PasswordHasher"
    override = override_settings(PASSWORD_HASHERS=[quick, *settings.PASSWORD_HASHERS])
    override.enable()
    yield
    override.disable()


@pytest.fixture(scope="session")
def redis_url():
    """redis://127.0.0.1:PORT/0 of a throwaway redis-server, stopped after the session."""
    server = need(RedisServer)
    try:
        server.start()
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_url():
    """postgres://postgres@127.0.0.1:PORT/postgres of a scratch cluster, removed afterwards."""
    server = need(PostgresServer)
    try:
        server.start()
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="session")
def chromium_path():
    """Path of Debian's chromium; launch it with CHROMIUM_ARGS / CHROMIUM_HEADLESS_FLAGS."""
    return need(chromium_binary)


@pytest.fixture(scope="session")
def promtool_path():
    """Path of promtool, which checks the sample alert rules in docs/prometheus/."""
    return need(promtool_binary)


@pytest.fixture
def moto_endpoint():
    """http://127.0.0.1:PORT of moto's server, for code in other processes (AWS_ENDPOINT_URL)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


DB_FIXTURES = {
    "db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback",
}  # fmt: skip
LONGEST_FIRST = ("tests/faults/", "tests/test_live_")  # minutes each: started before the rest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """The slow tests that keep off the test database run first (after pytest-django's ordering,
    which stays as it was for every test that uses the database).

    Under pytest-xdist a multi-minute fault scenario collected last ran alone at the end while
    the other workers sat idle: the suite's last 3% took 8 of its 21 minutes.
    """

    def first(item) -> bool:
        uses_db = item.get_closest_marker("django_db") or DB_FIXTURES & set(item.fixturenames)
        return bool(item.get_closest_marker("slow")) and not uses_db

    def longest(item) -> bool:
        return item.nodeid.startswith(LONGEST_FIRST)

    early = [item for item in items if first(item)]
    early.sort(key=lambda item: not longest(item))  # stable: modules stay together
    items[:] = early + [item for item in items if not first(item)]

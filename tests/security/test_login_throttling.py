"""Login throttling (django-axes): after EDOBS_LOGIN_FAILURE_LIMIT failures of one username
from one address, even the right password is refused until the cool-off ends or an admin
resets it.  Both login pages; force_login (the rest of the suite) is not a password login."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-passw0rd"
LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    # A failure costs one hash until the lockout; the real hasher takes ~0.5 s a time here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user(username="carol", password=PASSWORD, is_staff=True)


def attempt(client: Client, url: str, password: str):
    return client.post(url, {"username": "carol", "password": password, "next": "/"})


def fail(client: Client, url: str, times: int) -> None:
    for _ in range(times):
        assert attempt(client, url, "wrong").status_code in (200, 429)


@pytest.mark.parametrize("url", LOGIN_PAGES)
def test_it_refuses_the_right_password_after_too_many_failures(client, carol, url):
    fail(client, url, 40)

    response = attempt(client, url, PASSWORD)

    assert response.status_code == 429
    content = response.content.decode()
    assert "Too many failed logins" in content and "paused for 15 minutes" in content
    assert client.get("/api/jobs").status_code in (401, 403)
    assert AccessAttempt.objects.get(username="carol").failures_since_start >= 5


def test_it_still_accepts_the_right_password_below_the_limit(client, carol):
    fail(client, "/accounts/login/", 4)

    response = attempt(client, "/accounts/login/", PASSWORD)

    assert response.status_code == 302
    assert client.get("/api/jobs").status_code == 200
    assert not AccessAttempt.objects.filter(username="carol").exists()  # reset on success


def test_it_takes_the_limit_from_settings(client, carol, settings):
    settings.AXES_FAILURE_LIMIT = 2
    fail(client, "/accounts/login/", 2)

    assert attempt(client, "/accounts/login/", PASSWORD).status_code == 429


def test_it_lets_the_right_password_in_after_the_cool_off(client, carol):
    fail(client, "/accounts/login/", 5)
    assert attempt(client, "/accounts/login/", PASSWORD).status_code == 429
    earlier = timezone.now() - timedelta(minutes=16)
    AccessAttempt.objects.update(attempt_time=earlier)

    response = attempt(client, "/accounts/login/", PASSWORD)

    assert response.status_code == 302
    assert client.get("/api/jobs").status_code == 200


def test_it_lets_the_right_password_in_after_an_admin_reset(client, carol):
    fail(client, "/admin/login/", 5)
    assert attempt(client, "/admin/login/", PASSWORD).status_code == 429
    call_command("axes_reset_username", "carol")

    response = attempt(client, "/admin/login/", PASSWORD)

    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_it_locks_out_one_username_from_one_address_only(client, carol):
    fail(client, "/accounts/login/", 5)
    elsewhere = Client(REMOTE_ADDR="10.0.0.9")

    response = attempt(elsewhere, "/accounts/login/", PASSWORD)

    assert response.status_code == 302
    assert attempt(client, "/accounts/login/", PASSWORD).status_code == 429

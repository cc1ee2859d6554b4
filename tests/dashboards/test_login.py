"""Logging in and out with Django's auth views and the plain template."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-passw0rd"


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="carol", password=PASSWORD)


def test_it_renders_the_login_page(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="username"' in content and 'name="password"' in content
    assert "csrfmiddlewaretoken" in content


def test_it_sends_anonymous_users_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_logs_in_with_the_right_password(client, user):
    response = client.post("/accounts/login/", {"username": "carol", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.get("/api/jobs").status_code == 200


def test_it_refuses_the_wrong_password(client, user):
    response = client.post("/accounts/login/", {"username": "carol", "password": "wrong"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()
    assert client.get("/api/jobs").status_code in (401, 403)


def test_it_logs_out_by_post(client, user):
    client.force_login(user)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert client.get("/api/jobs").status_code in (401, 403)


def test_it_does_not_log_out_by_get(client, user):
    client.force_login(user)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/api/jobs").status_code == 200

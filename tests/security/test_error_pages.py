"""No request a client can make is a 500: pages answer with the site's own error pages, static
paths never leave the static directories, unknown sockets close with 4404 (issue 13)."""

import json

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.test import Client, RequestFactory

from dashboards import errors
from events.live.consumers import CLOSE_NOT_FOUND

HEADERS = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]


def _application():
    from edobs_site.asgi import application

    return application


async def http_get(path: str) -> tuple[int, bytes]:
    """(status, body) of a GET through the ASGI application, static files handler included.

    Not HttpCommunicator.get_response: it fails on the body-less last message of a file."""
    communicator = HttpCommunicator(_application(), "GET", path, headers=HEADERS)
    await communicator.send_input({"type": "http.request", "body": b""})
    start, body, more = await communicator.receive_output(10), b"", True
    while more:
        chunk = await communicator.receive_output(10)
        body, more = body + chunk.get("body", b""), chunk.get("more_body", False)
    await communicator.wait(10)
    return start["status"], body


@pytest.fixture
def logged_in(db, django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create(username="carol"))
    return client


def assert_styled_page(response, status: int, template: str) -> str:
    """The site's frame (its base template and stylesheet) around the error, with a way home."""
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    names = [t.name for t in response.templates]
    assert template in names and "dashboards/base.html" in names, names
    html = response.content.decode()
    assert "dashboards/app.css" in html and 'href="/"' in html
    return html


@pytest.mark.parametrize("url", ["/no-such-page/", "/jobs/Nope:none/", "/jobs/a%00b/"])
def test_an_unknown_page_is_the_styled_404(logged_in, url):
    html = assert_styled_page(logged_in.get(url), 404, "404.html")

    assert "Page not found" in html
    assert 'class="topbar"' in html and "carol" in html  # the signed-in frame, not a bare page


def test_an_unknown_page_is_the_styled_404_when_logged_out(db):
    assert_styled_page(Client().get("/no-such-page/"), 404, "404.html")


def test_a_refused_host_is_the_styled_400(db):
    response = Client().get("/", HTTP_HOST="evil.example")

    assert "Bad request" in assert_styled_page(response, 400, "400.html")


def test_a_refused_host_under_the_api_is_a_json_400(db):
    response = Client().get("/api/jobs", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize(
    "handler,status,template",
    [
        (lambda r: errors.permission_denied(r, PermissionError()), 403, "403.html"),
        (errors.server_error, 500, "500.html"),
    ],
)
def test_the_other_error_pages_are_styled_and_the_api_gets_json(db, handler, status, template):
    page = handler(RequestFactory().get("/jobs/x/"))
    api = handler(RequestFactory().get("/api/jobs"))

    assert page.status_code == status
    html = page.content.decode()
    assert "dashboards/app.css" in html and 'href="/"' in html
    assert api.status_code == status and api["Content-Type"] == "application/json"
    assert set(json.loads(api.content)) == {"error"}


# Paths as daphne hands them over: already percent-decoded (`/static/..%2fmanage.py`).
TRAVERSALS = [
    "/static/../manage.py",
    "/static/../../../../etc/passwd",
    "/static/dashboards/../../../manage.py",
    "/static/..\\manage.py",
    "/static/does-not-exist.css",
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", TRAVERSALS)
async def test_a_static_path_out_of_the_static_files_is_a_404(path):
    status, body = await http_get(path)

    assert status == 404
    assert b"Page not found" in body and b"edobs" in body


@pytest.mark.django_db(transaction=True)
async def test_a_static_file_is_still_served():
    status, body = await http_get("/static/dashboards/app.css")

    assert status == 200
    assert b".error-card" in body


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/ws/nope/", "/", "/ws/events", "/ws/jobs/", "/api/jobs"])
async def test_an_unknown_socket_path_closes_with_4404(path):
    communicator = WebsocketCommunicator(_application(), path, headers=HEADERS)
    connected, _ = await communicator.connect(timeout=5)
    closed = await communicator.receive_output(timeout=5)
    await communicator.disconnect()

    assert connected
    assert closed == {"type": "websocket.close", "code": CLOSE_NOT_FOUND}

"""OpenID Connect sign-in in-process: the teams claim, the user it makes, the checks, discovery
and the login page.  The whole flow through a real provider: test_browser_oidc.py."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from events.models import Team
from sso import discovery
from sso.backend import OIDCBackend
from sso.models import Identity
from sso.teams import claimed_team_names, set_teams_from_claims
from tests.services import free_port

pytestmark = pytest.mark.django_db

ISSUER = "https://id.example.com/realms/ops"
OIDC = {
    "EDOBS_OIDC_ISSUER": ISSUER, "EDOBS_OIDC_CLIENT_ID": "edobs",
    "EDOBS_OIDC_CLIENT_SECRET": "s" * 32, "OIDC_RP_CLIENT_ID": "edobs",
    "OIDC_RP_CLIENT_SECRET": "s" * 32,
}  # fmt: skip
BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "sso.backend.OIDCBackend",
]


@pytest.fixture(autouse=True)
def fresh_discovery():
    discovery.forget()
    yield
    discovery.forget()


@pytest.mark.parametrize(
    "value, names",
    [
        (["payments", " search ", 7, {"x": 1}, ""], {"payments", "search"}),
        ("payments search,ops", {"payments", "search", "ops"}),
        (42, set()),
        (None, set()),
    ],
)
def test_it_reads_team_names_from_a_list_or_a_string(value, names):
    assert claimed_team_names({"groups": value}) == names


@override_settings(EDOBS_OIDC_TEAMS_CLAIM="roles")
def test_it_reads_the_configured_claim_only():
    assert claimed_team_names({"groups": ["a"], "roles": ["b"]}) == {"b"}


def test_it_sets_exactly_the_existing_claimed_teams_and_creates_none(django_user_model):
    user = django_user_model.objects.create_user("dora")
    payments, search = Team.objects.create(name="payments"), Team.objects.create(name="search")
    payments.members.add(user)
    assert set_teams_from_claims(user, {"groups": ["search", "Payments", "new-team"]}) == ["search"]
    assert list(user.teams.all()) == [search]  # "Payments" is not "payments"
    assert not Team.objects.filter(name="new-team").exists()


@override_settings(**OIDC)
def test_it_never_links_a_password_user_by_email_or_username(django_user_model):
    root = django_user_model.objects.create_superuser("alice", "alice@example.com", "pw-123456")
    claims = {"sub": "9f1c", "email": "alice@example.com", "preferred_username": "alice"}
    backend = OIDCBackend()
    assert not backend.filter_users_by_claims(claims).exists()
    user = backend.create_user(claims)
    assert user.pk != root.pk and user.username == "alice-2"
    assert not user.has_usable_password() and not user.is_staff and not user.is_superuser
    assert Identity.objects.get(user=user).subject == "9f1c"
    assert list(backend.filter_users_by_claims(claims)) == [user]
    assert list(backend.filter_users_by_claims({"sub": "other"})) == []


@override_settings(**OIDC)
def test_it_names_a_user_from_the_claims_it_can_use(django_user_model):
    backend = OIDCBackend()
    assert backend.create_user({"sub": "x1", "email": "bob.smith@example.com"}).username == (
        "bob.smith"
    )
    assert backend.create_user({"sub": "über", "preferred_username": "<>"}).username == "ber"
    assert backend.create_user({"sub": "Ω"}).username == "oidc-user"


@override_settings(**OIDC)
def test_it_starts_no_token_exchange_without_the_callbacks_nonce(rf):
    request = rf.get("/accounts/login/?code=abc&state=def")
    assert OIDCBackend().authenticate(request, username="x", password="y") is None


def _ids(**settings):
    with override_settings(**settings):
        return {message.id for message in run_checks() if message.id.startswith("events.E07")}


def test_the_checks_say_what_is_half_configured():
    assert _ids() == set()
    assert _ids(**OIDC) == set()
    assert _ids(EDOBS_OIDC_ISSUER=ISSUER) == {"events.E070"}
    assert _ids(**{**OIDC, "EDOBS_OIDC_ISSUER": "http://id.example.com"}) == {"events.E071"}
    assert _ids(**{**OIDC, "EDOBS_OIDC_ISSUER": "http://127.0.0.1:9000/o"}) == set()
    assert _ids(**{**OIDC, "EDOBS_OIDC_ISSUER": "http://id.example.com", "DEBUG": True}) == set()
    assert _ids(**{**OIDC, "EDOBS_OIDC_ISSUER": "id.example.com"}) == {"events.E071"}
    assert _ids(EDOBS_OIDC_CLIENT_ID="edobs") == {"events.E072"}
    assert _ids(**{**OIDC, "EDOBS_OIDC_TEAMS_CLAIM": "my groups"}) == {"events.E073"}
    assert _ids(**{**OIDC, "EDOBS_OIDC_SCOPES": "email groups"}) == {"events.E074"}


def test_the_login_page_has_no_provider_button_and_oidc_urls_are_404_without_an_issuer(client):
    assert b"data-sso" not in client.get("/accounts/login/").content
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=a&state=b").status_code == 404


@override_settings(**OIDC, EDOBS_OIDC_NAME="Okta <script>")
def test_the_login_page_offers_the_provider_first_escaped(client):
    content = client.get("/accounts/login/?next=/jobs").content.decode()
    assert 'href="/oidc/authenticate/?next=/jobs"' in content
    assert "Sign in with Okta &lt;script&gt;" in content
    assert content.index("data-sso") < content.index('name="password"')


def _serve(document: dict) -> tuple[ThreadingHTTPServer, str]:
    """A real HTTP server answering every GET with `document` (a provider's discovery)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/o"


def test_discovery_refuses_a_document_of_another_issuer(client):
    endpoints = {key: "https://evil.example/x" for key in discovery.ENDPOINTS.values()}
    server, issuer = _serve({"issuer": "https://evil.example", **endpoints})
    try:
        with override_settings(**{**OIDC, "EDOBS_OIDC_ISSUER": issuer}):
            with pytest.raises(discovery.DiscoveryFailed, match="is not issuer"):
                discovery.provider_config()
            response = client.get("/oidc/authenticate/")
            assert response.status_code == 503
            assert b"cannot be reached" in response.content
    finally:
        server.shutdown()


def test_discovery_reads_the_endpoints_once(client):
    document: dict = {}
    server, issuer = _serve(document)  # serves the dict as it is at each request
    document.update(
        {"issuer": issuer, **{k: f"{issuer}/{k}" for k in discovery.ENDPOINTS.values()}}
    )
    try:
        with override_settings(**{**OIDC, "EDOBS_OIDC_ISSUER": issuer}):
            response = client.get("/oidc/authenticate/?next=/jobs")
            assert response.status_code == 302
            assert response["Location"].startswith(f"{issuer}/authorization_endpoint?")
            assert "code_challenge_method=S256" in response["Location"]
            server.shutdown()  # cached: no request needed any more
            assert discovery.oidc_setting("OIDC_OP_JWKS_ENDPOINT") == f"{issuer}/jwks_uri"
    finally:
        server.shutdown()


@override_settings(
    **{**OIDC, "EDOBS_OIDC_ISSUER": f"http://127.0.0.1:{free_port()}/o"},
    AUTHENTICATION_BACKENDS=BACKENDS,
)
def test_the_password_login_works_while_the_provider_is_down(client, django_user_model):
    django_user_model.objects.create_superuser("root", "r@x.test", "break-glass-pw")
    response = client.post("/accounts/login/", {"username": "root", "password": "break-glass-pw"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/api/jobs").status_code == 200


def test_only_superusers_see_the_identities_in_the_admin(client, django_user_model):
    staff = django_user_model.objects.create_user("staff", password="pw-staff-123", is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/sso/identity/").status_code == 403
    root = django_user_model.objects.create_superuser("root", "r@x.test", "pw-root-123")
    client.force_login(root)
    assert client.get("/admin/sso/identity/").status_code == 200
    assert client.get("/admin/sso/identity/add/").status_code == 403


def test_a_callback_that_is_not_ours_signs_no_one_in(client):
    document: dict = {}
    server, issuer = _serve(document)
    document["issuer"] = issuer
    document.update({key: f"{issuer}/{key}" for key in discovery.ENDPOINTS.values()})
    try:
        with override_settings(**{**OIDC, "EDOBS_OIDC_ISSUER": issuer}):
            denied = client.get("/oidc/callback/?error=access_denied&state=x")
            assert denied.status_code == 403 and b"did not sign you in" in denied.content
            unknown = client.get("/oidc/callback/?code=a&state=b")  # no sign-in started here
            assert unknown.status_code == 403 and b"did not complete" in unknown.content
            client.get("/oidc/authenticate/")  # a sign-in started, then a forged state
            forged = client.get("/oidc/callback/?code=a&state=forged")
            assert forged.status_code == 403 and b"did not pass our checks" in forged.content
            assert client.get("/api/jobs").status_code in (401, 403)
    finally:
        server.shutdown()

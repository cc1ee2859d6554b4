"""Single sign-on through a real OpenID provider, in Chromium.

The provider (tests/oidc_provider: django-oauth-toolkit, RS256) and edobs (daphne, configured
with EDOBS_OIDC_ISSUER) run as their own processes on 127.0.0.1.  Three accounts hold jobs;
the teams `payments` and `search` are granted one each, `ops` the third.  The provider's
`groups` claim is rewritten between sign-ins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.dashboards.test_browser import (  # noqa: F401 (browser: a fixture)
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    _manage,
    _stop,
    browser,
    realistic_envelopes,
    wait_for,
)
from tests.oidc_provider import PASSWORD as PROVIDER_PASSWORD
from tests.oidc_provider import write_state
from tests.services import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID, CLIENT_SECRET = "edobs-test-client", "edobs-test-secret-" + "s" * 20
ROOT_USER, ROOT_PASSWORD = "breakglass", "breakglass-passw0rd"
ACCOUNTS = {"payments": "111111111111", "search": "222222222222", "ops": "333333333333"}
SAMPLE_ACCOUNT = "123456789012"
# Both were answering 8.6 s after daphne started (load average 10 on 2 cores shared with other
# test runs): the provider migrates and makes an RSA key meanwhile. 60 s leaves room for worse.
START_TIMEOUT = 60

SETUP = """
import json, os
from events.ingest.services import InboundMessage, event_ingest
from events.models import Team
for name, account in json.loads(os.environ["TEST_TEAMS"]).items():
    Team.objects.create(name=name).accounts.create(account=account)
lines = open(os.environ["TEST_EVENTS"]).read().splitlines()
report = event_ingest(messages=[InboundMessage(body=line) for line in lines])
assert set(report.outcomes) <= {"stored", "duplicate"}, report.outcomes
"""

WHO = """
import json
from django.contrib.auth.models import User
print(json.dumps([
    {"username": u.username, "usable_password": u.has_usable_password(), "staff": u.is_staff,
     "superuser": u.is_superuser, "teams": sorted(u.teams.values_list("name", flat=True)),
     "sub": getattr(getattr(u, "oidc_identity", None), "subject", None)}
    for u in User.objects.order_by("pk")
]))
"""


def envelopes_in_every_account() -> list[str]:
    """The demo jobs once per account: their ARNs and `account` moved to it, new event ids."""
    lines = []
    for account in ACCOUNTS.values():
        for envelope in realistic_envelopes():
            text = json.dumps(envelope).replace(SAMPLE_ACCOUNT, account)
            moved = json.loads(text)
            moved["id"] = str(uuid.uuid4())
            lines.append(json.dumps(moved))
    return lines


def run_shell(env: dict, code: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
        check=True, timeout=120, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout


class OidcSite:
    def __init__(self, base: str, provider: str, state_dir: Path, env: dict) -> None:
        self.base, self.provider, self.state_dir, self.env = base, provider, state_dir, env

    def claim(self, users: dict[str, list[str]], tamper: bool = False) -> None:
        write_state(self.state_dir, {"users": users, "tamper": tamper})

    def users(self) -> dict[str, dict]:
        rows = json.loads(run_shell(self.env, WHO).strip().splitlines()[-1])
        return {row["username"]: row for row in rows}


def _get(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


@pytest.fixture(scope="module")
def oidc_site():
    tmp = Path(tempfile.mkdtemp(prefix="edobs-oidc-"))
    state_dir = tmp / "provider"
    state_dir.mkdir()
    provider_port, web_port = free_port(), free_port()
    base, provider = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{provider_port}"
    write_state(state_dir, {"users": {"alice": ["payments", "no-such-team"]}, "tamper": False})
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    env.update(
        EDOBS_VAR_DIR=str(tmp), EDOBS_STORE="orm", DJANGO_DEBUG="false", PYTHONUNBUFFERED="1",
        DJANGO_SUPERUSER_PASSWORD=ROOT_PASSWORD, EDOBS_OIDC_ISSUER=f"{provider}/o",
        EDOBS_OIDC_CLIENT_ID=CLIENT_ID, EDOBS_OIDC_CLIENT_SECRET=CLIENT_SECRET,
        EDOBS_OIDC_NAME="Test IdP",
    )  # fmt: skip
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.oidc_provider.serve", str(provider_port),
             f"{base}/oidc/callback/", CLIENT_ID, CLIENT_SECRET],
            cwd=ROOT, env={**env, "EDOBS_TEST_OIDC_DIR": str(state_dir)},
            stdout=open(tmp / "provider.log", "wb"), stderr=subprocess.STDOUT,
        ))  # fmt: skip
        _manage(env, "migrate", "--noinput")
        _manage(env, "createsuperuser", "--noinput", "--username", ROOT_USER, "--email", "r@x.test")
        events = tmp / "events.jsonl"
        events.write_text("\n".join(envelopes_in_every_account()))
        run_shell({**env, "TEST_TEAMS": json.dumps(ACCOUNTS), "TEST_EVENTS": str(events)}, SETUP)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(web_port),
             "edobs_site.asgi:application"],
            cwd=ROOT, env=env, stdout=open(tmp / "daphne.log", "wb"), stderr=subprocess.STDOUT,
        ))  # fmt: skip
        started = time.monotonic()
        wait_for(lambda: _get(f"{provider}/o/.well-known/openid-configuration"),
                 START_TIMEOUT, "the OpenID provider")  # fmt: skip
        wait_for(lambda: _get(f"{base}/accounts/login/"), START_TIMEOUT, "daphne")
        sys.stderr.write(f"provider and daphne up {time.monotonic() - started:.1f} s after\n")
        yield OidcSite(base, provider, state_dir, env)
    finally:
        _stop(procs)
        for name in ("provider.log", "daphne.log"):
            path = tmp / name
            if path.exists():
                tail = path.read_text(errors="replace")[-3000:]
                sys.stderr.write(f"--- {name} (tail) ---\n{tail}\n")


@pytest.fixture
def context(browser):  # noqa: F811 (the imported fixture)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


def sign_in_with_provider(page, site: OidcSite, username: str) -> None:
    """From a signed-out page: the login page's provider button, the provider's own form."""
    page.goto(f"{site.base}/")
    page.wait_for_url(f"{site.base}/accounts/login/?next=/")
    page.click("a[data-sso]")
    page.wait_for_url(f"{site.provider}/accounts/login/**")
    page.fill("#provider-username", username)
    page.fill("#provider-password", PROVIDER_PASSWORD)
    page.click("#provider-submit")


def accounts_listed(page) -> set[str]:
    ids = page.eval_on_selector_all(
        "#jobs-body tr[data-job-id]", "rows => rows.map(r => r.dataset.jobId)"
    )
    return {job_id.split(":")[0] for job_id in ids}


def test_it_signs_in_through_the_provider_and_shows_only_the_claimed_teams_accounts(
    oidc_site, context
):
    oidc_site.claim({"alice": ["payments", "no-such-team"]})
    page = context.new_page()
    sign_in_with_provider(page, oidc_site, "alice")
    page.wait_for_url(f"{oidc_site.base}/")
    assert accounts_listed(page) == {ACCOUNTS["payments"]}
    alice = oidc_site.users()["alice"]
    assert alice["teams"] == ["payments"]  # the claim's unknown name made no team
    assert not alice["usable_password"] and not alice["staff"] and not alice["superuser"]
    assert alice["sub"]


def test_it_sets_the_teams_again_from_the_claim_at_the_next_sign_in(oidc_site, browser):  # noqa: F811
    expected = [(["search", "ops"], {ACCOUNTS["search"], ACCOUNTS["ops"]}), (["nobody"], set())]
    for groups, accounts in expected:
        oidc_site.claim({"alice": groups})
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        try:
            page = context.new_page()
            sign_in_with_provider(page, oidc_site, "alice")
            page.wait_for_url(f"{oidc_site.base}/")
            assert accounts_listed(page) == accounts, groups
        finally:
            context.close()
    users = oidc_site.users()
    assert users["alice"]["teams"] == []
    assert [name for name in users if name.startswith("alice")] == ["alice"]  # one user, by sub


def test_it_refuses_a_tampered_id_token(oidc_site, context):
    oidc_site.claim({"alice": ["payments"]}, tamper=True)
    try:
        page = context.new_page()
        sign_in_with_provider(page, oidc_site, "alice")
        page.wait_for_url(f"{oidc_site.base}/oidc/callback/**")
        refusal = page.locator("[data-sso-refused]")
        assert "did not pass our checks" in refusal.inner_text()
        # The session holds only the sign-in's state: no user, so the API and pages refuse it.
        assert page.request.get(f"{oidc_site.base}/api/jobs").status in (401, 403)
        page.goto(f"{oidc_site.base}/")
        page.wait_for_url(f"{oidc_site.base}/accounts/login/?next=/")
        assert not any("ops" in user["teams"] for user in oidc_site.users().values())
    finally:
        oidc_site.claim({"alice": ["payments"]})


@pytest.mark.parametrize("width", [1440, 390])
def test_the_login_page_offers_the_provider_first_and_the_password_still_works(
    oidc_site,
    browser,  # noqa: F811 (the imported fixture)
    width,
):
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(f"{oidc_site.base}/accounts/login/")
        button = page.locator("a[data-sso]")
        assert button.inner_text() == "Sign in with Test IdP"
        sso_box, form_box = button.bounding_box(), page.locator("form.stack").bounding_box()
        assert sso_box["y"] + sso_box["height"] <= form_box["y"]
        assert sso_box["x"] >= 0 and sso_box["x"] + sso_box["width"] <= width
        page.fill("input[name=username]", ROOT_USER)
        page.fill("input[name=password]", ROOT_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{oidc_site.base}/")
        assert accounts_listed(page) == set(ACCOUNTS.values())  # a superuser sees every account
    finally:
        context.close()

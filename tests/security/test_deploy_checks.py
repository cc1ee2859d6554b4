"""What must never reach production: `manage.py check --deploy` refuses it, and settings with
DJANGO_HTTPS=true refuse to load at all; a safe production config turns on the protections."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management.utils import get_random_secret_key

from edobs_site.safety import production_problems
from events.checks import check_production

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k7Qp2vX9mZr4Tt8wYb3Nc6Hj1Lf5Dg0Sa2Ue7Ko9Ri4Wq8Ex3Zy6Vm1Bn5Pl0Cs"
SAFE_ENV = {"DJANGO_SECRET_KEY": STRONG_KEY, "DJANGO_ALLOWED_HOSTS": "edobs.example.com"}
UNSAFE = {
    "no key": ({"DJANGO_SECRET_KEY": ""}, "events.E002"),
    "debug": ({"DJANGO_DEBUG": "true"}, "events.E008"),
    "demo": ({"EDOBS_DEMO": "true"}, "events.E009"),
    "short key": ({"DJANGO_SECRET_KEY": "s3cr3t-but-short"}, "events.E010"),
    "plain key": ({"DJANGO_SECRET_KEY": "ab" * 40}, "events.E010"),
    "django's template key": (
        {"DJANGO_SECRET_KEY": "django-insecure-" + STRONG_KEY},
        "events.E011",
    ),
    "placeholder": ({"DJANGO_SECRET_KEY": STRONG_KEY + "-changeme"}, "events.E011"),
    "any host": ({"DJANGO_ALLOWED_HOSTS": "edobs.example.com,*"}, "events.E012"),
    # 55 characters, 5 distinct: long enough and varied enough by count, 128 bits at most.
    "low-entropy key": ({"DJANGO_SECRET_KEY": "aebcd" * 11}, "events.E010"),
    # Varied characters in a pattern: by frequencies alone 155, 256 and 253 bits.
    "repeated short key": ({"DJANGO_SECRET_KEY": "abc123" * 10}, "events.E010"),
    "repeated hex digits": ({"DJANGO_SECRET_KEY": "0123456789abcdef" * 4}, "events.E010"),
    "repeated password": ({"DJANGO_SECRET_KEY": "MyDashboardPassword2024!" * 3}, "events.E010"),
    "alphabet in order": (
        {"DJANGO_SECRET_KEY": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"},
        "events.E010",
    ),
    "host wildcard on a public suffix": ({"DJANGO_ALLOWED_HOSTS": ".com"}, "events.E027"),
    "host wildcard on two-label suffix": ({"DJANGO_ALLOWED_HOSTS": ".co.uk"}, "events.E027"),
    "host wildcard on a shared host": ({"DJANGO_ALLOWED_HOSTS": ".github.io"}, "events.E027"),
    "host wildcard on one label": ({"DJANGO_ALLOWED_HOSTS": ".internal"}, "events.E027"),
    "origin wildcard on a public suffix": (
        {"DJANGO_CSRF_TRUSTED_ORIGINS": "https://*.com"}, "events.E028",
    ),
    "origin wildcard on one label": (
        {"DJANGO_CSRF_TRUSTED_ORIGINS": "https://*.corp"}, "events.E028",
    ),
    "http origin under https": (
        {"DJANGO_CSRF_TRUSTED_ORIGINS": "http://evil.example"}, "events.E029",
    ),
}  # fmt: skip
SAFE_VARIANTS = {
    "DJANGO_ALLOWED_HOSTS": ".example.com,edobs.example.co.uk",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://*.example.com,https://edobs.example.com:8443",
}


@pytest.fixture
def safe(settings):
    settings.SECRET_KEY, settings.SECRET_KEY_FROM_ENV = STRONG_KEY, True
    settings.DEBUG = settings.EDOBS_DEMO = False
    settings.ALLOWED_HOSTS = ["edobs.example.com"]
    settings.CSRF_TRUSTED_ORIGINS, settings.PRODUCTION = [], True
    return settings


def apply(settings, env: dict) -> None:
    """The settings an environment would give, on the test's settings."""
    if "DJANGO_SECRET_KEY" in env:
        settings.SECRET_KEY = env["DJANGO_SECRET_KEY"] or "generated-in-var-" + STRONG_KEY
        settings.SECRET_KEY_FROM_ENV = bool(env["DJANGO_SECRET_KEY"])
    settings.DEBUG = env.get("DJANGO_DEBUG") == "true"
    settings.EDOBS_DEMO = env.get("EDOBS_DEMO") == "true"
    settings.ALLOWED_HOSTS = env.get("DJANGO_ALLOWED_HOSTS", "edobs.example.com").split(",")
    settings.CSRF_TRUSTED_ORIGINS = [
        o for o in env.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o
    ]


def test_it_passes_a_safe_config(safe):
    assert check_production(None) == []


def test_it_passes_wildcards_on_the_sites_own_domain_and_generated_keys(safe):
    apply(safe, SAFE_VARIANTS)
    assert check_production(None) == []
    for key in (secrets.token_hex(25), secrets.token_urlsafe(50), get_random_secret_key()):
        apply(safe, {"DJANGO_SECRET_KEY": key})
        assert check_production(None) == [], key
    # The pattern readings (repeats, steps) refuse no generated key either.
    makers = (lambda: secrets.token_hex(25), lambda: secrets.token_urlsafe(50),
              get_random_secret_key)  # fmt: skip
    for key in [make() for make in makers for _ in range(300)]:
        assert production_problems(secret_key=key, key_from_env=True, debug=False, demo=False,
                                   allowed_hosts=["edobs.example.com"]) == [], key  # fmt: skip


def test_http_origins_are_refused_only_under_https(safe):
    apply(safe, {"DJANGO_CSRF_TRUSTED_ORIGINS": "http://edobs.example.com"})
    safe.PRODUCTION = False
    assert check_production(None) == []


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_it_refuses_each_unsafe_setting(safe, case):
    env, check_id = UNSAFE[case]
    apply(safe, env)

    assert [error.id for error in check_production(None)] == [check_id]


def run(code: list[str], env: dict, tmp_path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "EDOBS_"))}
    clean |= {"EDOBS_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "edobs_site.settings"}
    return subprocess.run(
        [sys.executable, *code], cwd=ROOT, env=clean | env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_check_deploy_fails_on_an_unsafe_config(tmp_path):
    env = SAFE_ENV | {"DJANGO_SECRET_KEY": "changeme", "DJANGO_ALLOWED_HOSTS": "*"}

    result = run(["manage.py", "check", "--deploy"], env, tmp_path)

    assert result.returncode == 1
    for check_id in ("events.E010", "events.E011", "events.E012"):
        assert check_id in result.stderr


SHOW = "import edobs_site.settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, \
s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER)"


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_production_settings_refuse_to_load_unsafe(tmp_path, case):
    env, check_id = UNSAFE[case]

    result = run(["-c", SHOW], SAFE_ENV | env | {"DJANGO_HTTPS": "true"}, tmp_path)

    assert result.returncode == 1
    assert "ImproperlyConfigured" in result.stderr
    assert check_id in result.stderr


def test_production_settings_turn_on_the_protections(tmp_path):
    result = run(["-c", SHOW], SAFE_ENV | {"DJANGO_HTTPS": "true"}, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True True True 3600 ('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.parametrize("variants", [{}, SAFE_VARIANTS])
def test_check_deploy_passes_a_safe_production_config(tmp_path, variants):
    env = SAFE_ENV | variants | {"DJANGO_HTTPS": "true"}
    collected = run(["manage.py", "collectstatic", "--noinput"], env, tmp_path)  # production does
    assert collected.returncode == 0, collected.stderr

    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)

    assert result.returncode == 0, result.stderr


def test_check_deploy_warns_without_collected_static_files(tmp_path):
    env = SAFE_ENV | {"DJANGO_HTTPS": "true"}

    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)

    assert result.returncode == 1
    assert "events.W050" in result.stderr and "collectstatic" in result.stderr

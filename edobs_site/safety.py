"""What must never reach production, as (check id, message) pairs.

Pure, so it serves twice: settings.py refuses to load with DJANGO_HTTPS=true while any is
found, and `manage.py check --deploy` reports each one (events.checks).
"""

from __future__ import annotations

KEY_MIN_LENGTH = 50
KEY_MIN_DISTINCT = 5
# Keys copied from a template, a tutorial or a test rather than generated.
KEY_PREFIXES = ("django-insecure-",)
KEY_PLACEHOLDERS = (
    "changeme", "change-me", "change_me", "replaceme", "replace-me", "replace_me", "insecure",
    "notsecret", "not-secret", "not_secret", "example", "dummy", "your-secret", "your_secret",
)  # fmt: skip
KEY_COMMON = {"secret", "secretkey", "secret-key", "secret_key", "password", "django", "test"}


NO_KEY = "DJANGO_SECRET_KEY is not set: the generated key in var/ is for local use only."
WEAK_KEY = f"DJANGO_SECRET_KEY is too short or too plain: use {KEY_MIN_LENGTH}+ random characters."
KNOWN_KEY = "DJANGO_SECRET_KEY is a well-known placeholder, not a generated key."
ANY_HOST = "DJANGO_ALLOWED_HOSTS contains '*': name the site's hosts."


def production_problems(
    *, secret_key: str, key_from_env: bool, debug: bool, demo: bool, allowed_hosts: list[str]
) -> list[tuple[str, str]]:
    problems = _key_problems(secret_key, key_from_env)
    if debug:
        problems.append(("events.E008", "DJANGO_DEBUG is on."))
    if demo:
        problems.append(("events.E009", "EDOBS_DEMO is on (it creates a demo login)."))
    if "*" in allowed_hosts:
        problems.append(("events.E012", ANY_HOST))
    return problems


def _key_problems(secret_key: str, key_from_env: bool) -> list[tuple[str, str]]:
    if not key_from_env:
        return [("events.E002", NO_KEY)]
    problems = []
    if len(secret_key) < KEY_MIN_LENGTH or len(set(secret_key)) < KEY_MIN_DISTINCT:
        problems.append(("events.E010", WEAK_KEY))
    if well_known_key(secret_key):
        problems.append(("events.E011", KNOWN_KEY))
    return problems


def well_known_key(secret_key: str) -> bool:
    key = secret_key.strip().lower()
    return (
        key in KEY_COMMON
        or key.startswith(KEY_PREFIXES)
        or any(word in key for word in KEY_PLACEHOLDERS)
    )

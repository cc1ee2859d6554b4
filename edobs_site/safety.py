"""What must never reach production, as (check id, message) pairs.

Pure, so it serves twice: settings.py refuses to load with DJANGO_HTTPS=true while any is
found, and `manage.py check --deploy` reports each one (events.checks).
"""

from __future__ import annotations

import math
from collections import Counter
from functools import cache
from urllib.parse import urlsplit

KEY_MIN_LENGTH = 50
KEY_MIN_DISTINCT = 5
# Bits by the key's own character frequencies (length x Shannon entropy per character): a
# generated key of 50+ characters has about 190 or more (50 hex digits: 165 at the least in
# 2,000 tries), while 55 characters of 5 letters have 128.
KEY_MIN_BITS = 150
# Keys copied from a template, a tutorial or a test rather than generated.
KEY_PREFIXES = ("django-insecure-",)
KEY_PLACEHOLDERS = (
    "changeme", "change-me", "change_me", "replaceme", "replace-me", "replace_me", "insecure",
    "notsecret", "not-secret", "not_secret", "example", "dummy", "your-secret", "your_secret",
)  # fmt: skip
KEY_COMMON = {"secret", "secretkey", "secret-key", "secret_key", "password", "django", "test"}


NO_KEY = "DJANGO_SECRET_KEY is not set: the generated key in var/ is for local use only."
WEAK_KEY = (
    f"DJANGO_SECRET_KEY is too short or too plain (under {KEY_MIN_BITS} bits by its character "
    f"frequencies): use {KEY_MIN_LENGTH}+ random characters."
)
KNOWN_KEY = "DJANGO_SECRET_KEY is a well-known placeholder, not a generated key."
ANY_HOST = "DJANGO_ALLOWED_HOSTS contains '*': name the site's hosts."
WIDE_HOST = (
    "DJANGO_ALLOWED_HOSTS holds {hosts}: a wildcard on a public suffix (or on fewer than two "
    "labels) admits anyone's domain; name the site's own domain."
)
WIDE_ORIGIN = (
    "DJANGO_CSRF_TRUSTED_ORIGINS holds {origins}: a wildcard on a public suffix (or on fewer "
    "than two labels) trusts anyone's domain; name the site's own origin."
)
PLAIN_ORIGIN = (
    "DJANGO_CSRF_TRUSTED_ORIGINS holds {origins}: with DJANGO_HTTPS=true every trusted origin "
    "must be https://."
)


def production_problems(
    *, secret_key: str, key_from_env: bool, debug: bool, demo: bool, allowed_hosts: list[str],
    csrf_trusted_origins: list[str] = (), https: bool = True,  # type: ignore[assignment]
) -> list[tuple[str, str]]:  # fmt: skip
    problems = _key_problems(secret_key, key_from_env)
    if debug:
        problems.append(("events.E008", "DJANGO_DEBUG is on."))
    if demo:
        problems.append(("events.E009", "EDOBS_DEMO is on (it creates a demo login)."))
    if "*" in allowed_hosts:
        problems.append(("events.E012", ANY_HOST))
    return problems + _origin_problems(allowed_hosts, list(csrf_trusted_origins), https)


def _origin_problems(hosts: list[str], origins: list[str], https: bool) -> list[tuple[str, str]]:
    problems = []
    wide_hosts = [host for host in hosts if host.startswith(".") and too_wide(host[1:])]
    if wide_hosts:
        problems.append(("events.E027", WIDE_HOST.format(hosts=", ".join(wide_hosts))))
    wide = [origin for origin in origins if _origin_too_wide(origin)]
    if wide:
        problems.append(("events.E028", WIDE_ORIGIN.format(origins=", ".join(wide))))
    plain = [origin for origin in origins if https and not origin.lower().startswith("https://")]
    if plain:
        problems.append(("events.E029", PLAIN_ORIGIN.format(origins=", ".join(plain))))
    return problems


def _origin_too_wide(origin: str) -> bool:
    """`https://*.example.com` is a wildcard on example.com (Django's CSRF_TRUSTED_ORIGINS)."""
    host = urlsplit(origin).netloc.rsplit("@", 1)[-1].split(":", 1)[0]
    return host.startswith("*") and too_wide(host.lstrip("*").lstrip("."))


def too_wide(domain: str) -> bool:
    """Whether a wildcard on `domain` covers other people's sites: fewer than two labels, or
    a public suffix (`com`, `co.uk`, `github.io`) by the Public Suffix List's offline copy
    that the publicsuffixlist package bundles (it never fetches)."""
    domain = domain.strip(".").lower()
    if domain.count(".") < 1:
        return True
    return _suffixes().is_public(domain)


@cache
def _suffixes():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def _key_problems(secret_key: str, key_from_env: bool) -> list[tuple[str, str]]:
    if not key_from_env:
        return [("events.E002", NO_KEY)]
    problems = []
    if (
        len(secret_key) < KEY_MIN_LENGTH
        or len(set(secret_key)) < KEY_MIN_DISTINCT
        or key_bits(secret_key) < KEY_MIN_BITS
    ):
        problems.append(("events.E010", WEAK_KEY))
    if well_known_key(secret_key):
        problems.append(("events.E011", KNOWN_KEY))
    return problems


def key_bits(secret_key: str) -> float:
    """A cheap estimate of the key's entropy, the least of three readings: its length times
    the Shannon entropy of its character frequencies (55 characters of 5 letters: 128), the
    same of its one repeating unit (`abc123` ten times is `abc123`'s 15, where its 60
    characters' frequencies say 155), and the same of the steps between neighbouring
    characters (an alphabet in order steps by 1: about 7). Generated keys of 50+ characters
    read 170 or more in each (5,000 tries each of token_hex(25), token_urlsafe and Django's
    get_random_secret_key), the steps never below the frequencies."""
    unit = secret_key[: _period(secret_key)]
    steps = [ord(b) - ord(a) for a, b in zip(secret_key, secret_key[1:], strict=False)]
    return min(_frequency_bits(secret_key), _frequency_bits(unit), _frequency_bits(steps))


def _frequency_bits(items) -> float:
    counts, size = Counter(items), len(items)
    per_item = -sum(n / size * math.log2(n / size) for n in counts.values()) if size else 0.0
    return size * per_item


def _period(text: str) -> int:
    """The length of the shortest unit that `text` repeats (a last copy may be cut short)."""
    for size in range(1, len(text) // 2 + 1):
        if all(text[i] == text[i - size] for i in range(size, len(text))):
            return size
    return len(text)


def well_known_key(secret_key: str) -> bool:
    key = secret_key.strip().lower()
    return (
        key in KEY_COMMON
        or key.startswith(KEY_PREFIXES)
        or any(word in key for word in KEY_PLACEHOLDERS)
    )

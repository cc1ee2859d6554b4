"""System checks of the OpenID Connect settings (events.E070-E074, with the project's ids)."""

import ipaddress
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, register

# An OIDC claim name: what a provider may put in a token (no spaces, no dots)
CLAIM_NAME = re.compile(r"[A-Za-z0-9_:/\-]{1,100}", re.ASCII)


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


@register(Tags.security)
def check_oidc(app_configs, **kwargs):
    issuer = settings.EDOBS_OIDC_ISSUER
    client = settings.EDOBS_OIDC_CLIENT_ID, settings.EDOBS_OIDC_CLIENT_SECRET
    if not issuer:
        if any(client):
            return [Error(
                "EDOBS_OIDC_CLIENT_ID/EDOBS_OIDC_CLIENT_SECRET are set but EDOBS_OIDC_ISSUER "
                "is not: single sign-on is off.", hint="Set EDOBS_OIDC_ISSUER too, or unset them.",
                id="events.E072",
            )]  # fmt: skip
        return []
    errors = []
    if not all(client):
        errors.append(Error(
            "EDOBS_OIDC_ISSUER is set: it needs EDOBS_OIDC_CLIENT_ID and EDOBS_OIDC_CLIENT_SECRET "
            "(the client registered at the provider).", id="events.E070",
        ))  # fmt: skip
    errors += _issuer_errors(issuer)
    if not CLAIM_NAME.fullmatch(settings.EDOBS_OIDC_TEAMS_CLAIM):
        errors.append(Error(
            f"EDOBS_OIDC_TEAMS_CLAIM {settings.EDOBS_OIDC_TEAMS_CLAIM!r} is not a claim name.",
            id="events.E073",
        ))  # fmt: skip
    if "openid" not in settings.EDOBS_OIDC_SCOPES.split():
        errors.append(Error(
            "EDOBS_OIDC_SCOPES must include `openid`: without it there is no ID token.",
            id="events.E074",
        ))  # fmt: skip
    return errors


def _issuer_errors(issuer: str) -> list[Error]:
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        return [Error(
            f"EDOBS_OIDC_ISSUER {issuer!r} is not an issuer URL (https://host[/path]).",
            id="events.E071",
        )]  # fmt: skip
    if parts.scheme == "http" and not (settings.DEBUG or is_loopback(parts.hostname)):
        return [Error(
            "EDOBS_OIDC_ISSUER must be https: tokens and keys fetched over plain http can be "
            "swapped on the way.", hint="http is allowed only for a loopback provider or DEBUG.",
            id="events.E071",
        )]  # fmt: skip
    return []

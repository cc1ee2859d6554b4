"""The provider's endpoints from OpenID Connect discovery, fetched at first use.

mozilla-django-oidc reads fixed `OIDC_OP_*` settings; edobs asks only for the issuer and reads
`<issuer>/.well-known/openid-configuration` once per process, kept DISCOVERY_TTL seconds so a
provider's moved endpoints or keys are picked up without a restart.  A document whose `issuer`
is not EDOBS_OIDC_ISSUER is refused (OpenID Connect Discovery 1.0, section 4.3): otherwise a
look-alike document could point the sign-in at another provider's keys.
"""

import logging
import threading
import time

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

DISCOVERY_TTL = 3600  # seconds
TIMEOUT = 10  # seconds, for every request to the provider
# mozilla-django-oidc's setting -> the discovery document's key
ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}

_lock = threading.Lock()
_cache: dict[str, tuple[float, dict]] = {}


class DiscoveryFailed(ImproperlyConfigured):
    """The provider's discovery document could not be read or is not the issuer's (an
    ImproperlyConfigured: mozilla-django-oidc's code raises that for a missing endpoint)."""


def enabled() -> bool:
    return bool(settings.EDOBS_OIDC_ISSUER)


def issuer() -> str:
    return settings.EDOBS_OIDC_ISSUER.rstrip("/")


def provider_config() -> dict:
    """The discovery document of EDOBS_OIDC_ISSUER (cached). Raises DiscoveryFailed."""
    wanted = issuer()
    with _lock:
        cached = _cache.get(wanted)
        if cached and cached[0] > time.monotonic():
            return cached[1]
    document = _fetch(wanted)
    with _lock:
        _cache[wanted] = (time.monotonic() + DISCOVERY_TTL, document)
    return document


def forget() -> None:
    """Drop the cached documents (tests; a provider that moved)."""
    with _lock:
        _cache.clear()


def _fetch(wanted: str) -> dict:
    url = f"{wanted}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        logger.warning("OpenID Connect discovery at %s failed: %s", url, error)
        raise DiscoveryFailed(f"the discovery document at {url} could not be read") from error
    if not isinstance(document, dict) or str(document.get("issuer", "")).rstrip("/") != wanted:
        raise DiscoveryFailed(f"the discovery document at {url} is not issuer {wanted}'s")
    missing = [key for key in ENDPOINTS.values() if not document.get(key)]
    if missing:
        raise DiscoveryFailed(f"the discovery document at {url} has no {', '.join(missing)}")
    return document


def oidc_setting(name: str, *default):
    """A mozilla-django-oidc setting: the endpoints from discovery, the rest from settings."""
    if name in ENDPOINTS:
        return provider_config()[ENDPOINTS[name]]
    if default:
        return getattr(settings, name, default[0])
    try:
        return getattr(settings, name)
    except AttributeError:
        raise ImproperlyConfigured(f"Setting {name} not found") from None

"""WebSocket origin check: a socket opens only from a page of this very site.

Channels' AllowedHostsOriginValidator compares only the Origin's host with ALLOWED_HOSTS, so a
page served on another port or scheme of an allowed host (http://127.0.0.1:8399) could open
ws://127.0.0.1:8300/ws/events/ with the user's session cookie.  Here, in order:

1. the request's Host header must name a host in ALLOWED_HOSTS (as Django requires of HTTP);
2. the Origin header must be present and parse as scheme://host[:port];
3. it must equal the site as the browser reached it: the socket's scheme (ws -> http,
   wss -> https, or https when SECURE_PROXY_SSL_HEADER is set and the proxy's header says so,
   as Django's request.is_secure()), the Host's host and its port (80/443 when omitted);
4. or else match an entry of CSRF_TRUSTED_ORIGINS (exactly, or `scheme://*.domain`): the same
   trust a cross-origin form post gets.

A refused socket is denied before the handshake (the browser sees HTTP 403).
"""

from __future__ import annotations

import logging
from typing import NamedTuple
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import is_same_domain, split_domain_port, validate_host

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


class SameOriginValidator:
    """ASGI middleware for WebSocket scopes: refuse any Origin but the site's own."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("SameOriginValidator only guards WebSocket connections")
        if origin_allowed(scope):
            return await self.app(scope, receive, send)
        logger.info("refused a socket on %s from origin %r", scope.get("path"), _origin(scope))
        return await WebsocketDenier()(scope, receive, send)


def origin_allowed(scope: dict) -> bool:
    site = site_origin(scope)
    if site is None:
        return False
    raw = _origin(scope)
    origin = parse_origin(raw)
    if origin is None:
        return False
    return origin == site or trusted(raw)


def site_origin(scope: dict) -> Origin | None:
    """The site as the browser reached it, or None when the Host is missing or not allowed."""
    host, port = split_domain_port(_header(scope, b"host") or "")
    if not host or not validate_host(host, settings.ALLOWED_HOSTS):
        return None
    scheme = "https" if _secure(scope) else "http"
    return Origin(scheme, host, int(port) if port else DEFAULT_PORTS[scheme])


def parse_origin(value: str | None) -> Origin | None:
    """scheme://host[:port] as an Origin; None for anything else (`null`, a path, a user)."""
    parts = urlsplit((value or "").strip().lower())
    if parts.scheme not in DEFAULT_PORTS or parts.path or parts.query or parts.fragment:
        return None
    host, port = split_domain_port(parts.netloc)  # "" for a user@ or a malformed host
    if not host:
        return None
    return Origin(parts.scheme, host, int(port) if port else DEFAULT_PORTS[parts.scheme])


def trusted(raw: str | None) -> bool:
    """Whether the Origin matches CSRF_TRUSTED_ORIGINS (exact, or `scheme://*.domain`)."""
    origin = (raw or "").strip().lower().rstrip("/")
    scheme, _, netloc = origin.partition("://")
    for pattern in settings.CSRF_TRUSTED_ORIGINS:
        pattern = pattern.lower().rstrip("/")
        if origin == pattern:
            return True
        pattern_scheme, _, pattern_netloc = pattern.partition("://")
        if pattern_netloc.startswith("*") and pattern_scheme == scheme:
            if is_same_domain(netloc, pattern_netloc[1:]):
                return True
    return False


def _secure(scope: dict) -> bool:
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        meta_name, secure_value = proxy
        name = meta_name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
        value = _header(scope, name)
        if value is not None:
            return value.split(",")[0].strip() == secure_value
    return scope.get("scheme", "ws") in ("wss", "https")


def _origin(scope: dict) -> str | None:
    return _header(scope, b"origin")


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return None

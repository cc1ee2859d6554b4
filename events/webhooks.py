"""Where a webhook may post: never into the network edobs runs in, unless allowed (SSRF).

A rule's author picks the URL, and the answer's first bytes are recorded for them to read, so an
unchecked webhook would let them make edobs fetch internal services (the cloud's metadata
address, Redis, edobs itself) and read the answers. A webhook host is therefore resolved, and
refused when any of its addresses is not a public one: loopback, link-local, private,
unique-local (and site-local), shared (CGNAT), multicast, unspecified or reserved, IPv4 and
IPv6 alike, with the IPv4 address embedded in IPv4-mapped, NAT64 (64:ff9b::/96), 6to4 and
Teredo addresses judged too. Networks in EDOBS_WEBHOOK_ALLOWED_NETWORKS (a team's relay on
10.x, tests on 127.0.0.0/8) are allowed.

The rule's form checks when it is saved; delivery checks again (DNS answers change) and then
connects to the address it checked, never to a second lookup of the name, while the Host header,
TLS SNI and the certificate check still use the name (`PinnedHTTPConnection`).
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

EXCERPT = 1000  # bytes of an answer kept

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Python's own flags, in the order a refusal names them (the first that applies).
KINDS = [
    ("is_loopback", "a loopback"),
    ("is_link_local", "a link-local"),
    ("is_multicast", "a multicast"),
    ("is_unspecified", "an unspecified"),
    ("is_private", "a private"),
    ("is_reserved", "a reserved"),
    # fec0::/10, unique-local's deprecated forerunner: Python counts it as global.
    ("is_site_local", "a site-local"),
]
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class WebhookRefused(Exception):
    """The webhook's host is not one edobs may post to; the message says why."""


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart, with the addresses its host was checked at."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[Address, ...]


def parse_networks(values: list[str]) -> tuple[list[Network], list[str]]:
    """The networks of EDOBS_WEBHOOK_ALLOWED_NETWORKS, and the entries that are not CIDRs
    (events.E020 names them; host bits set count as a mistake, not as the network)."""
    networks, bad = [], []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value))
        except ValueError:
            bad.append(value)
    return networks, bad


def allowed_networks() -> list[Network]:
    return parse_networks(settings.EDOBS_WEBHOOK_ALLOWED_NETWORKS)[0]


def embedded_ipv4(ip: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (and reaches through a translator)."""
    if ip.version == 4:
        return []
    found = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [one for one in found if one is not None]


def non_public_kind(ip: Address) -> str | None:
    """Why `ip` is not a public address ("a loopback", ...), or None if it is."""
    if ip.version == 6 and ip in UNIQUE_LOCAL:
        return "a unique-local"
    for flag, kind in KINDS:
        if getattr(ip, flag, False):  # IPv4 has no is_site_local
            return kind
    if ip.version == 4 and ip in CGNAT:
        return "a shared (CGNAT)"
    return None if ip.is_global else "a non-public"


def refusal(ip: Address, allowed: list[Network]) -> str | None:
    """Why edobs may not post to `ip`, or None when it may."""
    if ip.version == 6 and ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%")[0])
    if listed(ip, allowed):
        return None
    inners = embedded_ipv4(ip)
    for inner in inners:
        if not listed(inner, allowed) and (kind := non_public_kind(inner)):
            return f"{ip}, which carries {inner}, {kind} address"
    if inners and all(listed(inner, allowed) for inner in inners):
        return None  # e.g. ::ffff:10.20.3.4 when 10.20.0.0/16 is allowed
    if kind := non_public_kind(ip):
        return f"{ip}, {kind} address"
    return None


def listed(ip: Address, networks: list[Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def resolve(host: str, port: int) -> tuple[Address, ...]:
    """Every address `host` resolves to (an IP literal is itself), in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise LookupError(f"{host} does not resolve: {exc}") from exc
    found = [ipaddress.ip_address(info[4][0]) for info in infos]
    return tuple(dict.fromkeys(found))


def split(url: str) -> tuple[str, str, int, str]:
    """Scheme, host, port and request path (with the query) of an http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise WebhookRefused(f"{url!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused(f"{url!r} is not an http(s) URL with a host")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


def check(url: str) -> Target:
    """The webhook resolved and checked. Raises WebhookRefused (an address edobs may not
    reach) or LookupError (the host does not resolve)."""
    scheme, host, port, path = split(url)
    addresses = resolve(host, port)
    allowed = allowed_networks()
    for ip in addresses:
        if reason := refusal(ip, allowed):
            raise WebhookRefused(
                f"webhook host {host} is at {reason}: edobs does not post into internal "
                "networks unless EDOBS_WEBHOOK_ALLOWED_NETWORKS lists them"
            )
    return Target(scheme, host, port, path, addresses)


def form_error(url: str) -> str | None:
    """What the rule's form says about `url`: a refusal, or None. A name that does not resolve
    now is left to delivery, which checks again and records the error."""
    try:
        check(url)
    except WebhookRefused as exc:
        return str(exc)
    except LookupError:
        return None
    return None


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to `ip`, the address that was checked, not to what `host` resolves to now; the
    Host header still names `host`."""

    def __init__(self, host: str, port: int, *, ip: Address, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self.ip), self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class PinnedHTTPSConnection(PinnedHTTPConnection):
    """As PinnedHTTPConnection, then TLS with SNI and the certificate checked against `host`."""

    default_port = 443

    def __init__(self, host, port, *, ip, timeout, context: ssl.SSLContext | None = None):
        super().__init__(host, port, ip=ip, timeout=timeout)
        self.context = context or ssl.create_default_context()

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)


def connection_to(target: Target, *, timeout: float, context: ssl.SSLContext | None = None):
    """A connection to the first checked address of `target`."""
    ip = target.addresses[0]
    if target.scheme == "https":
        return PinnedHTTPSConnection(target.host, target.port, ip=ip, timeout=timeout,
                                     context=context)  # fmt: skip
    return PinnedHTTPConnection(target.host, target.port, ip=ip, timeout=timeout)


@dataclass(frozen=True)
class Answer:
    status: int | None
    response: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(url: str, body: str, *, timeout: float, context: ssl.SSLContext | None = None) -> Answer:
    """One POST, to an address checked first (events.webhooks); a redirect is an answer
    like any other (http.client follows none), so it is recorded and retried, never followed."""
    try:
        target = check(url)
    except (WebhookRefused, LookupError) as exc:
        return Answer(None, error=f"{type(exc).__name__}: {exc}"[:500])
    connection = connection_to(target, timeout=timeout, context=context)
    headers = {"Content-Type": "application/json", "User-Agent": "edobs-alerts"}
    try:
        connection.request("POST", target.path, body=body.encode(), headers=headers)
        answer = connection.getresponse()
        return Answer(answer.status, _excerpt(answer.read(EXCERPT)))
    except (http.client.HTTPException, OSError, ValueError) as exc:
        return Answer(None, error=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        connection.close()


def _excerpt(data: bytes) -> str:
    return data.decode("utf-8", "replace").replace("\x00", "\ufffd")

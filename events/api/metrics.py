"""GET /metrics: every edobs process's Prometheus samples, for a scraper on an allowed network
or holding EDOBS_METRICS_TOKEN (README "Metrics"); anyone else gets 403.

The address is the connection's REMOTE_ADDR, never X-Forwarded-For (a client writes that).
A request that carries X-Forwarded-For came through a proxy, or says it did: daphne's
--proxy-headers then makes REMOTE_ADDR the header's first entry, which the client may have
written (a proxy that appends keeps it), so such a request needs the token whatever its address.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from events import metrics
from events.ingest.health import newest_heartbeat_age
from events.webhooks import parse_networks

logger = logging.getLogger(__name__)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not scrape_allowed(request):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(HeartbeatCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def scrape_allowed(request: HttpRequest) -> bool:
    """The bearer token (compared in constant time), else the connection's address."""
    token = settings.EDOBS_METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())
    if "HTTP_X_FORWARDED_FOR" in request.META:
        return False
    return address_allowed(request.META.get("REMOTE_ADDR", ""))


def address_allowed(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:  # a dual-stack socket's IPv4 client
        ip = ip.ipv4_mapped
    networks, _ = parse_networks(settings.EDOBS_METRICS_ALLOWED_NETWORKS)
    return any(ip.version == net.version and ip in net for net in networks)


class HeartbeatCollector:
    """edobs_worker_heartbeat_age_seconds, read from the heartbeat rows at scrape time."""

    def collect(self):
        family = GaugeMetricFamily(
            metrics.WORKER_HEARTBEAT_AGE,
            "Seconds since a consume_events worker last wrote its heartbeat (absent: none ever).",
        )
        try:
            age = newest_heartbeat_age()
        except Exception:
            logger.exception("could not read the worker heartbeats for /metrics")
            age = None
        if age is not None:
            family.add_metric([], age)
        yield family

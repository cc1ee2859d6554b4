"""The Prometheus metrics of every edobs process (GET /metrics; README "Metrics").

Multiprocess mode: each process (daphne, consume_events, run_alerts ...) writes its samples to
files under PROMETHEUS_MULTIPROC_DIR, which edobs_site/settings.py sets from EDOBS_METRICS_DIR
before anything imports prometheus_client; the /metrics view adds them up. This module imports
no layer of events/, so every layer may import it (pyproject.toml [tool.importlinter]).

Label values are bounded: an event's source is an attacker's string, so only the configured
sources (EDOBS_RULE_SOURCES) and `aws.states` are labels, every other source is `other`.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
from collections import Counter as Tally
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram, multiprocess

logger = logging.getLogger(__name__)

OTHER = "other"
KNOWN_SOURCES = ("aws.states",)

EVENTS_INGESTED = Counter(
    "edobs_events_ingested", "Events stored (new ones, not duplicates), by source.", ["source"]
)
EVENTS_QUARANTINED = Counter(
    "edobs_events_quarantined", "Messages quarantined, by class of reason.", ["reason"]
)
INGEST_LAG = Histogram(
    "edobs_ingest_lag_seconds",
    "Arrival in edobs minus the event's `at`, per stored event.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
)
INGEST_BATCH = Histogram(
    "edobs_ingest_batch_seconds",
    "Time to ingest one SQS batch (parse, store, quarantine, publish).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WEBSOCKET_CONNECTIONS = Gauge(
    "edobs_websocket_connections",
    "Open live sockets, summed over the server processes.",
    multiprocess_mode="livesum",
)
WEBSOCKET_FRAMES_DROPPED = Counter(
    "edobs_websocket_frames_dropped", "Frames dropped from a full socket outbox."
)
ALERT_OUTCOMES = ("delivered", "retry", "gave_up")
ALERT_DELIVERIES = Counter(
    "edobs_alert_deliveries", "Alert webhook attempts, by outcome.", ["outcome"]
)
# Not a per-process sample: the /metrics view reads the newest heartbeat row when scraped, so a
# dead worker (whose own samples would vanish with it) shows as a growing age.
WORKER_HEARTBEAT_AGE = "edobs_worker_heartbeat_age_seconds"

# Reason classes: the beginnings of the reasons events.ingest.services and the envelope give.
REASON_CLASSES = (
    ("store_refused", re.compile(r"^the store refused it")),
    ("dead_letter", re.compile(r"dead.letter", re.IGNORECASE)),
    ("not_json", re.compile(r"^(empty body|body |envelope must be a JSON|envelope nested)")),
    ("unstorable", re.compile(r"cannot be stored|is longer than")),
)


def source_label(source: str) -> str:
    """The source itself when it is one edobs is configured for, else `other`."""
    if source in KNOWN_SOURCES or source in settings.EDOBS_RULE_SOURCES:
        return source
    return OTHER


def reason_class(reason: str) -> str:
    """A bounded class of a quarantine reason (the reason itself holds attacker text)."""
    for name, pattern in REASON_CLASSES:
        if pattern.search(reason):
            return name
    return "malformed"


def count_ingested(sources: Iterable[str]) -> None:
    """One counter increment per label in the batch, not one per event."""
    for label, number in Tally(source_label(source) for source in sources).items():
        EVENTS_INGESTED.labels(source=label).inc(number)


def count_quarantined(reasons: Iterable[str]) -> None:
    for label, number in Tally(reason_class(reason) for reason in reasons).items():
        EVENTS_QUARANTINED.labels(reason=label).inc(number)


def process_start() -> None:
    """At each process's start (EventsConfig.ready): clean up after the dead, and make every
    label value known up front, so each series is scraped as 0 before its first event (a rate
    over an absent series is no rate at all)."""
    forget_dead_processes()
    for source in {*KNOWN_SOURCES, *settings.EDOBS_RULE_SOURCES, OTHER}:
        EVENTS_INGESTED.labels(source=source)
    for name in {name for name, _ in REASON_CLASSES} | {"malformed"}:
        EVENTS_QUARANTINED.labels(reason=name)
    for outcome in ALERT_OUTCOMES:
        ALERT_DELIVERIES.labels(outcome=outcome)


def forget_dead_processes(directory: str | os.PathLike | None = None) -> list[int]:
    """mark_process_dead for every process whose files are in the directory but which no longer
    runs (prometheus-client's documented clean-up: its live gauges stop counting). Counters
    and histograms of dead processes stay, so totals do not go backwards."""
    path = Path(directory or os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""))
    if not path.is_dir():
        return []
    live = path.glob("gauge_live*.db")  # the only files mark_process_dead removes
    pids = {int(m.group(1)) for f in live if (m := re.search(r"_(\d+)\.db$", f.name))}
    dead = [pid for pid in sorted(pids) if not _running(pid)]
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(path))
    return dead


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _at_exit() -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())


atexit.register(_at_exit)

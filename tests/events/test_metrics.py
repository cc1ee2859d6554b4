"""GET /metrics (events.metrics, events.api.metrics): who may scrape it, what it counts, across
real processes, and the sample alert rules and dashboard in docs/ against a real answer."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import yaml
from django.core.checks import run_checks
from django.test import Client

from events import metrics
from events.live.consumers import Outbox
from events.models import WorkerHeartbeat
from tests.prom import names, own, parse, scrape, value
from tests.services import free_port

from .conftest import QUEUE_NAME, ingest_bodies, malformed_bodies, sample_lines, send_bodies

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "prometheus" / "edobs-rules.yml"
RULES_TEST = ROOT / "docs" / "prometheus" / "edobs-rules-test.yml"
DASHBOARD = ROOT / "docs" / "grafana" / "edobs-dashboard.json"
METRIC = re.compile(r"\bedobs_[a-z_]+")
SUFFIXES = ("_bucket", "_sum", "_count")
REQUIRED = {
    "edobs_events_ingested_total", "edobs_events_quarantined_total",
    "edobs_ingest_lag_seconds_bucket", "edobs_ingest_batch_seconds_bucket",
    "edobs_websocket_connections", "edobs_websocket_frames_dropped_total",
    "edobs_alert_deliveries_total", "edobs_worker_heartbeat_age_seconds",
}  # fmt: skip
OUTSIDE = "203.0.113.9"  # TEST-NET-3: never in the default allow-list


def heartbeat(seconds_ago: float) -> None:
    seen = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    WorkerHeartbeat.objects.create(worker="host:1", started_at=seen, seen_at=seen)


# ---- who may scrape ------------------------------------------------------------------------


def test_only_listed_addresses_or_the_token_may_scrape(settings):
    settings.EDOBS_METRICS_TOKEN = "s3cret-scrape-token"
    client = Client()
    assert client.get("/metrics").status_code == 200  # REMOTE_ADDR 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    refused = client.get("/metrics", REMOTE_ADDR=OUTSIDE)
    assert refused.status_code == 403 and b"edobs_" not in refused.content
    # A client writes X-Forwarded-For: it proves nothing, and behind daphne's --proxy-headers
    # REMOTE_ADDR may be its first entry, so a forwarded request needs the token.
    forwarded = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert forwarded.status_code == 403
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 403
    bearer = "Bearer s3cret-scrape-token"
    proxied = client.get("/metrics", HTTP_X_FORWARDED_FOR=OUTSIDE, HTTP_AUTHORIZATION=bearer)
    assert proxied.status_code == 200
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION=bearer).status_code == 200
    for wrong in ("Bearer s3cret-scrape-tokeN", "Bearer ", "Basic s3cret-scrape-token"):
        answer = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION=wrong)
        assert answer.status_code == 403, wrong
    # A wrong token is refused even from an allowed address.
    wrong = "Bearer nope"
    assert client.get("/metrics", HTTP_AUTHORIZATION=wrong).status_code == 403


def test_the_allow_list_is_a_setting(settings):
    settings.EDOBS_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    client = Client()
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics").status_code == 403  # 127.0.0.1 is no longer listed
    settings.EDOBS_METRICS_TOKEN = ""  # no token configured: a bearer header proves nothing
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


@pytest.mark.parametrize(
    "name, value, check_id",
    [
        ("EDOBS_METRICS_ALLOWED_NETWORKS", ["127.0.0.1/8"], "events.E055"),  # host bits set
        ("EDOBS_METRICS_ALLOWED_NETWORKS", ["localhost"], "events.E055"),
        ("EDOBS_METRICS_DIR", Path("/proc/no-such-dir"), "events.E056"),
    ],
)
def test_the_checks_name_a_bad_metrics_setting(settings, name, value, check_id):
    setattr(settings, name, value)
    assert check_id in {error.id for error in run_checks()}


# ---- what it counts ------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_metric_is_in_the_answer_and_the_heartbeat_age_is_read_when_scraped():
    client = Client()
    assert "edobs_worker_heartbeat_age_seconds" not in names(scrape(client))  # no worker ever
    heartbeat(seconds_ago=90)
    samples = scrape(client)
    assert REQUIRED <= names(samples), REQUIRED - names(samples)
    assert 90 <= value(samples, "edobs_worker_heartbeat_age_seconds") < 90 + 60


@pytest.mark.django_db
def test_ingest_counts_by_bounded_source_and_reason_class(settings, tmp_path):
    settings.EDOBS_RULE_SOURCES = ["project"]
    lines = sample_lines()
    hostile = json.loads(lines[0]) | {"id": "hostile-1", "source": 'evil"} 1\nx{a="'}
    bad = malformed_bodies()
    before = own(tmp_path / "before")
    report = ingest_bodies([*lines, json.dumps(hostile), *bad])
    after = own(tmp_path / "after")

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    stored = [event.source for event in report.new_events]
    assert stored.count("aws.states") > 0
    for source in ("aws.states", "project"):
        assert delta("edobs_events_ingested_total", source=source) == stored.count(source)
    assert delta("edobs_events_ingested_total", source="other") == sum(
        source not in ("aws.states", "project") for source in stored
    )
    labels = {label for _, key in after for _, label in key}
    assert not any("evil" in label for label in labels), labels
    quarantined = sum(
        delta("edobs_events_quarantined_total", reason=dict(key)["reason"])
        for key in {k for (n, k) in after if n == "edobs_events_quarantined_total"}
    )
    assert quarantined == report.counts["quarantined"] == len(bad)
    assert delta("edobs_events_quarantined_total", reason="not_json") >= 1
    assert delta("edobs_ingest_lag_seconds_count") == len(stored)
    assert delta("edobs_ingest_batch_seconds_count") == 1


def test_a_full_outbox_counts_each_dropped_frame(tmp_path):
    before = own(tmp_path / "before")
    outbox = Outbox(2)
    for frame in ("a", "b", "c", "d", "e"):
        outbox.put(frame)
    after = own(tmp_path / "after")
    name = "edobs_websocket_frames_dropped_total"
    assert value(after, name) - value(before, name) == 3


def test_a_dead_servers_open_sockets_stop_counting(tmp_path):
    """A server killed with sockets open leaves its live gauge behind; the next process to
    start forgets it (prometheus-client's mark_process_dead), the counters stay."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    directory = tmp_path / "metrics"
    directory.mkdir()
    for name in ("gauge_livesum", "counter"):
        (directory / f"{name}_{gone.pid}.db").write_bytes(b"")
    (directory / f"gauge_livesum_{os.getpid()}.db").write_bytes(b"")
    assert metrics.forget_dead_processes(directory) == [gone.pid]
    left = sorted(path.name for path in directory.iterdir())
    assert left == sorted([f"counter_{gone.pid}.db", f"gauge_livesum_{os.getpid()}.db"])


# ---- across real processes -----------------------------------------------------------------


def _manage(*args: str, env: dict) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120, check=True,
    ).stdout  # fmt: skip


def _wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 120) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "daphne exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("daphne did not listen")


@pytest.mark.slow
def test_the_servers_answer_counts_what_a_worker_process_stored(moto_endpoint, tmp_path):
    """Multiprocess mode: consume_events --once stores events in its own process and exits;
    daphne, another process, reports its counts."""
    client = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_endpoint)
    url = client.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "EDOBS_QUEUE_URL": url,
        "EDOBS_VAR_DIR": str(tmp_path),
        "EDOBS_METRICS_DIR": str(tmp_path / "metrics"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'edobs.sqlite3'}",
        "EDOBS_STORE": "orm",
        "EDOBS_RULE_SOURCES": "project",
    }
    _manage("migrate", "--noinput", env=env)
    lines = sample_lines()[:20]
    statuses = sum('"aws.states"' in line for line in lines)
    send_bodies(client, url, [*lines, "not json at all"])
    _manage("consume_events", "--once", "--wait", "0", env=env)
    worker_files = sorted(p.name for p in (tmp_path / "metrics").glob("counter_*.db"))
    assert worker_files, "the worker wrote no samples"

    port = free_port()
    log = open(tmp_path / "daphne.log", "w")  # noqa: SIM115  (closed below)
    daphne = subprocess.Popen(
        [str(Path(sys.executable).with_name("daphne")), "-b", "127.0.0.1", "-p", str(port),
         "edobs_site.asgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_for_port(port, daphne)
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"].startswith("text/plain")
            samples = parse(answer.read().decode())
    finally:
        daphne.terminate()
        daphne.wait(timeout=30)
        log.close()
        print((tmp_path / "daphne.log").read_text()[-3000:])
    assert value(samples, "edobs_events_ingested_total", source="aws.states") == statuses
    assert value(samples, "edobs_events_quarantined_total", reason="not_json") == 1
    assert value(samples, "edobs_ingest_lag_seconds_count") == len(lines)
    assert value(samples, "edobs_ingest_batch_seconds_count") >= 1
    assert REQUIRED - {"edobs_worker_heartbeat_age_seconds"} <= names(samples)


# ---- docs/: the sample rules and dashboard -------------------------------------------------


def test_promtool_accepts_the_rules_and_each_alert_fires_when_it_should(promtool_path):
    for command in (["check", "rules", str(RULES)], ["test", "rules", str(RULES_TEST)]):
        run = subprocess.run([promtool_path, *command], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.django_db
def test_every_metric_the_rules_and_dashboard_name_is_in_a_real_answer():
    heartbeat(seconds_ago=1)
    answered = names(scrape(Client()))
    rules = yaml.safe_load(RULES.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"EdobsWorkerDown", "EdobsIngestLagHigh", "EdobsQuarantineRateHigh"} <= alerts
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    board = json.loads(DASHBOARD.read_text())
    exprs += [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    named = set().union(*(METRIC.findall(expr) for expr in exprs))
    assert named and named <= answered, named - answered
    assert REQUIRED <= named | {n + "_bucket" for n in named}, REQUIRED - named

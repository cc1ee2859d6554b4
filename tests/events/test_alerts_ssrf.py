"""Webhooks never reach into edobs's own network unless EDOBS_WEBHOOK_ALLOWED_NETWORKS says so.

The delivery side runs the real `manage.py run_alerts --once` against a real HTTP listener on
127.0.0.1 (refused, then allowed); HTTPS goes to a real TLS listener whose certificate is made
here, so the name check is the ssl module's own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.test import override_settings

from events import webhooks as network
from events.alerts import deliver

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "111111111111"


class Listener:
    """An internal service on 127.0.0.1: counts every connection it accepts and every POST."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None,
                 redirect: str = ""):  # fmt: skip
        self.connections = self.probes = 0
        self.posts: list[tuple[dict, bytes]] = []
        self.accepted = threading.Condition()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                listener.posts.append((dict(self.headers), body))
                answer = b"INTERNAL-SECRET-RESPONSE"
                self.send_response(307 if redirect else 200)
                if redirect:  # 307 and 308 keep the method and body when followed
                    self.send_header("Location", redirect)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            def verify_request(self, request, client_address):
                with listener.accepted:
                    listener.connections += 1
                    listener.accepted.notify_all()
                return True

        self.server = Server((host, port), Handler)
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def connections_so_far(self) -> int:
        """How many connections reached it before now: a probe connection is accepted after
        every earlier one (the backlog is first in, first out), so wait for the probe."""
        with self.accepted:
            before = self.connections
            self.probes += 1
        socket.create_connection(self.server.server_address[:2], timeout=5).close()
        with self.accepted:
            assert self.accepted.wait_for(lambda: self.connections > before, 20)
            return self.connections - self.probes

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    made: list[Listener] = []

    def make(**kwargs) -> Listener:
        made.append(Listener(**kwargs))
        return made[-1]

    yield make
    for one in made:
        one.close()


# ---- the real run_alerts ------------------------------------------------------------------------

SETUP = """
import datetime as dt, json, os
from events.domain.envelope import parse_envelope
from events.models import AlertRule
from events.stores import get_store
# Saved without the form's check, as a rule made before the check, or whose name resolved
# elsewhere when it was saved: delivery must check again.
# It was watching when the job failed (a rule never fires for jobs that ended before).
rule = AlertRule.objects.create(name="internal", webhook_url=os.environ["HOOK_URL"], kind="failed")
AlertRule.objects.filter(pk=rule.pk).update(enabled_at=rule.created_at - dt.timedelta(hours=1))
get_store().ingest([parse_envelope(e, default_account="111111111111")
                    for e in json.loads(os.environ["EVENTS"])])
"""

DELIVERIES = """
import json
from events.models import AlertDelivery
rows = AlertDelivery.objects.order_by("attempt").values(
    "attempt", "status", "response", "error", "next_retry_at", "firing__state")
print(json.dumps(list(rows), default=str))
"""


def failed_job() -> list[dict]:
    """A Step Functions job that ran and failed a minute ago."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
    arn = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:OrderFlow:order-1"
    events = []
    for status, stop in (("RUNNING", None), ("FAILED", start + dt.timedelta(seconds=1))):
        detail = {
            "executionArn": arn, "name": "order-1", "status": status,
            "stateMachineArn": f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:OrderFlow",
            "startDate": int(start.timestamp() * 1000),
            "stopDate": int(stop.timestamp() * 1000) if stop else None,
        }  # fmt: skip
        at = (stop or start).strftime("%Y-%m-%dT%H:%M:%SZ")
        events.append({
            "version": "0", "id": str(uuid.uuid4()), "source": "aws.states",
            "detail-type": "Step Functions Execution Status Change", "account": ACCOUNT,
            "time": at, "region": "us-east-1", "resources": [arn], "detail": detail,
        })  # fmt: skip
    return events


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def deliveries(env: dict) -> list[dict]:
    return json.loads(manage(env, "shell", "-c", DELIVERIES).strip().splitlines()[-1])


@pytest.fixture
def site_env(tmp_path):
    """A fresh edobs (SQLite under tmp_path, the ORM store), with fast retries."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDOBS_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="edobs_site.settings", EDOBS_VAR_DIR=str(tmp_path),
        EDOBS_STORE="orm", DJANGO_SECRET_KEY="ssrf-test-secret", EDOBS_QUEUE_NAME="edobs-ssrf",
        EDOBS_ALERT_BACKOFF_SECONDS="0.05", EDOBS_ALERT_TIMEOUT_SECONDS="10",
        EDOBS_ALERT_GROUP_SECONDS="0",
    )  # fmt: skip
    manage(env, "migrate", "--noinput")
    return env


@pytest.mark.slow
def test_run_alerts_refuses_a_loopback_webhook_and_posts_once_it_is_allowed(listener, site_env):
    internal = listener()
    hook = f"http://127.0.0.1:{internal.port}/api/health"
    manage({**site_env, "HOOK_URL": hook, "EVENTS": json.dumps(failed_job())}, "shell", "-c", SETUP)

    manage(site_env, "run_alerts", "--once")

    [refused] = deliveries(site_env)
    assert internal.connections_so_far() == 0 and internal.posts == []
    assert (refused["status"], refused["response"], refused["firing__state"]) == (
        None, "", "pending"
    )  # fmt: skip
    assert "WebhookRefused" in refused["error"] and "127.0.0.1, a loopback address" in refused[
        "error"
    ] and "EDOBS_WEBHOOK_ALLOWED_NETWORKS" in refused["error"]  # fmt: skip

    # The retry is due when the refusal said it would be; the setting now allows loopback.
    due = dt.datetime.fromisoformat(refused["next_retry_at"])
    time.sleep(max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds()))
    manage({**site_env, "EDOBS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}, "run_alerts", "--once")

    refused_again, delivered = deliveries(site_env)
    assert (delivered["status"], delivered["firing__state"]) == (200, "delivered")
    assert delivered["response"] == "INTERNAL-SECRET-RESPONSE"
    [(headers, body)] = internal.posts
    assert headers["Host"] == f"127.0.0.1:{internal.port}"
    assert json.loads(body)["text"]


# ---- what delivery connects to ------------------------------------------------------------------


def certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` (DNS), and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))  # fmt: skip
    return cert_path, key_path


def tls_pair(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context serving a certificate for `name`, and a client context trusting it
    (and nothing else), with the default hostname check."""
    cert, key = certificate(tmp_path, name)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    server.sni_names = []
    server.sni_callback = lambda sock, sni, ctx: server.sni_names.append(sni)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


@override_settings(EDOBS_WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"])
def test_https_sends_the_name_as_sni_and_verifies_the_certificate_against_it(listener, tmp_path):
    server, client = tls_pair(tmp_path, "localhost")
    hook = listener(tls=server)
    other_server, other_client = tls_pair(tmp_path, "hooks.example.com")
    wrong = listener(tls=other_server)

    good = deliver.post(f"https://localhost:{hook.port}/hook?x=1", '{"a": 1}', timeout=10,
                        context=client)  # fmt: skip
    mismatched = deliver.post(f"https://localhost:{wrong.port}/hook", "{}", timeout=10,
                              context=other_client)  # fmt: skip

    assert (good.status, good.response) == (200, "INTERNAL-SECRET-RESPONSE")
    assert server.sni_names == ["localhost"]
    [(headers, body)] = hook.posts
    assert (headers["Host"], body) == (f"localhost:{hook.port}", b'{"a": 1}')
    assert mismatched.status is None and "SSLCertVerificationError" in mismatched.error
    assert "localhost" in mismatched.error and wrong.posts == []


@override_settings(EDOBS_WEBHOOK_ALLOWED_NETWORKS=["127.0.0.1/32"])
def test_delivery_connects_to_the_address_it_checked_not_to_a_second_lookup(listener, monkeypatch):
    """DNS rebinding: the name answers 127.0.0.1 (allowed) to the check, then 127.0.0.2 (not
    allowed) to any later lookup; the post goes to the checked address only, and once the check
    itself sees 127.0.0.2 the post is refused."""
    checked = listener()
    rebound = listener(host="127.0.0.2", port=checked.port)
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"])

    def rebinding(host, port, *args, **kwargs):
        if host == "hooks.rebind.test":
            host = next(answers, "127.0.0.2")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    answer = deliver.post(f"http://hooks.rebind.test:{checked.port}/hook", "{}", timeout=10)

    assert answer.status == 200
    [(headers, _)] = checked.posts
    assert headers["Host"] == f"hooks.rebind.test:{checked.port}"
    assert rebound.connections_so_far() == 0

    # From now on the name answers 127.0.0.2 to the check as well: refused, nothing sent.
    refused = deliver.post(f"http://hooks.rebind.test:{checked.port}/hook", "{}", timeout=10)
    assert refused.status is None and "127.0.0.2, a loopback address" in refused.error
    assert rebound.connections_so_far() == 0 and len(checked.posts) == 1


@override_settings(EDOBS_WEBHOOK_ALLOWED_NETWORKS=["127.0.0.1/32"])
def test_a_redirect_is_recorded_as_the_answer_and_never_followed(listener):
    """An allowed webhook that redirects (307, 308 keep the POST) to an internal service: the
    redirect is the answer, not delivered, and the service is never reached."""
    internal = listener(host="127.0.0.2")
    for target in (f"http://127.0.0.2:{internal.port}/secret", "http://169.254.169.254/"):
        hook = listener(redirect=target)
        answer = deliver.post(f"http://127.0.0.1:{hook.port}/hook", "{}", timeout=10)
        assert (answer.status, answer.ok, len(hook.posts)) == (307, False, 1)
    assert internal.connections_so_far() == 0 and internal.posts == []


# ---- which addresses ----------------------------------------------------------------------------

INTERNAL = [
    "http://127.0.0.1:8310/x", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
    "http://[::1]/", "http://localhost/", "http://2130706433/", "http://0.0.0.0/",
    "http://100.64.0.1/", "http://224.0.0.1/", "http://[fd00::1]/", "http://[fe80::1]/",
    "http://[::ffff:127.0.0.1]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[2002:a00:1::1]/",
    "http://192.168.1.1/", "http://172.16.0.1/", "http://240.0.0.1/", "http://[fec0::1]/",
]  # fmt: skip


@pytest.mark.parametrize("url", INTERNAL)
def test_an_internal_address_is_refused_with_the_reason(url):
    with pytest.raises(network.WebhookRefused, match="EDOBS_WEBHOOK_ALLOWED_NETWORKS"):
        network.check(url)


@pytest.mark.parametrize("url", ["http://93.184.215.14/hook", "https://[2606:4700::1111]/"])
def test_a_public_address_is_allowed(url):
    assert network.check(url).addresses


@override_settings(EDOBS_WEBHOOK_ALLOWED_NETWORKS=["10.20.0.0/16", "fd00::/8"])
def test_listed_networks_are_allowed_and_no_others():
    assert network.check("http://10.20.3.4/relay").addresses
    assert network.check("http://[fd00::5]/relay").addresses
    assert network.check("http://[::ffff:10.20.3.4]/relay").addresses
    with pytest.raises(network.WebhookRefused, match="10.21.0.1, a private address"):
        network.check("http://10.21.0.1/relay")


def test_a_bad_network_in_the_setting_is_a_check_error():
    from events.checks import check_alerts

    with override_settings(EDOBS_WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8", "::1/128"]):
        assert check_alerts(None) == []
    with override_settings(EDOBS_WEBHOOK_ALLOWED_NETWORKS=["10.0.0.1/8", "internal", "::1/129"]):
        [error] = check_alerts(None)
    assert error.id == "events.E020"
    assert "'10.0.0.1/8', 'internal', '::1/129'" in error.msg

"""The one-process demo: embedded AWS, provisioning, worker, traffic and the ASGI server."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model

from events.aws import dynamodb_client, events_client, sqs_client
from events.stores import reset_stores

from .provision import Plan, provision
from .traffic_send import run_traffic

logger = logging.getLogger(__name__)

DEMO_USER = "demo"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo"}


@dataclass
class Demo:
    store: str = "orm"
    concurrency: int = 3
    fail_rate: float = 0.15
    speed: float = 1.0
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    emulator: object | None = None

    def start_emulator(self) -> str:
        """moto's server on a free loopback port; every AWS client of this process uses it."""
        from moto.server import ThreadedMotoServer

        self.emulator = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.emulator.start()
        host, port = self.emulator.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for name, value in FAKE_CREDENTIALS.items():
            os.environ.setdefault(name, value)
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        settings.AWS_ENDPOINT_URL = endpoint
        settings.EDOBS_STORE = self.store
        settings.EDOBS_DEMO = True
        reset_stores()
        return endpoint

    def provision(self) -> Plan:
        dynamo = self.store == "dynamodb"
        plan = Plan(
            queue_name=settings.EDOBS_QUEUE_NAME,
            bus_name=settings.EDOBS_BUS_NAME,
            sources=settings.EDOBS_RULE_SOURCES,
            table_name=settings.EDOBS_TABLE_NAME if dynamo else None,
            with_status_events=True,
        )
        client = dynamodb_client() if dynamo else None
        return provision(plan, sqs=sqs_client(), events=events_client(), dynamodb=client)

    def start_worker(self) -> None:
        from events.ingest.inprocess import start_inprocess_worker

        self.threads.append(start_inprocess_worker(self.stop))

    def start_alerts(self, site_url: str) -> None:
        """The alerts loop (manage.py run_alerts) in a thread; its links point at this site."""
        from events.alerts.runner import start_alerts_thread

        settings.EDOBS_ALERT_SITE_URL = site_url
        self.threads.append(start_alerts_thread(self.stop))

    def start_traffic(self) -> None:
        thread = threading.Thread(target=self._traffic, name="edobs-demo-traffic", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _traffic(self) -> None:
        try:
            run_traffic(
                client=events_client(),
                bus_name=settings.EDOBS_BUS_NAME,
                jobs=0,
                concurrency=self.concurrency,
                fail_rate=self.fail_rate,
                speed=self.speed,
                account=settings.EDOBS_ACCOUNT,
                stop_event=self.stop,
            )
        except Exception:
            if not self.stop.is_set():
                logger.exception("demo traffic stopped")

    def shutdown(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=25)
        if self.emulator is not None:
            self.emulator.stop()


def ensure_demo_user() -> None:
    """demo / demo, a superuser: created in demo mode only."""
    assert settings.EDOBS_DEMO, "the demo login exists in demo mode only"
    user, _ = get_user_model().objects.get_or_create(username=DEMO_USER)
    user.is_staff = user.is_superuser = True
    user.set_password(DEMO_USER)
    user.save()

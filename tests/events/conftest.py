"""Personas (superuser, team member, outsider), a moto SQS queue, and the shared samples."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

import boto3
import pytest
from channels.layers import channel_layers
from django.db import OperationalError
from moto import mock_aws

from events.ingest.services import InboundMessage, event_ingest
from events.models import Team, TeamAccount
from events.stores.locking import lost_lock_race

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
ACCOUNT_A = "123456789012"
ACCOUNT_B = "210987654321"
QUEUE_NAME = "edobs-events"
PASSWORD = "s3cret-passw0rd"


def sample_lines(name: str = "part1_jobs.jsonl") -> list[str]:
    """The non-empty lines of a JSON-lines sample, as SQS bodies."""
    text = (SAMPLES / name).read_text()
    return [line for line in text.splitlines() if line.strip()]


def malformed_bodies() -> list[str]:
    return json.loads((SAMPLES / "malformed_bodies.json").read_text())["bodies"]


def send_bodies(client, url: str, bodies: Iterable[str]) -> int:
    """Send bodies to the queue in batches of 10; returns how many were sent."""
    bodies = list(bodies)
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
        response = client.send_message_batch(QueueUrl=url, Entries=entries)
        assert not response.get("Failed"), response.get("Failed")
    return len(bodies)


def ingest_bodies(bodies: Iterable[str]):
    """Store bodies through the ingest service directly (no queue)."""
    return event_ingest(messages=[InboundMessage(body=body) for body in bodies])


def queue_depth(client, url: str) -> int:
    attributes = client.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


class Queue:
    def __init__(self, client, url: str) -> None:
        self.client = client
        self.url = url

    def send(self, bodies: Iterable[str]) -> int:
        return send_bodies(self.client, self.url, bodies)

    def depth(self) -> int:
        return queue_depth(self.client, self.url)


@pytest.fixture
def sqs_queue(settings):
    """A moto SQS queue `edobs-events` the worker and the admin use through settings."""
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName=QUEUE_NAME, Attributes={"VisibilityTimeout": "30"})[
            "QueueUrl"
        ]
        settings.AWS_ENDPOINT_URL = ""
        settings.AWS_DEFAULT_REGION = "us-east-1"
        settings.EDOBS_QUEUE_URL = url
        yield Queue(client, url)


def _user(django_user_model, username: str, **extra):
    return django_user_model.objects.create_user(
        username=username, password=PASSWORD, email=f"{username}@example.com", **extra
    )


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(
        username="root", password=PASSWORD, email="root@example.com"
    )


@pytest.fixture
def member(django_user_model):
    """In team A, granted ACCOUNT_A (the account of the samples)."""
    user = _user(django_user_model, "alice")
    team = Team.objects.create(name="Team A")
    team.members.add(user)
    TeamAccount.objects.create(team=team, account=ACCOUNT_A)
    return user


@pytest.fixture
def outsider(django_user_model):
    """In team B, granted another account only."""
    user = _user(django_user_model, "bob")
    team = Team.objects.create(name="Team B")
    team.members.add(user)
    TeamAccount.objects.create(team=team, account=ACCOUNT_B)
    return user


@pytest.fixture
def memory_layer(settings):
    """The in-process channel layer, fresh for the test: consumers and broadcasts in one process."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def settled(read):
    """`read()`, tried again while a worker's or the alerts loop's thread holds a table lock:
    the in-memory test database's shared cache reports one at once instead of waiting (as the
    product's own writes do, events.stores.locking)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            return read()
        except OperationalError as exc:
            if not lost_lock_race(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)

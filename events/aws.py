"""AWS clients, made by functions (never at import time) so moto and settings come first."""

from __future__ import annotations

import boto3
from botocore.config import Config
from django.conf import settings

# Long polls hold a connection for up to 20 s: the read timeout must outlast them.
_CONFIG = Config(
    read_timeout=30, connect_timeout=5, retries={"max_attempts": 5, "mode": "standard"}
)


def _kwargs() -> dict[str, str]:
    kwargs = {"region_name": settings.AWS_DEFAULT_REGION}
    if settings.AWS_ENDPOINT_URL:
        kwargs["endpoint_url"] = settings.AWS_ENDPOINT_URL
    return kwargs


def sqs_client():
    return boto3.client("sqs", config=_CONFIG, **_kwargs())


def events_client():
    return boto3.client("events", config=_CONFIG, **_kwargs())


def dynamodb_client():
    return boto3.client("dynamodb", config=_CONFIG, **_kwargs())


def queue_url(client=None) -> str:
    """EDOBS_QUEUE_URL, or the URL of EDOBS_QUEUE_NAME looked up once."""
    if settings.EDOBS_QUEUE_URL:
        return settings.EDOBS_QUEUE_URL
    client = client or sqs_client()
    return client.get_queue_url(QueueName=settings.EDOBS_QUEUE_NAME)["QueueUrl"]

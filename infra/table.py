"""The edobs DynamoDB table (DESIGN section 4): definition and idempotent provisioning.

One table, string keys `pk`/`sk`, TTL attribute `ttl` (epoch seconds). Sparse global indexes:
- `gsi1` newest jobs first: job summary items, `gsi1pk=JOBS#<shard>` (shard chosen by a hash of the
  job id so no one partition is hot), `gsi1sk=<last event ms, 13 digits>#<job id>`;
- `gsi2` events by hour for the architecture window: event items, `gsi2pk=TIME#<yyyy-mm-ddThh>`,
  `gsi2sk` = the event's sort key;
- `gsi3` jobs by execution name (the original design's job key): `gsi3pk=NAME#<name>`,
  `gsi3sk` = `gsi1sk`.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)

TTL_ATTRIBUTE = "ttl"
INDEXES = {"gsi1": ("gsi1pk", "gsi1sk"), "gsi2": ("gsi2pk", "gsi2sk"), "gsi3": ("gsi3pk", "gsi3sk")}


def _index(name: str, hash_key: str, range_key: str) -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def table_spec(name: str) -> dict[str, Any]:
    """The keyword arguments of `create_table` for the edobs table (on-demand billing)."""
    key_names = ["pk", "sk", *(key for pair in INDEXES.values() for key in pair)]
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"} for key in key_names],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [_index(index, *keys) for index, keys in INDEXES.items()],
    }


def ensure_table(client, name: str) -> list[str]:
    """Create the table if missing and switch its TTL on; returns what it did (idempotent)."""
    done: list[str] = []
    try:
        client.describe_table(TableName=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        client.create_table(**table_spec(name))
        client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        done.append(f"created table {name}")
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
        done.append(f"enabled TTL on {name}.{TTL_ATTRIBUTE}")
    for line in done:
        logger.info(line)
    return done

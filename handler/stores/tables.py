"""Create the service's tables (``tinyscribe init``): for DynamoDB Local and first deploys
without CloudFormation. Idempotent."""

from __future__ import annotations

from typing import Any

from handler.config import Settings
from handler.stores.dynamo import client, unavailable_on_outage
from handler.stores.schema import TABLES, TableSpec, table_name


def create_tables(settings: Settings, dynamodb: Any | None = None) -> list[str]:
    """Create every missing table; returns the names of those it created."""
    dynamodb = dynamodb or client()
    created: list[str] = []
    with unavailable_on_outage():
        existing = set(dynamodb.list_tables()["TableNames"])
        for spec in TABLES:
            name = table_name(spec, settings)
            if name in existing:
                continue
            dynamodb.create_table(TableName=name, **_definition(spec))
            dynamodb.get_waiter("table_exists").wait(TableName=name)
            if spec.ttl_attribute:
                dynamodb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
                )
            created.append(name)
    return created


def _definition(spec: TableSpec) -> dict[str, Any]:
    keys = [(spec.partition_key, "HASH")]
    if spec.sort_key:
        keys.append((spec.sort_key, "RANGE"))
    return {
        "KeySchema": [{"AttributeName": name, "KeyType": kind} for name, kind in keys],
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name, _ in keys],
        "BillingMode": "PAY_PER_REQUEST",
    }
